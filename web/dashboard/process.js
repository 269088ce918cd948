// SPDX-License-Identifier: MIT
//
// process.js - GET /processes/{pid}: one process's heap, live.
//
// Every section names the API document its numbers come from in
// data-source; each number's data-field is its dotted path in that document
// (array elements by index).  The process document is read every two
// seconds and appended to the charts' history; the heap map, arenas,
// latency, sites and the doctor every five.
'use strict';

(() => {
	const match = /^\/processes\/([1-9][0-9]{0,9})$/.exec(location.pathname);
	if (!match) {
		HF.status('This page\'s address names no process.', true);
		return;
	}
	const pid = Number(match[1]);
	const base = '/api/v1/processes/' + pid;
	const SITES = base + '/sites?sort=pinned&limit=20';

	Chart.defaults.animation = false;
	Chart.defaults.maintainAspectRatio = false;
	Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

	const palette = {
		inUse: '#1f4e9c',
		bins: '#e8a33d',
		fastbins: '#c0582b',
		tcache: '#8c6d1f',
		top: '#f4d58d',
		resident: '#111111',
		requested: '#2a9d8f',
		allocated: '#7b4ea3',
	};

	/* ---- the header, the tiles and the doctor ---- */

	const tiles = [
		['heap.resident_bytes', 'Resident heap', HF.bytes],
		['heap.requested_bytes', 'Requested by live blocks', HF.bytes],
		['heap.allocated_bytes', 'Allocated chunks', HF.bytes],
		['heap.free_bytes', 'Free, resident', HF.bytes],
		['heap.released_bytes', 'Given back since attach', HF.bytes],
		['heap.process_rss_bytes', 'Process RSS', HF.bytes],
		['heap.live_allocations', 'Live blocks', HF.count],
		['fragmentation.ratio', 'Fragmentation', HF.ratio],
		['fragmentation.internal_ratio', 'Internal', HF.ratio],
		['fragmentation.external_ratio', 'External', HF.ratio],
		['fragmentation.largest_free_chunk_bytes', 'Largest free chunk', HF.bytes],
		['fragmentation.free_chunks', 'Free chunks', HF.count],
		['census.state', 'Heap census', HF.text],
		['census.at', 'Census taken', HF.time],
		['census.in_use.bytes', 'Census: in use', HF.bytes],
		['census.free.bytes', 'Census: free', HF.bytes],
		['census.pages.releasable_bytes', 'Releasable now (malloc_trim)', HF.bytes],
		['census.pages.pinned_bytes', 'Pinned pages', HF.bytes],
		['census.pages.pinned_free_bytes', 'Free bytes on pinned pages', HF.bytes],
		['tracing.dropped_events', 'Dropped events', HF.count],
	];

	const tileBox = document.getElementById('tiles');
	document.getElementById('now').dataset.source = base;
	document.querySelector('header.top').dataset.source = base;
	const tileValues = tiles.map(([name, label]) => {
		const value = HF.el('dd');
		tileBox.append(HF.el('dl', {class: 'tile'}, HF.el('dt', {text: label}), value));
		value.dataset.field = name;
		return value;
	});

	function renderHeader(doc) {
		document.title = 'heapfragd: ' + doc.comm + ' (' + doc.pid + ')';
		const title = document.getElementById('title');
		title.replaceChildren(HF.field(HF.el('span'), 'comm', doc.comm), ' ',
				      HF.el('span', {class: 'pid'}, '(pid ',
					    HF.field(HF.el('span'), 'pid', doc.pid), ')'));
		const id = document.getElementById('identity');
		id.replaceChildren(
			HF.field(HF.el('span'), 'exe', doc.exe), ' \u00b7 allocator ',
			HF.field(HF.el('span'), 'allocator.name', HF.get(doc, 'allocator.name')),
			' \u00b7 ', HF.field(HF.el('span'), 'mode', doc.mode), ' mode \u00b7 ',
			HF.field(HF.el('span'), 'state', doc.state));
		// Where it runs: its cgroup, and its pod and container under Kubernetes.
		for (const [name, label] of [['cgroup', 'cgroup'], ['pod_uid', 'pod'], ['container_id', 'container']]) {
			if (doc[name] !== null && doc[name] !== undefined)
				id.append(' \u00b7 ' + label + ' ', HF.field(HF.el('span', {class: 'mono'}), name, doc[name]));
		}
	}

	function renderTiles(doc) {
		tiles.forEach(([name, , format], i) => HF.field(tileValues[i], name, HF.get(doc, name), format));
	}

	async function refreshDoctor() {
		const doc = await HF.api(base + '/doctor');
		const list = document.getElementById('findings');
		list.dataset.source = base + '/doctor';
		const items = doc.findings.map((f, i) => HF.el('li', {},
			HF.field(HF.el('strong'), 'findings.' + i + '.finding', f.finding), ': ',
			HF.field(HF.el('span'), 'findings.' + i + '.text', f.text)));
		if (!items.length)
			items.push(HF.el('li', {class: 'none', text: 'Nothing to report.'}));
		list.replaceChildren(...items);
	}

	/* ---- history charts ---- */

	const composition = [
		['census.in_use.bytes', 'in use (census)', palette.inUse, 'census'],
		['census.free.bins.bytes', 'free: bins', palette.bins, 'census'],
		['census.free.fastbins.bytes', 'free: fastbins', palette.fastbins, 'census'],
		['census.free.tcache.bytes', 'free: thread caches', palette.tcache, 'census'],
		['census.free.top.bytes', 'free: top', palette.top, 'census'],
		['heap.resident_bytes', 'resident', palette.resident, 'resident'],
		['heap.allocated_bytes', 'allocated', palette.allocated, 'allocated'],
		['heap.requested_bytes', 'requested (exact mode)', palette.requested, 'requested'],
	];
	const ratios = [
		['fragmentation.ratio', 'fragmentation', '#333333'],
		['fragmentation.internal_ratio', 'internal', palette.requested],
		['fragmentation.external_ratio', 'external', palette.bins],
	];
	let points = [];
	let step = 5;              // the history's seconds between points
	let historySeconds = 3600; // how far back the charts reach

	function timeAxis() {
		return {
			type: 'linear',
			ticks: {callback: (v) => new Date(v * 1000).toLocaleTimeString(), maxTicksLimit: 8},
		};
	}

	const compChart = new Chart(document.getElementById('composition'), {
		type: 'line',
		data: {
			datasets: composition.map(([, label, color, stack]) => ({
				label, stack, borderColor: color, backgroundColor: color + (stack === 'census' ? 'cc' : '00'),
				fill: stack === 'census' ? 'stack' : false, pointRadius: 0, borderWidth: stack === 'census' ? 1 : 2,
				borderDash: stack === 'allocated' ? [6, 3] : [], data: [],
			})),
		},
		options: {
			parsing: false,
			interaction: {mode: 'nearest', axis: 'x', intersect: false},
			scales: {
				x: timeAxis(),
				y: {stacked: true, beginAtZero: true, ticks: {callback: (v) => HF.bytes(v)}},
			},
			plugins: {tooltip: {callbacks: {label: (c) => c.dataset.label + ': ' + HF.bytes(c.parsed.y)}}},
		},
	});

	const fragChart = new Chart(document.getElementById('fragmentation'), {
		type: 'line',
		data: {
			datasets: ratios.map(([, label, color], i) => ({
				label, borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 2,
				borderDash: [[], [6, 3], [2, 2]][i], data: [],
			})),
		},
		options: {
			parsing: false,
			interaction: {mode: 'nearest', axis: 'x', intersect: false},
			scales: {x: timeAxis(), y: {min: 0, max: 1, ticks: {callback: (v) => HF.ratio(v)}}},
			plugins: {tooltip: {callbacks: {label: (c) => c.dataset.label + ': ' + HF.ratio(c.parsed.y)}}},
		},
	});

	function drawHistory() {
		const last = points.length ? points[points.length - 1].at : 0;
		points = points.filter((p) => p.at >= last - historySeconds);
		composition.forEach(([name], i) => {
			compChart.data.datasets[i].data = points.map((p) => ({x: p.at, y: p[name]}));
		});
		ratios.forEach(([name], i) => {
			fragChart.data.datasets[i].data = points.map((p) => ({x: p.at, y: p[name]}));
		});
		compChart.update('none');
		fragChart.update('none');
	}

	async function loadHistory() {
		const h = await HF.api(base + '/history');
		// Live points may have come first: they are newer than the history.
		const live = points.filter((p) => !h.points.length || p.at > h.points[h.points.length - 1].at);
		points = h.points.concat(live);
		if (h.step_seconds) {
			step = h.step_seconds;
			historySeconds = Math.max(historySeconds, h.step_seconds * HISTORY_POINTS);
		}
		drawHistory();
	}

	const HISTORY_POINTS = 720; // the daemon's ring holds as many

	// A point from the live document, under the history's own field names and
	// at its own time (the daemon's clock, like the history's).  Like the ring,
	// the charts keep one point per step: a newer document within a step of
	// the last kept point replaces the newest point instead of adding one.
	function appendPoint(doc) {
		const last = points[points.length - 1];
		if (doc.at === null || (last && doc.at <= last.at))
			return;
		const p = {at: doc.at, live: true};
		for (const [name] of composition.concat(ratios))
			p[name] = HF.get(doc, name);
		if (doc.census === null || HF.get(doc, 'census.state') !== 'complete') {
			for (const [name] of composition)
				if (name.startsWith('census.'))
					p[name] = null;
		}
		const kept = points.length > 1 ? points[points.length - 2] : null;
		if (last && last.live && kept && p.at - kept.at < step)
			points[points.length - 1] = p;
		else
			points.push(p);
		drawHistory();
	}

	/* ---- the free-chunk size histogram ---- */

	const sizeChart = new Chart(document.getElementById('sizes'), {
		type: 'bar',
		data: {labels: [], datasets: [{label: 'free bytes', backgroundColor: palette.bins, data: []}]},
		options: {
			scales: {y: {beginAtZero: true, ticks: {callback: (v) => HF.bytes(v)}}},
			plugins: {
				legend: {display: false},
				tooltip: {callbacks: {label: (c) => HF.bytes(c.parsed.y) + ' in ' +
					HF.count(sizeBuckets[c.dataIndex].chunks) + ' chunks'}},
			},
		},
	});
	let sizeBuckets = [];

	function sizeLabel(le) {
		return le === null ? '> 4 GiB' : '\u2264 ' + HF.bytes(le);
	}

	function renderSizes(doc) {
		const all = HF.get(doc, 'census.free.sizes') || [];
		const state = HF.get(doc, 'census.state');
		document.getElementById('sizes-note').textContent = state === 'complete' ? ''
			: state === null ? 'No heap census has been taken yet.'
			: 'The latest heap census is ' + state + ': ' + (HF.get(doc, 'census.reason') || 'no sizes') + '.';
		const used = all.map((b, i) => ({...b, i})).filter((b) => b.chunks > 0);
		sizeBuckets = used;
		sizeChart.data.labels = used.map((b) => sizeLabel(b.le));
		sizeChart.data.datasets[0].data = used.map((b) => b.bytes);
		sizeChart.update('none');
		const tbody = document.querySelector('#sizes-table tbody');
		tbody.parentElement.dataset.source = base;
		tbody.replaceChildren(...used.map((b) => {
			const f = 'census.free.sizes.' + b.i + '.';
			return HF.el('tr', {},
				HF.field(HF.el('td', {class: 'num'}), f + 'le', b.le, (v) => v === null ? '> 4 GiB' : HF.bytes(v)),
				HF.field(HF.el('td', {class: 'num'}), f + 'chunks', b.chunks, HF.count),
				HF.field(HF.el('td', {class: 'num'}), f + 'bytes', b.bytes, HF.bytes));
		}));
	}

	/* ---- the heap map ---- */

	const CELL = 8;        // pixels per cell, gap included
	const FILL = CELL - 1; // the coloured square
	const COLUMNS = 64;
	const FREE_RGB = [253, 231, 178];
	const USED_RGB = [20, 55, 130];
	const mapBox = document.getElementById('heapmap');
	const readout = document.getElementById('heapmap-readout');
	let map = null;
	let selected = -1; // a cell index over every region, in order

	// The colour of a cell whose share s of bytes is in use: from pale (0) to dark
	// (1), by the square root of s, so that the few live bytes that pin a page
	// show.  Red goes from 253 to 20: a script reads s back as ((253 - R) / 233)^2.
	function shade(s) {
		const t = Math.sqrt(Math.max(0, Math.min(1, s)));
		const c = FREE_RGB.map((f, k) => Math.round(f + t * (USED_RGB[k] - f)));
		return 'rgb(' + c.join(',') + ')';
	}

	function cellLength(r, k) {
		const span = r.endN - r.startN;
		return Math.min(r.cell_bytes, span - k * r.cell_bytes);
	}

	function drawLegend() {
		const box = document.getElementById('heapmap-legend');
		const swatch = (s, label, empty) => {
			const c = HF.el('canvas', {width: String(FILL), height: String(FILL), class: 'swatch'});
			const g = c.getContext('2d');
			if (empty) {
				g.strokeStyle = '#999';
				g.strokeRect(0.5, 0.5, FILL - 1, FILL - 1);
			} else {
				g.fillStyle = shade(s);
				g.fillRect(0, 0, FILL, FILL);
			}
			return HF.el('span', {class: 'key'}, c, ' ' + label);
		};
		box.replaceChildren(swatch(1, 'all in use'), swatch(0.25, 'a quarter in use'),
				    swatch(0, 'free, resident'), swatch(0, 'not resident (outlined band)', true));
	}

	function drawRegion(canvas, r, first) {
		const g = canvas.getContext('2d');
		g.clearRect(0, 0, canvas.width, canvas.height);
		for (let k = 0; k < r.cells.length; k++) {
			const [inUse, , resident] = r.cells[k];
			const len = cellLength(r, k);
			const x = (k % COLUMNS) * CELL, y = Math.floor(k / COLUMNS) * CELL;
			const covered = len > 0 ? Math.min(1, Math.max(resident, inUse) / len) : 0;
			let h = Math.round(covered * FILL);
			if (covered > 0 && h === 0)
				h = 1;
			// The band not resident is an empty grey outline (grey is in no shade).
			if (h < FILL) {
				g.strokeStyle = '#b0b0b0';
				g.strokeRect(x + 0.5, y + 0.5, FILL - 1, FILL - h - 1);
			}
			if (h > 0) {
				g.fillStyle = shade(len > 0 ? Math.min(1, inUse / len) : 0);
				g.fillRect(x, y + FILL - h, FILL, h);
			}
			if (first + k === selected) {
				g.strokeStyle = '#d11';
				g.strokeRect(x - 0.5, y - 0.5, CELL, CELL);
			}
		}
	}

	function drawMap() {
		if (!map)
			return;
		map.regions.forEach((r, i) => drawRegion(r.canvas, r, r.first));
	}

	function showCell(index) {
		if (!map || index < 0)
			return;
		const r = map.regions.find((x) => index >= x.first && index < x.first + x.cells.length);
		if (!r)
			return;
		const k = index - r.first;
		const len = cellLength(r, k);
		const start = r.startN + k * r.cell_bytes;
		const f = 'regions.' + r.index + '.cells.' + k + '.';
		// The cell's number and address are derived: its index and start + index * cell_bytes.
		readout.replaceChildren(
			'Heap ' + (r.index + 1) + ', cell ' + (k + 1) + ' of ' + r.cells.length + ' at 0x' +
			start.toString(16) + ', ' + HF.bytes(len) +
			'. In use ', HF.field(HF.el('span'), f + '0', r.cells[k][0], HF.bytes),
			', free ', HF.field(HF.el('span'), f + '1', r.cells[k][1], HF.bytes),
			', resident ', HF.field(HF.el('span'), f + '2', r.cells[k][2], HF.bytes), '.');
	}

	function select(index) {
		if (!map)
			return;
		const total = map.regions.reduce((n, r) => n + r.cells.length, 0);
		selected = Math.max(0, Math.min(total - 1, index));
		drawMap();
		showCell(selected);
	}

	function renderMap(doc) {
		mapBox.parentElement.dataset.source = base + '/heapmap';
		mapBox.dataset.value = String(doc.at);
		mapBox.dataset.state = doc.state;
		let first = 0;
		const regions = doc.regions.map((r, index) => {
			const x = {...r, index, first, startN: parseInt(r.start, 16), endN: parseInt(r.end, 16)};
			first += r.cells.length;
			return x;
		});
		const old = map ? map.regions : [];
		const blocks = regions.map((r, i) => {
			const rows = Math.ceil(r.cells.length / COLUMNS);
			let canvas = old[i] && old[i].canvas;
			if (!canvas)
				canvas = HF.el('canvas', {tabindex: '0', class: 'map'});
			canvas.width = COLUMNS * CELL;
			canvas.height = Math.max(1, rows) * CELL;
			canvas.dataset.region = String(i);
			canvas.dataset.cellPixels = String(CELL);
			canvas.dataset.columns = String(COLUMNS);
			canvas.setAttribute('aria-label', 'Heap ' + (i + 1) + ' map, ' + r.cells.length +
				' cells; arrow keys move between cells');
			r.canvas = canvas;
			const f = 'regions.' + i + '.';
			const label = HF.el('p', {class: 'region'}, 'Heap ' + (i + 1) + ': ',
				HF.field(HF.el('span'), f + 'kind', r.kind), ' arena ',
				HF.field(HF.el('span'), f + 'arena', r.arena), ', ',
				HF.field(HF.el('span'), f + 'start', r.start), '\u2013',
				HF.field(HF.el('span'), f + 'end', r.end), ', cells of ',
				HF.field(HF.el('span'), f + 'cell_bytes', r.cell_bytes, HF.bytes));
			return HF.el('figure', {}, label, canvas);
		});
		map = {regions};
		if (!doc.regions.length) {
			const why = {none: 'No heap census has been taken yet.',
				complete: 'The heap census found no heap to map.'}[doc.state] ||
				'The heap census has no map: ' + (doc.reason || doc.state) + '.';
			mapBox.replaceChildren(HF.el('p', {class: 'none', text: why}));
			return;
		}
		mapBox.replaceChildren(...blocks);
		drawMap();
		if (selected >= 0)
			showCell(selected);
	}

	function cellAt(ev) {
		const canvas = ev.target;
		const r = map && map.regions[Number(canvas.dataset.region)];
		if (!r)
			return -1;
		const box = canvas.getBoundingClientRect();
		const col = Math.floor((ev.clientX - box.left) / CELL), row = Math.floor((ev.clientY - box.top) / CELL);
		const k = row * COLUMNS + col;
		return col < COLUMNS && k < r.cells.length ? r.first + k : -1;
	}

	mapBox.addEventListener('mousemove', (ev) => {
		if (ev.target.tagName === 'CANVAS') {
			const k = cellAt(ev);
			if (k >= 0)
				showCell(k);
		}
	});
	mapBox.addEventListener('click', (ev) => {
		if (ev.target.tagName === 'CANVAS' && cellAt(ev) >= 0)
			select(cellAt(ev));
	});
	mapBox.addEventListener('keydown', (ev) => {
		const step = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -COLUMNS, ArrowDown: COLUMNS,
			      Home: -Infinity, End: Infinity}[ev.key];
		if (step === undefined || !map)
			return;
		ev.preventDefault();
		const from = selected < 0 ? 0 : selected;
		select(step === -Infinity ? 0 : step === Infinity ? 1e9 : from + (selected < 0 ? 0 : step));
	});
	mapBox.addEventListener('focusin', () => {
		if (selected < 0)
			select(0);
	});

	/* ---- arenas ---- */

	async function refreshArenas() {
		const doc = await HF.api(base + '/arenas');
		const table = document.getElementById('arenas');
		table.dataset.source = base + '/arenas';
		const cols = [['arena', HF.text], ['kind', HF.text], ['heaps', HF.count],
			      ['mapped_bytes', HF.bytes], ['threads', HF.count],
			      ['lock.acquisitions', HF.count], ['lock.contended', HF.count],
			      ['lock.wait_seconds', HF.seconds], ['lock.max_wait_seconds', HF.seconds]];
		table.querySelector('tbody').replaceChildren(...doc.arenas.map((a, i) => HF.el('tr', {},
			...cols.map(([name, format], c) => HF.field(HF.el('td', c > 1 ? {class: 'num'} : {}),
				'arenas.' + i + '.' + name, HF.get(a, name), format)))));
	}

	/* ---- latency ---- */

	const OPS = ['malloc', 'calloc', 'realloc', 'memalign'];
	const opColors = [palette.inUse, palette.requested, palette.bins, palette.allocated];
	const latChart = new Chart(document.getElementById('latency'), {
		type: 'bar',
		data: {labels: [], datasets: OPS.map((op, i) => ({label: op, backgroundColor: opColors[i], data: []}))},
		options: {scales: {y: {beginAtZero: true, title: {display: true, text: 'calls'}}}},
	});

	function nanos(le) {
		if (le === null)
			return '> 1.07 s';
		const ns = le * 1e9;
		return '\u2264 ' + (ns < 1000 ? Math.round(ns) + ' ns' : ns < 1e6 ? (ns / 1e3).toFixed(ns < 1e4 ? 2 : 0) + ' \u00b5s'
			: (ns / 1e6).toFixed(ns < 1e7 ? 2 : 0) + ' ms');
	}

	async function refreshLatency() {
		const doc = await HF.api(base + '/latency');
		const table = document.getElementById('latency-table');
		table.dataset.source = base + '/latency';
		const timed = OPS.some((op) => doc.calls[op] !== null);
		document.getElementById('latency-note').textContent = timed
			? 'Time from each call\'s entry to its return, per call, in log2 buckets.'
			: 'Calls are not timed in ' + doc.mode + ' mode: attach in exact mode to see them.';
		document.getElementById('latency').parentElement.hidden = !timed;
		if (timed) {
			const ref = OPS.map((op) => doc.calls[op]).find((c) => c !== null);
			let lo = ref.buckets.length, hi = -1;
			for (const op of OPS) {
				(doc.calls[op] ? doc.calls[op].buckets : []).forEach((b, i) => {
					if (b.count > 0) {
						lo = Math.min(lo, i);
						hi = Math.max(hi, i);
					}
				});
			}
			if (hi < 0)
				lo = hi = 0;
			latChart.data.labels = ref.buckets.slice(lo, hi + 1).map((b) => nanos(b.le));
			OPS.forEach((op, k) => {
				latChart.data.datasets[k].data = doc.calls[op]
					? doc.calls[op].buckets.slice(lo, hi + 1).map((b) => b.count) : [];
			});
			latChart.update('none');
		}
		// An op that is not timed is null as a whole: its cells say so under its own name.
		const cell = (op, key, format) => doc.calls[op] === null
			? HF.field(HF.el('td', {class: 'num'}), 'calls.' + op, null)
			: HF.field(HF.el('td', {class: 'num'}), 'calls.' + op + '.' + key, doc.calls[op][key], format);
		table.querySelector('tbody').replaceChildren(...OPS.concat(['free']).map((op) => HF.el('tr', {},
			HF.el('th', {scope: 'row', text: op}), cell(op, 'count', HF.count),
			cell(op, 'sum_seconds', HF.seconds))));
	}

	/* ---- sites and the flame graph ---- */

	// Frame 0's source file and line, or its object and offset in it.
	function frameWhere(f, prefix) {
		const td = HF.el('td');
		if (f && f.file) {
			td.append(HF.field(HF.el('span'), prefix + 'frames.0.file', f.file, (v) => v.split('/').pop()));
			if (f.line !== null)
				td.append(':', HF.field(HF.el('span'), prefix + 'frames.0.line', f.line));
		} else if (f && f.object) {
			td.append(HF.field(HF.el('span'), prefix + 'frames.0.object', f.object, (v) => v.split('/').pop()),
				  '+', HF.field(HF.el('span'), prefix + 'frames.0.offset', f.offset));
		}
		return td;
	}

	async function refreshSites(doc) {
		const note = document.getElementById('sites-note');
		const table = document.getElementById('sites');
		// Passive mode knows sites only from libptm's own sampling.
		if (doc.mode !== 'exact' && HF.get(doc, 'allocator.name') !== 'libptm') {
			note.textContent = 'Allocation sites are counted in exact mode, and estimated in passive ' +
				'mode for libptm processes that sample (MALLOC_SAMPLE_INTERVAL_).';
			table.hidden = true;
			document.getElementById('flame').replaceChildren();
			document.getElementById('flame-note').textContent = '';
			return;
		}
		let s;
		try {
			s = await HF.api(SITES);
		} catch (e) {
			// 409: this process has no sites (--no-sites, or none kept yet): say why, in place.
			if (e.status !== 409 && e.status !== 404)
				throw e;
			note.textContent = e.message;
			table.hidden = true;
			document.getElementById('flame').replaceChildren();
			document.getElementById('flame-note').textContent = '';
			return;
		}
		table.hidden = false;
		document.getElementById('sites-section').dataset.source = SITES;
		if (s.sampled)
			note.replaceChildren('Estimated from libptm\'s samples (one per ',
				HF.field(HF.el('span'), 'sample_interval_bytes', s.sample_interval_bytes, HF.bytes),
				' allocated, on average): the sites with the most live bytes; frame 0 called the allocator.');
		else
			note.textContent = 'The sites whose live blocks hold the most free bytes on their pages, then ' +
				'the most live bytes; frame 0 called the allocator.';
		table.querySelector('tbody').replaceChildren(...s.sites.map((site, i) => {
			const f = 'sites.' + i + '.';
			const top = site.frames[0];
			// The site's name: its label, frame 0's function, or frame 0's address.
			const name = site.label !== null ? ['label', site.label]
				: top && top.function !== null ? ['frames.0.function', top.function]
				: ['frames.0.address', top ? top.address : null];
			return HF.el('tr', {},
				HF.field(HF.el('td'), f + name[0], name[1]),
				frameWhere(top, f),
				HF.field(HF.el('td', {class: 'num'}), f + 'live_bytes', site.live_bytes, HF.bytes),
				HF.field(HF.el('td', {class: 'num'}), f + 'live_allocations', site.live_allocations, HF.count),
				HF.field(HF.el('td', {class: 'num'}), f + 'requested_bytes', site.requested_bytes, HF.bytes),
				HF.field(HF.el('td', {class: 'num'}), f + 'pinned_free_bytes', site.pinned_free_bytes, HF.bytes));
		}));
		const pinned = s.total_pinned_free_bytes !== null;
		const folded = await HF.api(base + '/profile?type=' + (pinned ? 'pinned' : 'inuse') + '&format=folded', 'text');
		document.getElementById('flame-note').textContent = pinned
			? 'Whose live blocks pin free bytes: each bar\'s width is the free bytes on the pages its blocks hold, callers above callees.'
			: 'Whose blocks are live: each bar\'s width is live bytes, callers above callees (no complete census has credited pinned pages yet).';
		drawFlame(folded, pinned ? 'pinned free' : 'live');
	}

	const SVG = 'http://www.w3.org/2000/svg';

	function svg(tag, attrs) {
		const e = document.createElementNS(SVG, tag);
		for (const [k, v] of Object.entries(attrs))
			e.setAttribute(k, v);
		return e;
	}

	// Folded stacks ("root;...;leaf VALUE") drawn as an icicle: roots on top.
	function drawFlame(text, what) {
		const root = {name: 'all', value: 0, children: new Map()};
		for (const line of text.split('\n')) {
			const sp = line.lastIndexOf(' ');
			if (sp <= 0)
				continue;
			const value = Number(line.slice(sp + 1));
			if (!Number.isFinite(value) || value <= 0)
				continue;
			let node = root;
			root.value += value;
			for (const name of line.slice(0, sp).split(';')) {
				if (!node.children.has(name))
					node.children.set(name, {name, value: 0, children: new Map()});
				node = node.children.get(name);
				node.value += value;
			}
		}
		const box = document.getElementById('flame');
		if (!root.value) {
			box.replaceChildren(HF.el('p', {class: 'none', text: 'No site holds any ' + what + ' bytes.'}));
			return;
		}
		const W = 1000, H = 18;
		let depth = 0;
		const bars = [];
		(function place(node, x, level) {
			depth = Math.max(depth, level + 1);
			bars.push({node, x, level});
			let cx = x;
			for (const c of [...node.children.values()].sort((a, b) => b.value - a.value)) {
				const w = c.value / root.value * W;
				if (w >= 0.5)
					place(c, cx, level + 1);
				cx += w;
			}
		})(root, 0, 0);
		const s = svg('svg', {viewBox: '0 0 ' + W + ' ' + depth * H, width: '100%', class: 'flame-svg'});
		bars.forEach(({node, x, level}, i) => {
			const w = node.value / root.value * W;
			const g = svg('g', {tabindex: '0', 'data-field': 'profile', 'data-value': String(node.value),
				role: 'img',
				'aria-label': node.name + ': ' + HF.bytes(node.value) + ' ' + what + ' (' + HF.ratio(node.value / root.value) + ')'});
			const hue = 20 + (i * 37) % 40;
			g.append(svg('rect', {x: x.toFixed(2), y: level * H, width: Math.max(0, w - 0.5).toFixed(2), height: H - 1,
				fill: level === 0 ? '#bbbbbb' : 'hsl(' + hue + ',80%,' + (55 + (i % 3) * 6) + '%)'}));
			const t = svg('title', {});
			t.textContent = node.name + ': ' + HF.bytes(node.value) + ' ' + what;
			g.append(t);
			if (w > 40) {
				const label = svg('text', {x: (x + 3).toFixed(2), y: level * H + 13, 'font-size': '11'});
				const room = Math.floor((w - 6) / 6.5);
				label.textContent = node.name.length > room ? node.name.slice(0, Math.max(0, room - 1)) + '\u2026' : node.name;
				g.append(label);
			}
			s.append(g);
		});
		box.replaceChildren(s);
	}

	/* ---- the refresh loops ---- */

	let latest = null;

	drawLegend();
	loadHistory().catch((e) => HF.status('Could not read the history: ' + e.message, true));

	let sectionsStarted = false;
	let docOk = false; // the process document answered last time

	HF.every(2000, async () => {
		try {
			latest = await HF.api(base);
			docOk = true;
			if (!sectionsStarted) {
				sectionsStarted = true;
				HF.every(5000, refreshSections);
			}
			renderHeader(latest);
			renderTiles(latest);
			renderSizes(latest);
			appendPoint(latest);
			HF.status('Updated ' + new Date().toLocaleTimeString() + '.');
		} catch (e) {
			docOk = false;
			HF.status(e.status === 404 ? 'Process ' + pid + ' is not traced: ' + e.message
				: 'Could not read process ' + pid + ': ' + e.message, true);
		}
	});

	async function refreshSections() {
		// A process no longer served (detached, or its retention over) has no parts to read.
		if (!docOk)
			return;
		const jobs = [
			HF.api(base + '/heapmap').then(renderMap),
			refreshArenas(),
			refreshLatency(),
			refreshDoctor(),
			refreshSites(latest),
		];
		for (const r of await Promise.allSettled(jobs))
			if (r.status === 'rejected')
				HF.status('A part of the page could not be read: ' + r.reason.message, true);
	}
})();
