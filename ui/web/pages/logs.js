// Log search: text, severity, service and time range; lines link to traces.
import { api, qs, records, traceHref } from '/ui/lib/api.js';
import { h, mount, errorBox, field } from '/ui/lib/dom.js';
import { timeChart } from '/ui/lib/chart.js';
import { virtualList } from '/ui/lib/vtable.js';
import * as fmt from '/ui/lib/format.js';
import { navigate } from '/ui/app.js';

function severityClass(n) {
  if (n >= 17) return 'bad';
  if (n >= 13) return 'warn';
  return 'neutral';
}

/** `text` with the case-insensitive matches of `needle` marked. */
function highlighted(text, needle) {
  if (!needle) return text;
  const out = [];
  const lower = text.toLowerCase();
  const n = needle.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(n); i >= 0 && out.length < 200; i = lower.indexOf(n, at)) {
    if (i > at) out.push(text.slice(at, i));
    out.push(h('mark', {}, text.slice(i, i + n.length)));
    at = i + n.length;
  }
  out.push(text.slice(at));
  return out;
}

/** A record's attributes (a map: [[k, v], …] or {k: v}) as a list. */
function attributeList(attrs) {
  const entries = Array.isArray(attrs) ? attrs : Object.entries(attrs || {});
  return entries.length
    ? h('dl', { class: 'kv' }, entries.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]))
    : h('p', { class: 'muted' }, 'no attributes');
}

/** One log record, which opens (click, Enter) to its attributes and ids;
 * `traceLink` adds a link to its trace, `needle` marks the searched text. */
export function logLine(l, traceLink = true, needle = '') {
  const body = typeof l.body === 'object' && l.body !== null ? JSON.stringify(l.body) : String(l.body ?? '');
  const detail = h('div', { class: 'log-detail', hidden: true },
    h('h4', {}, 'Attributes'), attributeList(l.attributes),
    l.resource_attributes ? [h('h4', {}, 'Resource'), attributeList(l.resource_attributes)] : null,
    h('dl', { class: 'kv' },
      h('dt', {}, 'trace_id'), h('dd', {}, l.trace_id || '—'),
      h('dt', {}, 'span_id'), h('dd', {}, l.span_id || '—')));
  const toggle = () => {
    detail.hidden = !detail.hidden;
    row.setAttribute('aria-expanded', String(!detail.hidden));
  };
  const row = h('div', {
    class: 'logline', role: 'button', tabindex: '0', 'aria-expanded': 'false',
    onclick: (e) => { if (!e.target.closest('a')) toggle(); },
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } },
  },
  h('span', {}, fmt.time(l.time, { ms: true })),
  h('span', {}, h('span', { class: `badge ${severityClass(l.severity_number || 0)}` }, l.severity_text || String(l.severity_number ?? ''))),
  h('span', {}, l.service_name || ''),
  h('span', { class: 'body' }, highlighted(body, needle)),
  h('span', {}, traceLink && l.trace_id ? h('a', { href: traceHref(l.trace_id, l.time), title: `trace ${l.trace_id}` }, 'trace →') : ''));
  return h('div', { class: 'logrecord', role: 'listitem' }, row, detail);
}

/** The header of a list of log lines. */
function logHeader() {
  return h('div', { class: 'logline log-header', 'aria-hidden': 'true' },
    h('span', {}, 'Time'), h('span', {}, 'Severity'), h('span', {}, 'Service'), h('span', {}, 'Message'), h('span', {}, 'Trace'));
}

/** Records per severity over the range, from the SQL API: the volume
 * histogram above the list, as stacked bars. */
async function volume(ctx, filters) {
  const { from, to } = ctx.range;
  const secs = Math.max(10, Math.round((to - from) / 1000 / 60));
  const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;
  const ts = (ms) => `TIMESTAMP ${lit(new Date(ms).toISOString().replace('T', ' ').replace('Z', ''))}`;
  const where = [`time >= ${ts(from)}`, `time < ${ts(to)}`];
  if (filters.q) where.push(`body ILIKE ${lit(`%${filters.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)} ESCAPE '\\'`);
  if (filters.service) where.push(`service_name = ${lit(filters.service)}`);
  const floor = { DEBUG: 5, INFO: 9, WARN: 13, ERROR: 17, FATAL: 21 }[filters.severity];
  if (floor) where.push(`severity_number >= ${floor}`);
  const sql = `SELECT date_bin(INTERVAL '${secs} seconds', time) AS t, `
    + `CASE WHEN severity_number >= 17 THEN 'error' WHEN severity_number >= 13 THEN 'warn' ELSE 'info and below' END AS level, `
    + `count(*) AS records FROM logs WHERE ${where.join(' AND ')} GROUP BY 1, 2 ORDER BY 1`;
  const answer = await api('/api/v1/sql', { method: 'POST', body: { sql } });
  const times = [...new Set(answer.rows.map((r) => fmt.parseTime(String(r[0]))))].sort((a, b) => a - b);
  const at = new Map(times.map((t, i) => [t, i]));
  // Bottom to top of each bar.
  const levels = ['error', 'warn', 'info and below'];
  const colours = { error: '#cf222e', warn: '#bf8700', 'info and below': '#8c959f' };
  const counts = levels.map(() => times.map(() => 0));
  for (const [t, lv, n] of answer.rows) counts[levels.indexOf(lv)][at.get(fmt.parseTime(String(t)))] = n;
  // Stacked: each level's bar reaches the sum of it and the levels below;
  // the tallest is drawn first so the shorter ones show in front of it.
  const stacked = levels.map((lv, l) => times.map((_, i) => counts.slice(0, l + 1).reduce((sum, c) => sum + c[i], 0)));
  const series = levels.map((lv, l) => ({ label: lv, values: stacked[l], raw: counts[l], color: colours[lv], bars: true }))
    .filter((s) => s.raw.some((v) => v > 0))
    .reverse();
  return { timestamps: times, series, title: 'Log records per severity', xRange: [from, to] };
}

/** The search's records in a scroll box that renders only those in view
 * (1,000 records are about as fast as 10); records open in place. */
function recordList(rows, needle) {
  // `rows()` answers the records shown now (live tail replaces them).
  const list = h('div', { role: 'list', 'aria-label': 'Log records', id: 'log-list' });
  const scroller = h('div', { class: 'log-scroll', id: 'log-scroll' }, logHeader(), list);
  const view = virtualList(scroller, list, {
    count: rows().length,
    estimate: 29,
    item: (i) => logLine(rows()[i], true, needle),
  });
  return { scroller, view };
}

const LIMIT = 1000;
const LIVE_EVERY_MS = 2000;
const LIVE_MAX = 5000;

const recordKey = (r) => `${r.time}|${r.service_name}|${r.span_id}|${typeof r.body === 'string' ? r.body : JSON.stringify(r.body)}`;

export async function render(main, ctx) {
  ctx.title('Logs');
  const q = (k) => ctx.query.get(k) || '';
  const live = q('live') === '1';
  const filters = { q: q('q'), severity: q('severity'), service: q('service') };
  const results = h('div', { id: 'log-results' }, h('p', { class: 'muted' }, 'Searching…'));
  const form = h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Log search',
    onsubmit: (e) => {
      e.preventDefault();
      const u = new URLSearchParams(location.search);
      for (const [k, v] of new FormData(form)) { if (v) u.set(k, v); else u.delete(k); }
      navigate(`/logs?${u}`);
    },
  },
  field('Text', h('input', { type: 'search', name: 'q', value: q('q'), placeholder: 'payment declined', size: '30' })),
  field('Severity at least', h('select', { name: 'severity' }, ['', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'].map((s) => h('option', { value: s, selected: s === q('severity') }, s || 'any')))),
  field('Service', h('input', { name: 'service', value: q('service'), placeholder: 'checkout' })),
  h('button', { type: 'submit', class: 'primary' }, 'Search'),
  h('button', {
    type: 'button', id: 'live-tail', 'aria-pressed': String(live), class: live ? 'live on' : 'live',
    title: live ? 'Stop following new records' : 'Follow new records as they arrive',
    onclick: () => {
      const u = new URLSearchParams(location.search);
      if (live) u.delete('live');
      else {
        // Live follows now: a fixed range in the past makes no sense.
        u.set('live', '1');
        for (const k of ['from', 'to']) u.delete(k);
      }
      navigate(`/logs?${u}`);
    },
  }, live ? '■ Stop live' : '▶ Live'));
  const histogram = h('section', { class: 'chart', id: 'log-volume', 'aria-label': 'Log records per severity', hidden: live });
  mount(main, h('h1', {}, 'Logs'), form, histogram, results);
  if (!live) {
    volume(ctx, filters)
      .then((spec) => {
        if (!ctx.alive()) return;
        if (!spec.timestamps.length) { mount(histogram); return; }
        const plot = h('div');
        mount(histogram, h('h3', {}, spec.title), plot);
        const chart = timeChart(plot, { ...spec, height: 120, min: 0, format: (v) => fmt.count(v) });
        ctx.onCleanup(() => chart.dispose());
      })
      .catch((e) => { if (ctx.alive()) mount(histogram, errorBox(e)); });
  }
  let rows;
  try {
    const answer = await api(`/api/v1/logs${qs({
      ...filters, from: ctx.range.from / 1000, to: live ? '' : ctx.range.to / 1000, limit: LIMIT,
    })}`);
    if (!ctx.alive()) return;
    rows = records(answer);
    const summary = h('p', { class: 'muted', id: 'log-count' });
    const said = () => {
      summary.textContent = rows.length
        ? `${fmt.count(rows.length)} records, newest first${answer.truncated || rows.length === LIMIT ? ' (more match; narrow the search or the range)' : ''}`
        : 'No log records match in the time range.';
    };
    said();
    const { scroller, view } = recordList(() => rows, filters.q);
    ctx.onCleanup(() => view.dispose());
    const liveLine = h('p', { class: 'live-status', id: 'live-status', 'aria-live': 'polite', hidden: !live });
    const waiting = h('button', { type: 'button', id: 'live-new', hidden: true, class: 'primary' });
    mount(results, summary, liveLine, waiting, scroller);
    if (live) follow({ ctx, filters, get rows() { return rows; }, set rows(r) { rows = r; }, view, scroller, liveLine, waiting, said });
  } catch (e) {
    if (ctx.alive()) mount(results, errorBox(e));
  }
}

/** Live tail: asks every 2 s for records newer than the newest shown and
 * puts them on top; while the list is scrolled away from the top they wait
 * behind a button, so reading is not disturbed. */
function follow(state) {
  const { ctx, filters, view, scroller, liveLine, waiting, said } = state;
  const seen = new Set(state.rows.map(recordKey));
  let newest = state.rows.length ? state.rows[0].time : new Date(Date.now() - 60000).toISOString();
  let pending = [];
  let busy = false;
  const show = () => {
    let rows = [...pending, ...state.rows];
    pending = [];
    if (rows.length > LIVE_MAX) {
      rows = rows.slice(0, LIVE_MAX);
      seen.clear();
      for (const r of rows) seen.add(recordKey(r));
    }
    state.rows = rows;
    waiting.hidden = true;
    view.reset(rows.length);
    said();
  };
  waiting.addEventListener('click', () => { scroller.scrollTop = 0; show(); });
  const poll = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const answer = await api(`/api/v1/logs${qs({ ...filters, from: newest, limit: LIMIT })}`);
      if (!ctx.alive()) return;
      const fresh = records(answer).filter((r) => !seen.has(recordKey(r)));
      for (const r of fresh) seen.add(recordKey(r));
      if (fresh.length) {
        newest = fresh[0].time;
        pending = [...fresh, ...pending];
        if (scroller.scrollTop < 8) show();
        else {
          waiting.hidden = false;
          waiting.textContent = `↑ ${fmt.count(pending.length)} new record${pending.length === 1 ? '' : 's'}`;
        }
      }
      liveLine.textContent = `● Live — checked ${fmt.time(Date.now())}; new records appear on top.`;
      liveLine.classList.remove('bad');
    } catch (e) {
      if (ctx.alive()) {
        liveLine.textContent = `Live tail paused: ${e.message}; retrying.`;
        liveLine.classList.add('bad');
      }
    } finally {
      busy = false;
    }
  };
  poll();
  const timer = setInterval(poll, LIVE_EVERY_MS);
  ctx.onCleanup(() => clearInterval(timer));
}
