// A table that renders only the rows in view, so 10,000 rows scroll as
// smoothly as 10. Keyboard: the table body is one tab stop; ↑/↓, PageUp/
// PageDown, Home/End move the active row, Enter calls `onActivate`.
import { h } from '/ui/lib/dom.js';

const ROW = 26; // px: a row's height, border included (app.css: height 26px, border-box)
const OVERSCAN = 10;

export function virtualTable(columns, rows, { label = 'Results', cell = defaultCell, onActivate } = {}) {
  const scroller = h('div', { class: 'vtable', tabindex: '0', role: 'grid', 'aria-label': label, 'aria-rowcount': String(rows.length + 1) });
  const body = h('tbody');
  const top = h('tr', { 'aria-hidden': 'true' });
  const bottom = h('tr', { 'aria-hidden': 'true' });
  const tableEl = h('table', { role: 'presentation' },
    h('thead', {}, h('tr', { role: 'row' }, columns.map((c) => h('th', { scope: 'col', role: 'columnheader', title: c.type || '' }, c.name)))),
    body);
  scroller.append(tableEl);
  let active = -1;
  let frame = 0;
  const uid = `vt${(virtualTable.count = (virtualTable.count || 0) + 1)}`;

  function render() {
    frame = 0;
    const viewport = scroller.clientHeight || 560;
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((scroller.scrollTop + viewport) / ROW) + OVERSCAN);
    top.style.height = `${first * ROW}px`;
    bottom.style.height = `${(rows.length - last) * ROW}px`;
    const trs = [top];
    for (let i = first; i < last; i += 1) {
      const tr = h('tr', { role: 'row', id: `${uid}-r${i}`, 'aria-rowindex': String(i + 2), 'aria-selected': String(i === active), class: i === active ? 'active' : '' });
      const row = rows[i];
      for (let c = 0; c < columns.length; c += 1) tr.append(h('td', { role: 'gridcell' }, cell(row[c], columns[c], row)));
      trs.push(tr);
    }
    trs.push(bottom);
    body.replaceChildren(...trs);
    if (active >= first && active < last) scroller.setAttribute('aria-activedescendant', `${uid}-r${active}`);
    else scroller.removeAttribute('aria-activedescendant');
  }
  function schedule() { if (!frame) frame = requestAnimationFrame(render); }
  function setActive(i) {
    if (rows.length === 0) return;
    active = Math.max(0, Math.min(rows.length - 1, i));
    const y = active * ROW;
    const header = ROW;
    if (y < scroller.scrollTop) scroller.scrollTop = y;
    else if (y + ROW + header > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = y + ROW + header - scroller.clientHeight;
    render();
  }
  scroller.addEventListener('scroll', schedule, { passive: true });
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
  // First paint once attached (clientHeight is known then).
  requestAnimationFrame(render);
  render();
  return scroller;
}

function defaultCell(v) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, 'NULL');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
