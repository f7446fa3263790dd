// Log search: text, severity, service and time range; lines link to traces.
import { api, qs, records, traceHref } from '/ui/lib/api.js';
import { h, mount, errorBox, field } from '/ui/lib/dom.js';
import * as fmt from '/ui/lib/format.js';
import { navigate } from '/ui/app.js';

function severityClass(n) {
  if (n >= 17) return 'bad';
  if (n >= 13) return 'warn';
  return 'neutral';
}

/** One log record; `traceLink` adds a link to its trace. */
export function logLine(l, traceLink = true) {
  return h('div', { class: 'logline', role: 'listitem' },
    h('span', {}, fmt.time(l.time, { ms: true })),
    h('span', {}, h('span', { class: `badge ${severityClass(l.severity_number || 0)}` }, l.severity_text || String(l.severity_number ?? ''))),
    h('span', {}, l.service_name || ''),
    h('span', { class: 'body' }, typeof l.body === 'object' && l.body !== null ? JSON.stringify(l.body) : (l.body ?? '')),
    h('span', {}, traceLink && l.trace_id ? h('a', { href: traceHref(l.trace_id, l.time), title: `trace ${l.trace_id}` }, 'trace →') : ''));
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
  mount(main, h('h1', {}, 'Logs'), form, results);
  try {
    const answer = await api(`/api/v1/logs${qs({
      q: q('q'), severity: q('severity'), service: q('service'),
      from: ctx.range.from / 1000, to: ctx.range.to / 1000, limit: 500,
    })}`);
    if (!ctx.alive()) return;
    const rows = records(answer);
    mount(results,
      h('p', { class: 'muted' }, rows.length ? `${rows.length} records, newest first${answer.truncated ? ' (more match; narrow the search)' : ''}` : 'No log records match in the time range.'),
      h('div', { role: 'list', 'aria-label': 'Log records' }, rows.map((l) => logLine(l))));
  } catch (e) {
    if (ctx.alive()) mount(results, errorBox(e));
  }
}
