// Trace search: by service, route, status, minimum duration and time range.
import { api, qs, records, traceHref } from '/ui/lib/api.js';
import { h, mount, errorBox, field, table } from '/ui/lib/dom.js';
import * as fmt from '/ui/lib/format.js';
import { navigate } from '/ui/app.js';

export async function render(main, ctx) {
  ctx.title('Traces');
  const q = (k) => ctx.query.get(k) || '';
  const results = h('div', { id: 'trace-results' }, h('p', { class: 'muted' }, 'Searching…'));
  const form = h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Trace search',
    onsubmit: (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      const u = new URLSearchParams(location.search);
      for (const [k, v] of Object.entries(data)) { if (v) u.set(k, v); else u.delete(k); }
      navigate(`/traces?${u}`);
    },
  },
  field('Service', h('input', { name: 'service', value: q('service'), placeholder: 'checkout' })),
  field('Route', h('input', { name: 'route', value: q('route'), placeholder: '/pay' })),
  field('Status', h('select', { name: 'status' }, ['', 'ERROR', 'OK', 'UNSET'].map((s) => h('option', { value: s, selected: s === q('status') }, s || 'any')))),
  field('Min duration', h('input', { name: 'min_duration', value: q('min_duration'), placeholder: '250ms', size: '8' })),
  h('button', { type: 'submit', class: 'primary' }, 'Search'));
  mount(main, h('h1', {}, 'Traces'), form, results);

  try {
    const answer = await api(`/api/v1/traces${qs({
      service: q('service'), route: q('route'), status: q('status'), min_duration: q('min_duration'),
      from: ctx.range.from / 1000, to: ctx.range.to / 1000, limit: 200,
    })}`);
    if (!ctx.alive()) return;
    const rows = records(answer);
    if (!rows.length) {
      mount(results, h('p', { class: 'muted' }, 'No trace has spans matching these filters in the time range.'));
      return;
    }
    mount(results,
      h('p', { class: 'muted' }, `${rows.length} traces, newest first${answer.truncated ? ' (more match; narrow the search)' : ''}`),
      table(['Start', 'Trace', 'Service', 'First span', 'Route', 'Spans', 'Errors', 'Duration'], rows.map((r) => [
        fmt.time(r.start_time, { ms: true }),
        h('a', { class: 'mono', href: traceHref(r.trace_id, r.start_time) }, r.trace_id),
        r.service_name, r.name, r.http_route || '',
        h('td', { class: 'num' }, String(r.spans)),
        h('td', { class: 'num' }, r.errors ? h('span', { class: 'badge bad' }, String(r.errors)) : '0'),
        h('td', { class: 'num' }, fmt.ns(r.max_duration_ns)),
      ]), { caption: 'Spans, errors and duration count the spans matching the filters.' }));
  } catch (e) {
    if (ctx.alive()) mount(results, errorBox(e));
  }
}
