// SPDX-License-Identifier: MIT
//
// list.js - GET /: every traced process, sortable, refreshed every two
// seconds.  Each row carries data-pid; its numbers carry their field names
// in the process's entry of GET /api/v1/processes.
'use strict';

(() => {
	const columns = [
		{field: 'pid', format: HF.text, link: true},
		{field: 'comm', format: HF.text},
		{field: 'allocator', format: HF.text},
		{field: 'mode', format: HF.text},
		{field: 'heap.resident_bytes', format: HF.bytes, num: true},
		{field: 'heap.free_bytes', format: HF.bytes, num: true},
		{field: 'census.pages.releasable_bytes', format: HF.bytes, num: true},
		{field: 'census.pages.pinned_free_bytes', format: HF.bytes, num: true},
		{field: 'fragmentation.external_ratio', format: HF.ratio, num: true},
	];
	const table = document.getElementById('procs');
	const tbody = table.querySelector('tbody');
	let processes = [];
	let sortField = 'heap.resident_bytes';
	let descending = true;

	function compare(a, b) {
		const x = HF.get(a, sortField), y = HF.get(b, sortField);
		// Unknown values sort last whichever the direction.
		if (x === null || y === null)
			return (x === null) - (y === null);
		const order = typeof x === 'string' ? x.localeCompare(y) : x - y;
		return descending ? -order : order;
	}

	function render() {
		const rows = processes.slice().sort(compare).map((p) => {
			const tr = HF.el('tr', {'data-pid': String(p.pid)});
			for (const c of columns) {
				const td = HF.el('td', c.num ? {class: 'num'} : {});
				const value = HF.get(p, c.field);
				if (c.link) {
					const a = HF.el('a', {href: '/processes/' + p.pid});
					HF.field(a, c.field, value, c.format);
					a.setAttribute('aria-label', 'Open process ' + p.pid + ' (' + p.comm + ')');
					td.append(a);
				} else {
					HF.field(td, c.field, value, c.format);
				}
				tr.append(td);
			}
			if (p.state === 'exited')
				tr.classList.add('exited');
			return tr;
		});
		tbody.replaceChildren(...rows);
		for (const th of table.querySelectorAll('th[data-sort]')) {
			const on = th.dataset.sort === sortField;
			th.setAttribute('aria-sort', on ? (descending ? 'descending' : 'ascending') : 'none');
		}
		document.getElementById('empty').hidden = processes.length > 0;
	}

	for (const th of table.querySelectorAll('th[data-sort]')) {
		th.querySelector('button').addEventListener('click', () => {
			if (sortField === th.dataset.sort)
				descending = !descending;
			else {
				sortField = th.dataset.sort;
				descending = th.classList.contains('num');
			}
			render();
		});
	}

	HF.every(2000, async () => {
		try {
			const doc = await HF.api('/api/v1/processes');
			processes = doc.processes;
			render();
			HF.status('Updated ' + new Date().toLocaleTimeString() + ': ' + processes.length +
				  (processes.length === 1 ? ' process.' : ' processes.'));
		} catch (e) {
			HF.status('Could not read the process list: ' + e.message, true);
		}
	});
})();
