// One trace: a waterfall of its spans (click or Enter for attributes,
// events and links) and the trace's log records.
import { api, qs, records } from '/ui/lib/api.js';
import { h, mount, errorBox } from '/ui/lib/dom.js';
import * as fmt from '/ui/lib/format.js';
import { logLine } from '/ui/pages/logs.js';

function kv(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('p', { class: 'muted' }, 'none');
  return h('dl', { class: 'kv' }, entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]));
}

/** Spans in tree order (parents before children, siblings by start) with their depth. */
export function treeOrder(spans) {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_span_id && byId.has(s.parent_span_id)) {
      if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
      children.get(s.parent_span_id).push(s);
    } else {
      roots.push(s);
    }
  }
  const out = [];
  const walk = (s, depth) => {
    out.push({ span: s, depth });
    for (const c of (children.get(s.span_id) || [])) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  return out;
}

export async function render(main, ctx) {
  const id = ctx.args[0];
  ctx.title(`Trace ${id}`);
  mount(main, h('h1', {}, 'Trace ', h('span', { class: 'mono' }, id)), h('p', { class: 'muted' }, 'Loading…'));
  let answer;
  try {
    const path = `/api/v1/traces/${encodeURIComponent(id)}`;
    // A link that knows when the trace happened reads the hours around it;
    // the whole store only when the trace is not there.
    const at = Number(ctx.query.get('at'));
    if (at > 0) answer = await api(`${path}${qs({ from: at - 3600, to: at + 3600 })}`);
    if (!answer || !answer.spans.rows.length) answer = await api(path);
  } catch (e) {
    if (ctx.alive()) mount(main, h('h1', {}, 'Trace'), errorBox(e));
    return;
  }
  if (!ctx.alive()) return;
  const spans = records(answer.spans).map((s) => ({ ...s, startMs: fmt.parseTime(s.start_time), endMs: fmt.parseTime(s.end_time) }));
  const logs = records(answer.logs);
  if (!spans.length) {
    mount(main, h('h1', {}, 'Trace ', h('span', { class: 'mono' }, id)),
      h('p', {}, 'No spans of this trace are stored (it may be older than the retention, or not exported yet).'),
      logs.length ? logsView(logs) : null);
    return;
  }
  // Nanosecond precision for bar placement comes from duration_ns; start
  // offsets in ms are enough at the waterfall's resolution.
  const t0 = Math.min(...spans.map((s) => s.startMs));
  const t1 = Math.max(...spans.map((s) => s.startMs + s.duration_ns / 1e6));
  const total = Math.max(t1 - t0, 0.001);
  const services = new Set(spans.map((s) => s.service_name));
  const errors = spans.filter((s) => s.status_code === 'ERROR').length;

  const rows = treeOrder(spans).map(({ span: s, depth }) => {
    const left = ((s.startMs - t0) / total) * 100;
    const width = Math.max(((s.duration_ns / 1e6) / total) * 100, 0.2);
    const detail = h('div', { class: 'wf-detail', hidden: true, id: `span-${s.span_id}` }, spanDetail(s));
    const row = h('div', {
      class: 'wf-row', role: 'button', tabindex: '0', 'aria-expanded': 'false', 'aria-controls': `span-${s.span_id}`,
      dataset: { spanId: s.span_id },
    },
    h('div', { class: 'wf-name', style: `padding-left:${8 + depth * 16}px`, title: `${s.service_name}: ${s.name}` },
      s.status_code === 'ERROR' ? h('span', { class: 'badge bad' }, '!') : null, ' ',
      h('strong', {}, s.service_name), ' ', s.name),
    h('div', { class: 'wf-track' }, h('div', { class: `wf-bar${s.status_code === 'ERROR' ? ' err' : ''}`, style: `left:${left}%;width:${Math.min(width, 100 - left)}%` })),
    h('div', { class: 'wf-dur' }, fmt.ns(s.duration_ns)));
    const toggle = () => {
      const open = row.getAttribute('aria-expanded') === 'true';
      row.setAttribute('aria-expanded', String(!open));
      detail.hidden = open;
    };
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); }
      else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const all = [...main.querySelectorAll('.wf-row')];
        const next = all[all.indexOf(row) + (e.key === 'ArrowDown' ? 1 : -1)];
        if (next) next.focus();
      }
    });
    return [row, detail];
  });

  mount(main,
    h('h1', {}, 'Trace ', h('span', { class: 'mono' }, id)),
    h('p', { class: 'muted' }, `${spans.length} spans · ${services.size} services · ${fmt.ns(total * 1e6)} · started ${fmt.time(t0)}`,
      errors ? [' · ', h('span', { class: 'badge bad' }, `${errors} errors`)] : null),
    h('div', { class: 'waterfall', id: 'waterfall', role: 'list', 'aria-label': 'Spans as a waterfall' }, rows),
    h('h2', {}, `Logs of this trace (${logs.length})`),
    logs.length ? logsView(logs) : h('p', { class: 'muted' }, 'No log records carry this trace id.'));
}

function spanDetail(s) {
  return [
    h('dl', { class: 'kv' },
      h('dt', {}, 'span_id'), h('dd', {}, s.span_id),
      h('dt', {}, 'parent'), h('dd', {}, s.parent_span_id || '(root)'),
      h('dt', {}, 'kind'), h('dd', {}, s.kind),
      h('dt', {}, 'status'), h('dd', {}, `${s.status_code}${s.status_message ? `: ${s.status_message}` : ''}`),
      h('dt', {}, 'start'), h('dd', {}, fmt.time(s.startMs, { ms: true })),
      h('dt', {}, 'scope'), h('dd', {}, `${s.scope_name || ''} ${s.scope_version || ''}`)),
    h('h3', {}, 'Attributes'), kv(s.attributes),
    h('h3', {}, `Events (${(s.events || []).length})`),
    (s.events || []).length ? h('ul', {}, s.events.map((e) => h('li', {}, `${fmt.time(e.time, { ms: true })} ${e.name}`, kv(e.attributes)))) : h('p', { class: 'muted' }, 'none'),
    h('h3', {}, `Links (${(s.links || []).length})`),
    (s.links || []).length ? h('ul', {}, s.links.map((l) => h('li', {}, h('a', { class: 'mono', href: `/traces/${l.trace_id}` }, l.trace_id), ` span ${l.span_id}`, kv(l.attributes)))) : h('p', { class: 'muted' }, 'none'),
    h('h3', {}, 'Resource'), kv(s.resource_attributes),
  ];
}

function logsView(logs) {
  return h('div', { id: 'trace-logs' }, logs.map((l) => logLine(l, false)));
}
