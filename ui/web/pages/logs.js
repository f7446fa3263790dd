// Log search: text, severity, service and time range; lines link to traces.
import { api, qs, records, traceHref } from '/ui/lib/api.js';
import { h, mount, errorBox, field } from '/ui/lib/dom.js';
import { timeChart } from '/ui/lib/chart.js';
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
 * histogram above the list. */
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
  const levels = ['error', 'warn', 'info and below'];
  const colours = { error: '#cf222e', warn: '#bf8700', 'info and below': '#8c959f' };
  const series = levels.map((lv) => ({ label: lv, values: times.map(() => 0), color: colours[lv] }));
  for (const [t, lv, n] of answer.rows) series[levels.indexOf(lv)].values[at.get(fmt.parseTime(String(t)))] = n;
  return { timestamps: times, series: series.filter((s) => s.values.some((v) => v > 0)), title: 'Log records per severity' };
}

export async function render(main, ctx) {
  ctx.title('Logs');
  const q = (k) => ctx.query.get(k) || '';
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
  h('button', { type: 'submit', class: 'primary' }, 'Search'));
  const histogram = h('section', { class: 'chart', id: 'log-volume', 'aria-label': 'Log records per severity' });
  mount(main, h('h1', {}, 'Logs'), form, histogram, results);
  volume(ctx, { q: q('q'), severity: q('severity'), service: q('service') })
    .then((spec) => {
      if (!ctx.alive()) return;
      if (!spec.timestamps.length) { mount(histogram); return; }
      const plot = h('div');
      mount(histogram, h('h3', {}, spec.title), plot);
      const chart = timeChart(plot, { ...spec, height: 120, min: 0, format: (v) => fmt.count(v) });
      ctx.onCleanup(() => chart.dispose());
    })
    .catch((e) => { if (ctx.alive()) mount(histogram, errorBox(e)); });
  try {
    const answer = await api(`/api/v1/logs${qs({
      q: q('q'), severity: q('severity'), service: q('service'),
      from: ctx.range.from / 1000, to: ctx.range.to / 1000, limit: 500,
    })}`);
    if (!ctx.alive()) return;
    const rows = records(answer);
    mount(results,
      h('p', { class: 'muted' }, rows.length ? `${rows.length} records, newest first${answer.truncated ? ' (more match; narrow the search)' : ''}` : 'No log records match in the time range.'),
      rows.length ? logHeader() : null,
      h('div', { role: 'list', 'aria-label': 'Log records' }, rows.map((l) => logLine(l, true, q('q')))));
  } catch (e) {
    if (ctx.alive()) mount(results, errorBox(e));
  }
}
