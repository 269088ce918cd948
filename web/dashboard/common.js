// SPDX-License-Identifier: MIT
//
// common.js - what both dashboard pages share: the API client (with the
// bearer token, asked for once), number formats, and the rule that every
// number shown carries its JSON field name (data-field) and raw value
// (data-value).
//
// Text that comes from a traced process (its name, paths, function names) is
// only ever set as textContent: a hostile target cannot inject markup.
'use strict';

const HF = (() => {
	const TOKEN_KEY = 'heapfrag.token';
	let asking = null;
	let memoryToken = null;

	function storedToken() {
		try {
			return sessionStorage.getItem(TOKEN_KEY);
		} catch (e) {
			return null;
		}
	}

	// The form that asks for the token, made the first time it is needed.
	function tokenForm() {
		let form = document.getElementById('token-form');
		if (!form) {
			const input = el('input', {id: 'token-input', type: 'password', autocomplete: 'off',
						   required: ''});
			form = el('form', {id: 'token-form', class: 'token'},
				  el('label', {for: 'token-input'}, 'This daemon asks for a bearer token (its ',
				     el('code', {text: '--token-file'}), '):'),
				  input, el('button', {type: 'submit', text: 'Use token'}));
			document.querySelector('header.top').after(form);
		}
		return {form, input: document.getElementById('token-input')};
	}

	// Shows the token form once; every request that met a 401 waits on it.
	function askToken() {
		if (asking)
			return asking;
		asking = new Promise((resolve) => {
			const {form, input} = tokenForm();
			form.hidden = false;
			input.focus();
			form.addEventListener('submit', (ev) => {
				ev.preventDefault();
				try {
					sessionStorage.setItem(TOKEN_KEY, input.value.trim());
				} catch (e) {
					// Without storage the token lasts as long as the page.
					memoryToken = input.value.trim();
				}
				input.value = '';
				form.hidden = true;
				asking = null;
				resolve();
			}, {once: true});
		});
		return asking;
	}

	// GETs an API path: its JSON (or text with as = 'text'); throws an Error
	// carrying the API's one-sentence message and the HTTP status.
	async function api(path, as = 'json') {
		for (;;) {
			const headers = {};
			const token = storedToken() || memoryToken;
			if (token)
				headers.Authorization = 'Bearer ' + token;
			const r = await fetch(path, {headers, cache: 'no-store'});
			if (r.status === 401) {
				// Only the token this request sent is wrong: one stored since is tried as it is.
				if ((storedToken() || memoryToken) === token) {
					try {
						sessionStorage.removeItem(TOKEN_KEY);
					} catch (e) {
						// Storage refused: the token lives in memoryToken.
					}
					memoryToken = null;
					await askToken();
				}
				continue;
			}
			if (!r.ok) {
				let message = r.status + ' ' + r.statusText;
				try {
					const j = await r.json();
					if (j && j.message)
						message = j.message;
				} catch (e) {
					// Not JSON: the status line says enough.
				}
				const err = new Error(message);
				err.status = r.status;
				throw err;
			}
			return as === 'text' ? r.text() : r.json();
		}
	}

	function get(doc, path) {
		let v = doc;
		for (const k of path.split('.')) {
			if (v === null || v === undefined)
				return null;
			v = v[k];
		}
		return v === undefined ? null : v;
	}

	const UNKNOWN = '\u2014';

	function bytes(v) {
		if (v === null || v === undefined)
			return UNKNOWN;
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		let x = v, i = 0;
		while (Math.abs(x) >= 1024 && i < units.length - 1) {
			x /= 1024;
			i++;
		}
		return (i === 0 ? String(x) : x.toFixed(x < 10 ? 2 : 1)) + ' ' + units[i];
	}

	function ratio(v) {
		return v === null || v === undefined ? UNKNOWN : (100 * v).toFixed(1) + '%';
	}

	function count(v) {
		return v === null || v === undefined ? UNKNOWN : v.toLocaleString('en-US');
	}

	function seconds(v) {
		if (v === null || v === undefined)
			return UNKNOWN;
		return v < 0.001 && v > 0 ? v.toExponential(2) : v.toFixed(v < 10 ? 4 : 1);
	}

	function time(v) {
		return v === null || v === undefined ? UNKNOWN : new Date(v * 1000).toLocaleTimeString();
	}

	function text(v) {
		return v === null || v === undefined ? UNKNOWN : String(v);
	}

	// Shows value in el, formatted, with its field name and raw value.
	function field(el, name, value, format = text) {
		const v = value === undefined ? null : value;
		el.dataset.field = name;
		el.dataset.value = v === null ? 'null' : String(v);
		el.textContent = format(v);
		if (v === null)
			el.title = 'not measured by this mode or allocator';
		else
			el.removeAttribute('title');
		return el;
	}

	function el(tag, attrs = {}, ...children) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs)) {
			if (k === 'class')
				e.className = v;
			else if (k === 'text')
				e.textContent = v;
			else
				e.setAttribute(k, v);
		}
		for (const c of children)
			e.append(c);
		return e;
	}

	// The page's status line; a failure also goes to the console, where tests and users look.
	function status(message, bad = false) {
		const s = document.getElementById('status');
		s.textContent = message;
		s.classList.toggle('bad', bad);
		if (bad)
			console.error('heapfrag dashboard: ' + message);
	}

	// Runs fn now and then every ms milliseconds, one run at a time.
	function every(ms, fn) {
		const run = async () => {
			try {
				await fn();
			} finally {
				setTimeout(run, ms);
			}
		};
		run();
	}

	return {api, get, bytes, ratio, count, seconds, time, text, field, el, status, every, UNKNOWN};
})();
