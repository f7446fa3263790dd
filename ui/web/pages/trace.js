// One trace: a waterfall of its spans (click or Enter for attributes,
// events and links) and the trace's log records.
import { api, qs, records } from '/ui/lib/api.js';
import { h, mount, errorBox } from '/ui/lib/dom.js';
import { palette } from '/ui/lib/chart.js';
import * as fmt from '/ui/lib/format.js';
import { logLine } from '/ui/pages/logs.js';

function kv(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('p', { class: 'muted' }, 'none');
  return h('dl', { class: 'kv' }, entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]));
}

/** Spans in tree order (parents before children, siblings by start) with
 * their depth, the index of their parent in the list (-1 for a root) and
 * whether they have children. */
export function treeOrder(spans) {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_span_id && byId.has(s.parent_span_id) && s.parent_span_id !== s.span_id) {
      if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
      children.get(s.parent_span_id).push(s);
    } else {
      roots.push(s);
    }
  }
  const out = [];
  const seen = new Set();
  // A loop of parents (bad data) must not hang the page: each span once.
  const walk = (s, depth, parent) => {
    if (seen.has(s.span_id)) return;
    seen.add(s.span_id);
    const index = out.length;
    const kids = children.get(s.span_id) || [];
    out.push({ span: s, depth, parent, hasChildren: kids.length > 0 });
    for (const c of kids) walk(c, depth + 1, index);
  };
  for (const r of roots) walk(r, 0, -1);
  for (const s of spans) walk(s, 0, -1);
  return out;
}

/** A tick spacing (ms) giving about `n` ticks over `total` ms: 1, 2 or 5 × 10^k. */
export function rulerStep(total, n = 6) {
  const raw = total / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || p * 10;
}

/** `s` (a span) mentions `needle` (lowercase) in its service, name, ids,
 * status or attribute keys and values. */
function spanMatches(s, needle) {
  if (!needle) return false;
  const hay = [s.service_name, s.name, s.span_id, s.status_code, s.status_message, s.http_route,
    ...Object.entries(s.attributes || {}).flat()].map((v) => String(v ?? '').toLowerCase());
  return hay.some((v) => v.includes(needle));
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
  const errors = spans.filter((s) => s.status_code === 'ERROR').length;

  // A colour per service, in the order services first appear.
  const colours = palette();
  const services = new Map();
  for (const s of [...spans].sort((a, b) => a.startMs - b.startMs)) {
    const entry = services.get(s.service_name) || { colour: colours[services.size % colours.length], spans: 0 };
    entry.spans += 1;
    services.set(s.service_name, entry);
  }
  const step = rulerStep(total);
  const stepPct = (step / total) * 100;

  const order = treeOrder(spans);
  const collapsed = new Set(); // indices of collapsed spans
  const rows = [];
  const details = [];
  /** Hides the rows under collapsed spans (and their open details). */
  const applyCollapse = () => {
    const hiddenUnder = new Array(order.length).fill(false);
    order.forEach((o, i) => {
      hiddenUnder[i] = o.parent >= 0 && (hiddenUnder[o.parent] || collapsed.has(o.parent));
      rows[i].hidden = hiddenUnder[i];
      if (hiddenUnder[i]) details[i].hidden = true;
      else details[i].hidden = rows[i].getAttribute('aria-expanded') !== 'true';
      const toggle = rows[i].querySelector('.wf-toggle');
      if (toggle) {
        toggle.textContent = collapsed.has(i) ? '▸' : '▾';
        toggle.setAttribute('aria-label', `${collapsed.has(i) ? 'Expand' : 'Collapse'} the spans under ${o.span.name}`);
        toggle.setAttribute('aria-expanded', String(!collapsed.has(i)));
      }
    });
    const shownCount = hiddenUnder.filter((x) => !x).length;
    countLine.textContent = shownCount === order.length ? '' : `${order.length - shownCount} spans hidden in collapsed subtrees`;
  };
  const setCollapsed = (i, on) => {
    if (!order[i].hasChildren) return;
    if (on) collapsed.add(i); else collapsed.delete(i);
    applyCollapse();
  };

  order.forEach(({ span: s, depth, hasChildren }, i) => {
    const offset = s.startMs - t0;
    const left = (offset / total) * 100;
    const width = Math.max(((s.duration_ns / 1e6) / total) * 100, 0.2);
    const colour = services.get(s.service_name).colour;
    const detail = h('div', { class: 'wf-detail', hidden: true, id: `span-${s.span_id}` }, spanDetail(s, offset));
    const toggle = hasChildren
      ? h('button', {
        type: 'button', class: 'wf-toggle', 'aria-expanded': 'true',
        onclick: (e) => { e.stopPropagation(); setCollapsed(i, !collapsed.has(i)); },
      }, '▾')
      : h('span', { class: 'wf-toggle-space', 'aria-hidden': 'true' });
    const row = h('div', {
      class: 'wf-row', role: 'button', tabindex: '0', 'aria-expanded': 'false', 'aria-controls': `span-${s.span_id}`,
      dataset: { spanId: s.span_id, service: s.service_name },
    },
    h('div', { class: 'wf-name', style: `padding-left:${4 + depth * 14}px`, title: `${s.service_name}: ${s.name}` },
      toggle,
      h('span', { class: 'swatch', style: `background:${colour}`, 'aria-hidden': 'true' }),
      s.status_code === 'ERROR' ? h('span', { class: 'badge bad' }, '!') : null, ' ',
      h('strong', {}, s.service_name), ' ', s.name),
    h('div', { class: 'wf-track' },
      h('div', {
        class: `wf-bar${s.status_code === 'ERROR' ? ' err' : ''}`,
        style: `left:${left}%;width:${Math.min(width, 100 - left)}%;background:${colour}`,
        title: `starts at +${fmt.ns(offset * 1e6)}, lasts ${fmt.ns(s.duration_ns)}`,
      }),
      // The offset beside the bar, where there is room for it.
      left >= 15 ? h('span', { class: 'wf-offset', style: `right:${100 - left}%` }, `+${fmt.ns(offset * 1e6)}`)
        : left + width <= 85 && offset > 0 ? h('span', { class: 'wf-offset', style: `left:${left + width}%` }, `+${fmt.ns(offset * 1e6)}`)
          : null),
    h('div', { class: 'wf-dur' }, fmt.ns(s.duration_ns)));
    const open = () => {
      const isOpen = row.getAttribute('aria-expanded') === 'true';
      row.setAttribute('aria-expanded', String(!isOpen));
      detail.hidden = isOpen;
    };
    row.addEventListener('click', open);
    row.addEventListener('keydown', (e) => {
      if (e.target !== row) return;
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); }
      else if (e.key === 'ArrowLeft') { e.preventDefault(); setCollapsed(i, true); }
      else if (e.key === 'ArrowRight') { e.preventDefault(); setCollapsed(i, false); }
      else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const all = [...main.querySelectorAll('.wf-row:not([hidden])')];
        const next = all[all.indexOf(row) + (e.key === 'ArrowDown' ? 1 : -1)];
        if (next) next.focus();
      }
    });
    rows.push(row);
    details.push(detail);
  });

  // The time ruler: ticks every `step` ms from the trace's start, and the
  // same lines behind every bar.
  const ticks = [];
  for (let t = 0; t <= total + 1e-9; t += step) ticks.push(t);
  const ruler = h('div', { class: 'wf-ruler', 'aria-hidden': 'true' },
    h('div', { class: 'wf-name' }, 'Service and operation'),
    h('div', { class: 'wf-track' }, ticks.map((t) => h('span', { class: 'wf-tick', style: `left:${(t / total) * 100}%` }, fmt.ns(t * 1e6)))),
    h('div', { class: 'wf-dur' }, 'Duration'));

  // Search in the trace: matching spans marked, the others dimmed, Enter
  // moves to the next match (opening collapsed subtrees on the way).
  let matches = [];
  let at = -1;
  const found = h('span', { class: 'muted', id: 'trace-find-count', 'aria-live': 'polite' });
  const find = h('input', {
    type: 'search', id: 'trace-find', placeholder: 'service, operation, attribute…', 'aria-label': 'Find in this trace',
    oninput: () => {
      const needle = find.value.trim().toLowerCase();
      matches = [];
      order.forEach(({ span: s }, i) => {
        const hit = spanMatches(s, needle);
        rows[i].classList.toggle('match', hit);
        rows[i].classList.toggle('dim', Boolean(needle) && !hit);
        if (hit) matches.push(i);
      });
      at = -1;
      found.textContent = needle ? `${matches.length} of ${order.length} spans match` : '';
    },
    onkeydown: (e) => {
      if (e.key !== 'Enter' || !matches.length) return;
      e.preventDefault();
      at = (at + (e.shiftKey ? matches.length - 1 : 1)) % matches.length;
      const i = matches[at];
      for (let p = order[i].parent; p >= 0; p = order[p].parent) collapsed.delete(p);
      applyCollapse();
      rows[i].scrollIntoView({ block: 'center' });
      found.textContent = `${at + 1} of ${matches.length} matching spans (Enter: next, Shift+Enter: previous)`;
    },
  });
  const countLine = h('span', { class: 'muted', id: 'trace-collapsed' });
  const legend = h('ul', { class: 'legend', id: 'trace-services', 'aria-label': 'Services' },
    [...services].map(([name, { colour, spans: n }]) => h('li', {},
      h('span', { class: 'swatch', style: `background:${colour}`, 'aria-hidden': 'true' }), `${name} `, h('span', { class: 'muted' }, `(${n})`))));
  const tools = h('div', { class: 'filters wf-tools' },
    h('label', {}, 'Find in trace', find), found,
    h('button', { type: 'button', id: 'collapse-all', onclick: () => { order.forEach((o, i) => { if (o.hasChildren && o.depth > 0) collapsed.add(i); }); applyCollapse(); } }, 'Collapse all'),
    h('button', { type: 'button', id: 'expand-all', onclick: () => { collapsed.clear(); applyCollapse(); } }, 'Expand all'),
    countLine);

  mount(main,
    h('h1', {}, 'Trace ', h('span', { class: 'mono' }, id)),
    h('p', { class: 'muted' }, `${spans.length} spans · ${services.size} services · ${fmt.ns(total * 1e6)} · started ${fmt.time(t0, { ms: true })}`,
      errors ? [' · ', h('span', { class: 'badge bad' }, `${errors} errors`)] : null),
    legend,
    tools,
    h('div', { class: 'waterfall', id: 'waterfall', role: 'list', 'aria-label': 'Spans as a waterfall', style: `--tick:${stepPct}%` },
      ruler, rows.map((r, i) => [r, details[i]])),
    h('h2', {}, `Logs of this trace (${logs.length})`),
    logs.length ? logsView(logs) : h('p', { class: 'muted' }, 'No log records carry this trace id.'));
}

function spanDetail(s, offset) {
  return [
    h('dl', { class: 'kv' },
      h('dt', {}, 'offset'), h('dd', {}, `+${fmt.ns(offset * 1e6)} from the trace's start`),
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
