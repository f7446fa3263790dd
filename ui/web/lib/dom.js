// Building DOM without HTML strings: text is always set as text, so values
// from telemetry (span names, log bodies) can never inject markup.

/** h('a', {href: '/x', class: 'y'}, 'text', child) → element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form field: <label>text <input …></label>. */
export function field(label, control) {
  return h('label', {}, label, control);
}

/** A table with a header row; `rows` are arrays of cells (nodes or text). */
export function table(headers, rows, opts = {}) {
  return h('table', { class: 'grid', ...(opts.attrs || {}) },
    opts.caption ? h('caption', { class: 'muted' }, opts.caption) : null,
    h('thead', {}, h('tr', {}, headers.map((t) =>
      h('th', { scope: 'col', class: /^(Attempts|Spans|Errors|SLI|Objective|Duration|Rows|Files|Bytes|Rate|Count|Total|Services|Matching)/.test(t) ? 'num' : '' }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) =>
      c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c))))));
}

/** A table cell with classes. */
export function td(cls, ...children) {
  return h('td', { class: cls }, ...children);
}

/** An error box with the server's message. */
export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

/** Shows a short message in the corner. */
export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.textContent = ''; }, 4000);
}
