// Trace search, as Jaeger's: service, route and operation chosen from the
// data, status and minimum duration; a duration-over-time plot of the traces
// found; results sorted and paged, each with the trace's own span count and
// duration.
import { api, qs, records, traceHref } from '/ui/lib/api.js';
import { h, mount, errorBox, field, table } from '/ui/lib/dom.js';
import { scatterChart } from '/ui/lib/chart.js';
import * as fmt from '/ui/lib/format.js';
import { navigate } from '/ui/app.js';

const PAGE = 50;
const SORTS = [
  ['newest', 'Newest first'],
  ['oldest', 'Oldest first'],
  ['longest', 'Longest first'],
  ['shortest', 'Shortest first'],
  ['most_spans', 'Most spans'],
];
const FILTERS = ['service', 'route', 'name', 'status', 'min_duration', 'sort'];

/** A <select> of `values` (plus "any"), keeping `current` even when the data
 * no longer has it. */
function choice(name, values, current) {
  const all = current && !values.includes(current) ? [current, ...values] : values;
  return h('select', { name },
    h('option', { value: '' }, 'any'),
    all.map((v) => h('option', { value: v, selected: v === current }, v)));
}

export async function render(main, ctx) {
  ctx.title('Traces');
  const q = (k) => ctx.query.get(k) || '';
  const offset = Math.max(0, Number(q('offset')) || 0);
  const results = h('div', { id: 'trace-results' }, h('p', { class: 'muted' }, 'Searching…'));
  const plot = h('section', { class: 'chart', id: 'trace-plot', 'aria-label': 'Trace durations over time' });
  const service = h('select', { name: 'service' }, h('option', { value: q('service') }, q('service') || 'any'));
  const route = h('select', { name: 'route' }, h('option', { value: q('route') }, q('route') || 'any'));
  const operation = h('select', { name: 'name' }, h('option', { value: q('name') }, q('name') || 'any'));
  const search = (params) => {
    const u = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(params)) { if (v) u.set(k, v); else u.delete(k); }
    navigate(`/traces?${u}`);
  };
  const form = h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Trace search',
    onsubmit: (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      search({ ...Object.fromEntries(FILTERS.map((k) => [k, data[k]])), offset: '' });
    },
  },
  field('Service', service),
  field('Route', route),
  field('Operation', operation),
  field('Status', h('select', { name: 'status' }, ['', 'ERROR', 'OK', 'UNSET'].map((s) => h('option', { value: s, selected: s === q('status') }, s || 'any')))),
  field('Min duration', h('input', { name: 'min_duration', value: q('min_duration'), placeholder: '250ms', size: '8' })),
  field('Sort', h('select', { name: 'sort' }, SORTS.map(([v, label]) => h('option', { value: v, selected: v === (q('sort') || 'newest') }, label)))),
  h('button', { type: 'submit', class: 'primary' }, 'Search'));
  mount(main, h('h1', {}, 'Traces'), form, plot, results);

  // The choices come from the spans of the page's range; routes and
  // operations follow the chosen service.
  api(`/api/v1/services${qs({ from: ctx.range.from / 1000, to: ctx.range.to / 1000 })}`)
    .then(({ services }) => {
      if (!ctx.alive()) return;
      const union = (name, key) => [...new Set(services
        .filter((s) => !name || s.name === name)
        .flatMap((s) => s[key]))].sort();
      const replace = (name, values, current) => form.querySelector(`select[name=${name}]`).replaceWith(choice(name, values, current));
      const chosen = choice('service', services.map((s) => s.name), q('service'));
      chosen.addEventListener('change', () => {
        // Another service: any of its routes and operations.
        replace('route', union(chosen.value, 'routes'), '');
        replace('name', union(chosen.value, 'operations'), '');
      });
      service.replaceWith(chosen);
      replace('route', union(q('service'), 'routes'), q('route'));
      replace('name', union(q('service'), 'operations'), q('name'));
    })
    .catch(() => { /* the search itself reports errors; plain choices stay */ });

  try {
    const answer = await api(`/api/v1/traces${qs({
      service: q('service'), route: q('route'), name: q('name'), status: q('status'),
      min_duration: q('min_duration'), sort: q('sort'),
      from: ctx.range.from / 1000, to: ctx.range.to / 1000, limit: PAGE, offset: offset || '',
    })}`);
    if (!ctx.alive()) return;
    const rows = records(answer);
    if (!rows.length) {
      mount(plot);
      mount(results, h('p', { class: 'muted' }, offset
        ? 'No more traces: this is past the last page.'
        : 'No trace has spans matching these filters in the time range.'),
      offset ? pager(offset, 0, search) : null);
      return;
    }
    const points = rows.map((r) => ({ t: fmt.parseTime(r.start_time), v: Number(r.duration_ns), bad: r.errors > 0 }));
    const canvas = h('div');
    mount(plot, h('h3', {}, 'Duration of the traces found (click a point to open its trace)'), canvas);
    const chart = scatterChart(canvas, {
      title: 'Trace duration over time',
      points,
      format: (v) => (v === null || v === undefined ? '—' : fmt.ns(v)),
      axisFormat: (v) => fmt.ns(v).replace(/\.0(?=[a-zµ])/, ''),
      okLabel: 'traces', badLabel: 'with errors',
      onPick: (i) => navigate(traceHref(rows[i].trace_id, rows[i].start_time)),
    });
    ctx.onCleanup(() => chart.dispose());
    const longest = Math.max(...rows.map((r) => Number(r.duration_ns)), 1);
    const sort = SORTS.find(([v]) => v === (q('sort') || 'newest'))[1].toLowerCase();
    mount(results,
      h('p', { class: 'muted', id: 'trace-count' }, `Traces ${offset + 1}–${offset + rows.length}, ${sort}`),
      table(['Start', 'Trace', 'Root span', 'Duration', 'Spans', 'Errors', 'Services', 'Matching spans'], rows.map((r) => [
        fmt.time(r.start_time, { ms: true }),
        h('a', { class: 'mono', href: traceHref(r.trace_id, r.start_time) }, r.trace_id.slice(0, 16)),
        h('span', {}, h('strong', {}, r.service_name || ''), ' ', r.name || '', r.http_route && !String(r.name).includes(r.http_route) ? h('span', { class: 'muted' }, ` ${r.http_route}`) : null),
        h('td', { class: 'num duration-cell' },
          h('span', { class: 'dur-bar', style: `width:${Math.max(2, (Number(r.duration_ns) / longest) * 100)}%`, 'aria-hidden': 'true' }),
          fmt.ns(r.duration_ns)),
        h('td', { class: 'num' }, fmt.count(r.spans)),
        h('td', { class: 'num' }, r.errors ? h('span', { class: 'badge bad' }, String(r.errors)) : '0'),
        h('td', { class: 'num' }, String(r.services)),
        h('td', { class: 'num' }, fmt.count(r.matching_spans)),
      ]), { caption: 'Each trace\'s own start, duration, spans and errors; matching spans are those meeting the filters.' }),
      pager(offset, rows.length, search));
  } catch (e) {
    if (ctx.alive()) mount(results, errorBox(e));
  }
}

/** Previous / next page links. */
function pager(offset, shown, search) {
  return h('nav', { class: 'pager', 'aria-label': 'Pages of traces' },
    h('button', { type: 'button', id: 'page-prev', disabled: offset === 0, onclick: () => search({ offset: offset > PAGE ? String(offset - PAGE) : '' }) }, '← Previous'),
    h('button', { type: 'button', id: 'page-next', disabled: shown < PAGE, onclick: () => search({ offset: String(offset + PAGE) }) }, 'Next →'));
}
