// Explore: ad-hoc SQL over spans, logs and metrics. Ctrl+Enter runs; the
// query lives in the URL; results render as a virtual table (10,000 rows
// stay responsive) and as a chart when a time column is present.
import { api, traceHref } from '/ui/lib/api.js';
import { h, mount, errorBox, toast } from '/ui/lib/dom.js';
import { timeChart } from '/ui/lib/chart.js';
import { virtualTable } from '/ui/lib/vtable.js';
import * as fmt from '/ui/lib/format.js';
import { navigate, setQuery } from '/ui/app.js';

export const EXAMPLES = [
  ['Spans: errors per service per minute', `SELECT date_bin(INTERVAL '1 minute', start_time) AS minute, service_name,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors
FROM spans
WHERE kind = 'SERVER' AND start_time > now() - INTERVAL '1 hour'
GROUP BY 1, 2 ORDER BY 1, 2`],
  ['Spans: p99 latency by route (last hour)', `SELECT service_name, http_route, percentile_cont(duration_ns, 0.99) / 1e6 AS p99_ms, count(*) AS requests
FROM spans
WHERE kind = 'SERVER' AND start_time > now() - INTERVAL '1 hour'
GROUP BY 1, 2 ORDER BY p99_ms DESC`],
  ['Spans: slowest recent requests', `SELECT start_time, service_name, http_route, duration_ns / 1e6 AS ms, status_code, trace_id
FROM spans
WHERE kind = 'SERVER' AND start_time > now() - INTERVAL '15 minutes'
ORDER BY duration_ns DESC LIMIT 100`],
  ['Logs: errors per minute by service', `SELECT date_bin(INTERVAL '1 minute', time) AS minute, service_name, count(*) AS errors
FROM logs
WHERE severity_number >= 17 AND time > now() - INTERVAL '1 hour'
GROUP BY 1, 2 ORDER BY 1, 2`],
  ['Logs: latest warnings and errors', `SELECT time, service_name, severity_text, body, trace_id
FROM logs
WHERE severity_number >= 13
ORDER BY time DESC LIMIT 200`],
  ['Metrics: request rate per route (counter)', `SELECT service_name, attributes['http.route'] AS route,
       counter_increase(CAST(value_int AS DOUBLE), time, start_time, temporality, attributes) / 3600 AS per_second
FROM metrics
WHERE metric_name = 'http.server.requests' AND time > now() - INTERVAL '1 hour'
GROUP BY 1, 2 ORDER BY 1, 2`],
  ['Metrics: names and types', `SELECT metric_name, metric_type, temporality, count(*) AS points
FROM metrics GROUP BY 1, 2, 3 ORDER BY points DESC`],
  ['SLO rollups', `SELECT * FROM slo_rollups ORDER BY bucket_start DESC LIMIT 100`],
];

const RECENT_KEY = 'smolder.explore.recent';
const MAX_SERIES = 10;

function recent() {
  try { return JSON.parse(localStorage.getItem(RECENT_KEY)) || []; } catch { return []; }
}

function remember(sql) {
  const list = [sql, ...recent().filter((q) => q !== sql)].slice(0, 20);
  localStorage.setItem(RECENT_KEY, JSON.stringify(list));
}

const isTime = (c) => c.type.startsWith('Timestamp') || c.type.startsWith('Date');
const isNumber = (c) => /^(U?Int|Float|Decimal)/.test(c.type);
const isText = (c) => /Utf8|Dictionary\(.*Utf8\)/.test(c.type);

/**
 * The chart a result suggests: x = its first time column; one line per
 * numeric column, or, with a text column, one line per text value (the most
 * frequent ten) of the first numeric column.
 */
export function chartSpec(answer) {
  const cols = answer.columns;
  const t = cols.findIndex(isTime);
  if (t < 0 || answer.rows.length < 2) return null;
  const nums = cols.map((c, i) => (i !== t && isNumber(c) ? i : -1)).filter((i) => i >= 0);
  if (!nums.length) return null;
  const label = cols.findIndex((c, i) => i !== t && isText(c));
  const times = [...new Set(answer.rows.map((r) => fmt.parseTime(String(r[t]))))].filter(Number.isFinite).sort((a, b) => a - b);
  const at = new Map(times.map((x, i) => [x, i]));
  if (label >= 0) {
    const n = nums[0];
    const totals = new Map();
    for (const r of answer.rows) totals.set(r[label] ?? 'NULL', (totals.get(r[label] ?? 'NULL') || 0) + Math.abs(Number(r[n]) || 0));
    const keep = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, MAX_SERIES).map(([k]) => k);
    const series = keep.map((k) => ({ label: `${cols[n].name} · ${k}`, values: times.map(() => null), key: k }));
    const byKey = new Map(series.map((s) => [s.key, s]));
    for (const r of answer.rows) {
      const s = byKey.get(r[label] ?? 'NULL');
      const i = at.get(fmt.parseTime(String(r[t])));
      if (s && i !== undefined) s.values[i] = r[n] === null ? null : Number(r[n]);
    }
    const unit = unitFormat(cols[n].name);
    return { timestamps: times, series, title: `${cols[n].name} by ${cols[label].name}`, format: unit, axisFormat: unit };
  }
  const series = nums.slice(0, MAX_SERIES).map((n) => ({ label: cols[n].name, values: times.map(() => null), n }));
  for (const r of answer.rows) {
    const i = at.get(fmt.parseTime(String(r[t])));
    if (i === undefined) continue;
    for (const s of series) s.values[i] = r[s.n] === null ? null : Number(r[s.n]);
  }
  const unit = unitFormat(cols[nums[0]].name);
  return { timestamps: times, series, title: series.map((s) => s.label).join(', '), format: unit, axisFormat: unit };
}

export async function render(main, ctx) {
  ctx.title('Explore');
  const editor = h('textarea', {
    class: 'editor', id: 'sql', name: 'sql', spellcheck: 'false', 'aria-label': 'SQL query (Ctrl+Enter runs)',
    rows: '8',
  });
  editor.value = ctx.query.get('q') || EXAMPLES[0][1];
  const results = h('div', { id: 'results' });
  const chartEl = h('div', { id: 'chart' });
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const recentList = h('ul');
  let chart = null;
  ctx.onCleanup(() => chart && chart.dispose());

  const drawRecent = () => mount(recentList, recent().map((q) => h('li', {},
    h('button', { type: 'button', title: q, onclick: () => { editor.value = q; run(); } }, q.replace(/\s+/g, ' ')))));

  let runs = 0;
  async function run(explain = false) {
    const sql = editor.value.trim();
    if (!sql) return;
    const mine = ++runs; // a slower earlier answer must not overwrite a newer one
    const expanded = timeMacros(sql, ctx.range);
    const text = explain && !/^explain\b/i.test(expanded) ? `EXPLAIN ${expanded}` : expanded;
    setQuery({ q: sql }, { push: ctx.query.get('q') !== sql });
    ctx.query.set('q', sql);
    status.textContent = 'Running…';
    const started = performance.now();
    try {
      const answer = await api('/api/v1/sql', { method: 'POST', body: { sql: text } });
      if (!ctx.alive() || mine !== runs) return;
      const ms = performance.now() - started;
      remember(sql);
      drawRecent();
      status.textContent = `${fmt.count(answer.row_count)} rows${answer.truncated ? ' (truncated at the row limit)' : ''} in ${ms.toFixed(0)} ms`;
      if (chart) { chart.dispose(); chart = null; }
      mount(chartEl);
      const spec = explain ? null : chartSpec(answer);
      if (spec) {
        const box = h('section', { class: 'chart', 'aria-label': `Chart: ${spec.title}` }, h('h3', {}, spec.title), h('div'));
        chartEl.append(box);
        chart = timeChart(box.lastChild, spec);
      }
      if (explain) {
        mount(results, h('pre', { class: 'code', tabindex: '0' }, answer.rows.map((r) => `${r[0]}:\n${r[1]}`).join('\n\n')));
      } else {
        mount(results, virtualTable(answer.columns, answer.rows, {
          label: `Query results, ${answer.row_count} rows`,
          cell: (v, col, row) => cellView(v, col, row, answer.columns),
          // Enter on a row with a trace id opens the trace.
          onActivate: (row) => {
            const i = answer.columns.findIndex((c) => c.name === 'trace_id');
            const t = answer.columns.findIndex((c) => TIME_COLUMNS.includes(c.name) && c.type.startsWith('Timestamp'));
            if (i >= 0 && row[i]) navigate(traceHref(row[i], t >= 0 ? row[t] : undefined));
          },
        }));
      }
    } catch (e) {
      if (!ctx.alive() || mine !== runs) return;
      status.textContent = '';
      if (chart) { chart.dispose(); chart = null; }
      mount(chartEl);
      mount(results, errorBox(e));
    }
  }

  editor.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      run();
    }
  });

  const examples = h('select', {
    'aria-label': 'Example queries',
    onchange: (e) => {
      if (e.target.value === '') return;
      editor.value = EXAMPLES[Number(e.target.value)][1];
      e.target.value = '';
      editor.focus();
      toast('Example loaded; Ctrl+Enter runs it.');
    },
  }, h('option', { value: '' }, 'Example queries…'), EXAMPLES.map(([name], i) => h('option', { value: String(i) }, name)));

  mount(main,
    h('h1', {}, 'Explore'),
    h('div', { class: 'split' },
      h('div', {},
        editor,
        h('div', { class: 'toolbar' },
          h('button', { type: 'button', class: 'primary', id: 'run', onclick: () => run() }, 'Run (Ctrl+Enter)'),
          h('button', { type: 'button', id: 'explain', onclick: () => run(true) }, 'EXPLAIN'),
          examples,
          status),
        chartEl,
        results),
      h('aside', { class: 'recent', 'aria-label': 'Recent queries' }, h('h2', {}, 'Recent queries'), recentList,
        h('h2', {}, 'Tables'),
        h('p', { class: 'muted' }, 'spans, logs, metrics, slo_rollups — ', h('a', { href: '/explore?q=SHOW%20COLUMNS%20FROM%20spans' }, 'columns of spans')),
        h('h2', {}, 'Time range'),
        h('p', { class: 'muted' }, h('code', {}, '$__timeFilter(start_time)'), ', ', h('code', {}, '$__timeFrom'), ' and ', h('code', {}, '$__timeTo'),
          ' stand for the range picked in the header.'))));
  drawRecent();
  if (ctx.query.get('q')) await run();
}

/**
 * The picker's range in a query, as Grafana writes it: `$__timeFilter(col)`
 * becomes `col >= TIMESTAMP '…' AND col < TIMESTAMP '…'`, `$__timeFrom` and
 * `$__timeTo` the range's ends (UTC).
 */
export function timeMacros(sql, range) {
  const ts = (ms) => `TIMESTAMP '${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')}'`;
  return sql
    .replace(/\$__timeFilter\(\s*([A-Za-z_][A-Za-z0-9_."]*)\s*\)/g, (_, col) => `(${col} >= ${ts(range.from)} AND ${col} < ${ts(range.to)})`)
    .replace(/\$__timeFrom\b/g, ts(range.from))
    .replace(/\$__timeTo\b/g, ts(range.to));
}

/** Names of time columns that date a row's trace for the trace view's lookup. */
const TIME_COLUMNS = ['start_time', 'time', 'end_time'];

function cellView(v, col, row, columns) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, 'NULL');
  // Not a tab stop: the table is one; Enter on the active row opens it.
  if (col.name === 'trace_id' && /^[0-9a-f]{32}$/.test(v)) {
    const t = columns.findIndex((c) => TIME_COLUMNS.includes(c.name) && c.type.startsWith('Timestamp'));
    return h('a', { href: traceHref(v, t >= 0 ? row[t] : undefined), tabindex: '-1' }, v);
  }
  if (typeof v === 'number') return fmt.number(v);
  if (col.type && col.type.startsWith('Timestamp') && typeof v === 'string') return fmt.time(v, { ms: /\.\d*[1-9]/.test(v) });
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** How a column's values read on an axis: durations by their unit's name
 * (`duration_ns`, `ms`, `latency_seconds`), other numbers in SI units. */
export function unitFormat(name) {
  const n = name.toLowerCase();
  if (/(^|_)ns$/.test(n)) return (v) => fmt.ns(v);
  if (/(^|_)(ms|millis)$/.test(n)) return (v) => fmt.ns(v * 1e6);
  if (/(^|_)(s|sec|secs|seconds)$/.test(n)) return (v) => fmt.ns(v * 1e9);
  return (v) => fmt.si(v);
}
