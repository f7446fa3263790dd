// Tables that keep only the rows in view in the DOM, so 10,000 rows scroll
// as smoothly as 10 and a page with 1,000 SLOs paints as fast as one with 10.
import * as fmt from '/ui/lib/format.js';
import { h } from '/ui/lib/dom.js';

const OVERSCAN = 10;

/**
 * Renders rows `[first, last)` of a long table body: the rows in view of
 * `scroller` plus a margin, between two spacer rows that keep the scroll
 * height right. Rows have a fixed height (`rowHeight` px, border included;
 * the first row in the DOM is measured once and its height wins).
 * `row(i)` builds row i's <tr>; a row still in range after a scroll is kept
 * as it is, so a focused link in it keeps its focus. A row's `dispose()`, if
 * it has one, is called when it leaves.
 *
 * Returns `{ render, reset(count), get(i) }`: `reset` drops every row (the
 * data changed), `get` answers the row i's <tr> if it is in the DOM.
 */
export function virtualRows(scroller, body, { rowHeight, count, row }) {
  const top = h('tr', { 'aria-hidden': 'true', class: 'spacer' });
  const bottom = h('tr', { 'aria-hidden': 'true', class: 'spacer' });
  body.replaceChildren(top, bottom);
  let n = count;
  let kept = new Map();
  let frame = 0;
  let measured = false;

  function render() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    const viewport = scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(scroller.scrollTop / rowHeight) - OVERSCAN);
    const last = Math.min(n, Math.ceil((scroller.scrollTop + viewport) / rowHeight) + OVERSCAN);
    const next = new Map();
    for (let i = first; i < last; i += 1) next.set(i, kept.get(i) || row(i));
    for (const [i, tr] of kept) {
      if (next.has(i)) continue;
      tr.remove();
      if (tr.dispose) tr.dispose();
    }
    kept = next;
    place(body, top, next);
    top.style.height = `${first * rowHeight}px`;
    bottom.style.height = `${(n - last) * rowHeight}px`;
    // Fonts and zoom can make a row taller than planned: measure one, once.
    const sample = next.values().next().value;
    if (!measured && sample && sample.isConnected && sample.offsetHeight > 0) {
      measured = true;
      if (sample.offsetHeight !== rowHeight) {
        rowHeight = sample.offsetHeight;
        render();
      }
    }
  }
  function reset(count) {
    for (const tr of kept.values()) {
      tr.remove();
      if (tr.dispose) tr.dispose();
    }
    kept = new Map();
    n = count;
    render();
  }
  scroller.addEventListener('scroll', () => { if (!frame) frame = requestAnimationFrame(render); }, { passive: true });
  // The scroller's height is known once it is attached: render again then.
  requestAnimationFrame(render);
  render();
  return { render, reset, get: (i) => kept.get(i) };
}

/** Puts the elements of `next` (in order) after `top`, keeping those already
 * there in place (so focus and scroll stay), after the leavers were removed. */
function place(container, top, next) {
  let cursor = top.nextSibling;
  for (const el of next.values()) {
    if (el === cursor) cursor = cursor.nextSibling;
    else container.insertBefore(el, cursor);
  }
}

const OVERSCAN_PX = 600;

/**
 * A list of items of different heights (log records that open to their
 * attributes) that keeps only the items in view of `scroller`, plus a
 * margin, in `container`. Heights start at `estimate` px and are measured
 * as items are shown or change size (a ResizeObserver), so an item that
 * opens pushes the ones below it down.
 *
 * Returns `{ render, reset(count), get(i), dispose }`.
 */
export function virtualList(scroller, container, { count, estimate = 28, item }) {
  const top = h('div', { 'aria-hidden': 'true', class: 'spacer' });
  const bottom = h('div', { 'aria-hidden': 'true', class: 'spacer' });
  container.replaceChildren(top, bottom);
  let heights = new Array(count).fill(estimate);
  let kept = new Map();
  const index = new WeakMap();
  let frame = 0;
  const schedule = () => { if (!frame) frame = requestAnimationFrame(render); };
  const observer = new ResizeObserver((entries) => {
    let changed = false;
    for (const e of entries) {
      const i = index.get(e.target);
      const height = e.target.offsetHeight;
      if (i === undefined || !e.target.isConnected || height === 0) continue;
      if (height !== heights[i]) { heights[i] = height; changed = true; }
    }
    if (changed) schedule();
  });

  function render() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    const n = heights.length;
    const from = scroller.scrollTop - OVERSCAN_PX;
    const to = scroller.scrollTop + (scroller.clientHeight || 600) + OVERSCAN_PX;
    let y = 0;
    let first = 0;
    while (first < n && y + heights[first] <= from) { y += heights[first]; first += 1; }
    const above = y;
    let last = first;
    while (last < n && y < to) { y += heights[last]; last += 1; }
    let below = 0;
    for (let i = last; i < n; i += 1) below += heights[i];
    const next = new Map();
    for (let i = first; i < last; i += 1) {
      let el = kept.get(i);
      if (!el) {
        el = item(i);
        index.set(el, i);
        observer.observe(el);
      }
      next.set(i, el);
    }
    for (const [i, el] of kept) {
      if (next.has(i)) continue;
      observer.unobserve(el);
      el.remove();
    }
    kept = next;
    place(container, top, next);
    top.style.height = `${above}px`;
    bottom.style.height = `${below}px`;
  }
  function reset(count) {
    for (const el of kept.values()) { observer.unobserve(el); el.remove(); }
    kept = new Map();
    heights = new Array(count).fill(estimate);
    render();
  }
  scroller.addEventListener('scroll', schedule, { passive: true });
  requestAnimationFrame(render);
  render();
  return {
    render,
    reset,
    get: (i) => kept.get(i),
    dispose: () => { observer.disconnect(); if (frame) cancelAnimationFrame(frame); },
  };
}

const ROW = 26; // px: a result row's height, border included (app.css: .vtable td)

/**
 * The Explore results table. Keyboard: the table is one tab stop; ↑/↓,
 * PageUp/PageDown, Home/End move the active row, Enter calls `onActivate`.
 */
export function virtualTable(columns, rows, { label = 'Results', cell = defaultCell, onActivate } = {}) {
  const scroller = h('div', { class: 'vtable', tabindex: '0', role: 'grid', 'aria-label': label, 'aria-rowcount': String(rows.length + 1) });
  const body = h('tbody');
  // Numbers right-aligned, so their digits line up.
  const numeric = columns.map((c) => /^(U?Int|Float|Decimal)/.test(c.type || ''));
  scroller.append(h('table', { role: 'presentation' },
    h('thead', {}, h('tr', { role: 'row' }, columns.map((c, i) => h('th', { scope: 'col', role: 'columnheader', title: c.type || '', class: numeric[i] ? 'num' : '' }, c.name)))),
    body));
  let active = -1;
  const uid = `vt${(virtualTable.count = (virtualTable.count || 0) + 1)}`;

  const view = virtualRows(scroller, body, {
    rowHeight: ROW,
    count: rows.length,
    row: (i) => {
      const tr = h('tr', { role: 'row', id: `${uid}-r${i}`, 'aria-rowindex': String(i + 2), 'aria-selected': String(i === active), class: i === active ? 'active' : '' });
      const row = rows[i];
      for (let c = 0; c < columns.length; c += 1) tr.append(h('td', { role: 'gridcell', class: numeric[c] ? 'num' : '' }, cell(row[c], columns[c], row)));
      return tr;
    },
  });
  function mark(i, on) {
    const tr = view.get(i);
    if (!tr) return;
    tr.classList.toggle('active', on);
    tr.setAttribute('aria-selected', String(on));
  }
  function setActive(i) {
    if (rows.length === 0) return;
    mark(active, false);
    active = Math.max(0, Math.min(rows.length - 1, i));
    const y = active * ROW;
    if (y < scroller.scrollTop) scroller.scrollTop = y;
    else if (y + 2 * ROW > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = y + 2 * ROW - scroller.clientHeight;
    view.render();
    mark(active, true);
    scroller.setAttribute('aria-activedescendant', `${uid}-r${active}`);
  }
  scroller.addEventListener('keydown', (e) => {
    const page = Math.max(1, Math.floor(scroller.clientHeight / ROW) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) setActive((active < 0 ? 0 : active) + moves[e.key]);
    else if (e.key === 'Home') setActive(0);
    else if (e.key === 'End') setActive(rows.length - 1);
    else if (e.key === 'Enter' && onActivate && active >= 0) onActivate(rows[active]);
    else return;
    e.preventDefault();
  });
  return scroller;
}

function defaultCell(v) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, 'NULL');
  if (typeof v === 'number') return fmt.number(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
