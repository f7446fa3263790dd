// SLOs overview: every SLO and group, worst error budget first.
import { api, qs } from '/ui/lib/api.js';
import { h, mount, field } from '/ui/lib/dom.js';
import { sparkline } from '/ui/lib/chart.js';
import { virtualRows } from '/ui/lib/vtable.js';
import * as fmt from '/ui/lib/format.js';
import { setQuery, timeRange } from '/ui/app.js';

/** Alert windows in display order. */
export function windowOrder(a, b) {
  return (fmt.durationSeconds(a) || 0) - (fmt.durationSeconds(b) || 0);
}

/**
 * A burn-rate chip coloured against the window's threshold; `named` puts
 * the window in the text (the overview has a column per window instead).
 */
export function burnChip(window, rate, threshold, named = true) {
  let cls = 'ok';
  if (threshold !== undefined && rate >= threshold) cls = 'bad';
  else if (rate > 1) cls = 'warn';
  const title = threshold !== undefined ? `${window}: ${fmt.burn(rate)} (alerts at ${fmt.burn(threshold)})` : `${window}: ${fmt.burn(rate)}`;
  return h('span', { class: `badge ${cls}`, title }, named ? `${window} ${fmt.burn(rate)}` : fmt.burn(rate));
}

/** Budget remaining as a bar; overspent budgets fill red from the right. */
export function budgetBar(x) {
  if (x === null || x === undefined) return h('span', { class: 'muted' }, '—');
  const fill = x < 0
    ? h('span', { class: 'fill neg', style: `width:${Math.min(1, -x) * 100}%` })
    : h('span', { class: `fill${x < 0.25 ? ' low' : ''}`, style: `width:${Math.min(1, x) * 100}%` });
  return h('span', { class: 'budget' },
    h('span', { class: 'bar', role: 'meter', 'aria-valuemin': '-100', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(x * 100)), 'aria-label': 'error budget remaining' }, fill),
    h('span', { class: x < 0 ? 'badge bad' : '' }, fmt.budget(x)));
}

/** The state badge: the alerting stage's state when an alert is active, else the evaluation's. */
export function stateBadge(alert, evalState) {
  if (alert) {
    const cls = alert.status === 'firing' ? 'bad' : 'warn';
    return h('span', { class: `badge ${cls}`, title: `${alert.labels.severity} alert ${alert.status} since ${fmt.time(alert.since)}` }, `${alert.labels.severity} ${alert.status}`);
  }
  const cls = evalState === 'ok' ? 'ok' : evalState === 'page' ? 'bad' : 'warn';
  return h('span', { class: `badge ${cls}` }, evalState || 'no data');
}

export function groupText(group) {
  return Object.entries(group || {}).map(([k, v]) => `${k}=${v}`).join(', ');
}

/** The `slo_group` label of a group, as the server writes it (`k=v,…` by key). */
export function groupLabel(group) {
  return Object.keys(group || {}).sort().map((k) => `${k}=${group[k]}`).join(',');
}

/** The worst active alert of an SLO group. */
export function alertFor(alerts, slo, group) {
  const rank = { firing: 3, suppressed: 2, pending: 1 };
  const label = groupLabel(group);
  let worst = null;
  for (const a of alerts) {
    if (a.slo !== slo || (a.labels.slo_group || '') !== label) continue;
    const better = !worst || (rank[a.status] || 0) > (rank[worst.status] || 0)
      || (a.labels.severity === 'page' && worst.labels.severity !== 'page');
    if (better) worst = a;
  }
  return worst;
}

/** The burn that drives a condition: both windows must reach its factor,
 * so the lower of the two. */
function conditionBurn(burn, w) {
  const long = burn[w.long];
  const short = burn[w.short];
  if (long === undefined || short === undefined) return null;
  return Math.min(long, short);
}

/** The fast-burn (first page condition) and slow-burn (first ticket
 * condition) cells of a row: value, threshold and the windows' burns. */
function burnCells(s, burn) {
  const ws = s.alert_windows || [];
  const pick = (sev) => ws.find((w) => w.severity === sev) || null;
  const page = pick('page') || ws[0] || null;
  const ticket = pick('ticket') || ws[ws.length - 1] || null;
  const cell = (w) => (w ? { w, value: conditionBurn(burn, w) } : null);
  return { fast: cell(page), slow: cell(ticket === page ? null : ticket), page, ticket };
}

function rowOf(s, src, group, alerts, extra = {}) {
  const alert = alertFor(alerts, s.id, group);
  // An SLO not evaluated yet has no budget: say so rather than "ok".
  const evalState = src.error_budget_remaining === null || src.error_budget_remaining === undefined ? 'no data' : src.alert_state;
  const burn = src.burn_rates || {};
  return {
    slo: s,
    group,
    sli: src.sli,
    budget: src.error_budget_remaining,
    downtime: src.allowed_downtime_left_seconds,
    burn,
    burns: burnCells(s, burn),
    evalState,
    alert,
    state: alert ? alert.status : evalState,
    text: `${s.id} ${s.display_name || ''} ${s.service} ${groupText(group)}`.toLowerCase(),
    ...extra,
  };
}

/** A row per SLO; a grouped SLO's row shows its worst group and opens to a
 * row per group. */
function rowsOf(slos, alerts) {
  const rows = [];
  for (const s of slos) {
    const grouped = s.group_by.length && s.instances && s.instances.length;
    if (!grouped) {
      rows.push(rowOf(s, s.instances && s.instances[0] ? s.instances[0] : s, {}, alerts));
      continue;
    }
    const children = s.instances.map((i) => rowOf(s, i, i.group, alerts, { child: true }));
    const worstAlert = children.map((c) => c.alert).filter(Boolean)
      .sort((a, b) => (a.status === 'firing' ? 0 : 1) - (b.status === 'firing' ? 0 : 1))[0] || null;
    const parent = rowOf(s, s, {}, alerts, { children, parent: true });
    parent.alert = worstAlert;
    parent.state = worstAlert ? worstAlert.status : parent.evalState;
    parent.text = `${parent.text} ${children.map((c) => c.text).join(' ')}`;
    rows.push(parent);
  }
  return rows;
}

const SORTS = {
  slo: (r) => (r.slo.display_name || r.slo.id).toLowerCase(),
  service: (r) => r.slo.service,
  objective: (r) => r.slo.objective,
  sli: (r) => r.sli ?? Infinity,
  budget: (r) => r.budget ?? Infinity,
  downtime: (r) => r.downtime ?? Infinity,
  state: (r) => ({ firing: 0, suppressed: 1, pending: 2, page: 3, ticket: 4, ok: 5, 'no data': 6 }[r.state] ?? 7),
  fast: (r) => -(r.burns.fast && r.burns.fast.value !== null ? r.burns.fast.value / r.burns.fast.w.factor : -Infinity),
  slow: (r) => -(r.burns.slow && r.burns.slow.value !== null ? r.burns.slow.value / r.burns.slow.w.factor : -Infinity),
};

function sortRows(rows, key, dir) {
  const get = SORTS[key] || SORTS.budget;
  const sign = dir === 'desc' ? -1 : 1;
  const cmp = (a, b) => {
    const x = get(a);
    const y = get(b);
    return (x < y ? -1 : x > y ? 1 : 0) * sign || a.slo.id.localeCompare(b.slo.id);
  };
  const sorted = [...rows].sort(cmp);
  for (const r of sorted) if (r.children) r.children.sort(cmp);
  return sorted;
}

function matches(row, f) {
  if (f.q && !row.text.includes(f.q.toLowerCase())) return false;
  if (f.service && row.slo.service !== f.service) return false;
  if (f.state && row.state !== f.state && row.evalState !== f.state) return false;
  if (f.label) {
    const [k, v] = f.label.split('=');
    const labels = row.slo.labels || {};
    if (!(k in labels) || (v !== undefined && labels[k] !== v)) return false;
  }
  return true;
}

function sloHref(row) {
  const g = Object.keys(row.group).length ? `?group=${encodeURIComponent(JSON.stringify(row.group))}` : '';
  return `/slos/${encodeURIComponent(row.slo.id)}${g}`;
}

/**
 * Sparklines for rows as they scroll into view, a few requests at a time;
 * answers are reused for a minute so the periodic refresh costs nothing.
 * `observe(el, row)` registers a placeholder, `forget(el)` drops it and its
 * chart (its row left the DOM), `reset()` forgets the queue.
 */
function sparklines(ctx, root) {
  const queue = [];
  const cache = new Map();
  const drawn = new Set();
  let running = 0;
  const draw = (el, row, s) => {
    if (!ctx.alive() || !el.isConnected || el.chart) return;
    const ys = s.error_budget_remaining;
    const color = row.budget !== null && row.budget < 0 ? '#cf222e' : '#0b57d0';
    el.chart = sparkline(el, s.timestamps.map((t) => t / 1000), ys, color);
    drawn.add(el);
    el.setAttribute('aria-label', `budget remaining from ${fmt.budget(ys[0])} to ${fmt.budget(ys[ys.length - 1])}`);
  };
  const pump = () => {
    while (running < 4 && queue.length) {
      const { el, row } = queue.shift();
      if (!el.isConnected) continue;
      const group = Object.keys(row.group).length ? JSON.stringify(row.group) : undefined;
      // The range moves on with every refresh ("last hour" of now).
      const range = timeRange();
      const step = `${Math.max(60, Math.round((range.to - range.from) / 1000 / 48))}s`;
      const key = `${row.slo.id} ${group || ''} ${range.range}`;
      const hit = cache.get(key);
      if (hit && Date.now() - hit.at < 60000) {
        draw(el, row, hit.series);
        continue;
      }
      running += 1;
      api(`/api/v1/slos/${encodeURIComponent(row.slo.id)}/series${qs({ from: range.from / 1000, to: range.to / 1000, step, group })}`)
        .then((s) => {
          cache.set(key, { at: Date.now(), series: s });
          draw(el, row, s);
        })
        .catch(() => { if (el.isConnected) el.textContent = '—'; })
        .finally(() => { running -= 1; pump(); });
    }
  };
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      observer.unobserve(e.target);
      queue.push({ el: e.target, row: e.target.row });
    }
    pump();
  }, { root, rootMargin: '200px 0px' });
  const forget = (el) => {
    observer.unobserve(el);
    if (el.chart) el.chart.destroy();
    el.chart = null;
    drawn.delete(el);
  };
  ctx.onCleanup(() => { observer.disconnect(); for (const el of [...drawn]) forget(el); });
  return {
    observe: (el, row) => { el.row = row; observer.observe(el); },
    forget,
    reset: () => { queue.length = 0; },
  };
}

/** A fast- or slow-burn cell: the condition's burn, red at or above the
 * page threshold, amber at or above the ticket threshold. */
function burnCell(cell, burns) {
  if (!cell || cell.value === null) return h('span', { class: 'muted' }, '—');
  const pageAt = burns.page ? burns.page.factor : Infinity;
  const ticketAt = burns.ticket ? burns.ticket.factor : Infinity;
  const cls = cell.value >= pageAt ? 'bad' : cell.value >= ticketAt ? 'warn' : 'ok';
  const w = cell.w;
  const title = `${w.name} (${w.severity}): ${w.long} ${fmt.burn(cellBurn(cell, 'long'))} and ${w.short} ${fmt.burn(cellBurn(cell, 'short'))}; `
    + `page at ${burns.page ? fmt.burn(burns.page.factor) : '—'}, ticket at ${burns.ticket ? fmt.burn(burns.ticket.factor) : '—'}`;
  return h('span', { class: `badge ${cls} burn-cell`, title }, fmt.burn(cell.value));
}

function cellBurn(cell, which) {
  return cell.burn ? cell.burn[cell.w[which]] : null;
}

/** px: an overview row's height, border included (app.css: #slo-table td). */
const ROW = 37;

export async function render(main, ctx) {
  ctx.title('SLOs');
  const filters = {
    q: ctx.query.get('q') || '',
    service: ctx.query.get('service') || '',
    label: ctx.query.get('label') || '',
    state: ctx.query.get('state') || '',
  };
  const [list, active] = await Promise.all([api('/api/v1/slos?instances=true'), api('/api/v1/alerts?brief=true')]);
  if (!ctx.alive()) return;
  let rows = rowsOf(list.slos, active.alerts);
  let alertsNow = active.alerts;
  const services = [...new Set(list.slos.map((s) => s.service))].sort();
  const states = [...new Set(rows.map((r) => r.state))].sort();

  const tbody = h('tbody');
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  const cards = h('div', { class: 'cards' });
  let shown = [];

  // One row of the table; only the rows in view are built (lib/vtable.js).
  const rowView = (i) => {
    const r = shown[i];
    const s = r.slo;
    const spark = h('div', { class: 'spark', role: 'img', 'aria-label': 'budget remaining over the time range' });
    sparks.observe(spark, r);
    const group = groupText(r.group);
    const name = s.display_name || s.id;
    for (const c of [r.burns.fast, r.burns.slow]) if (c) c.burn = r.burn;
    const toggle = r.parent
      ? h('button', {
        type: 'button', class: 'expand', 'aria-expanded': String(expanded.has(s.id)),
        'aria-label': `${expanded.has(s.id) ? 'Hide' : 'Show'} the ${r.children.length} groups of ${name}`,
        onclick: () => { if (expanded.has(s.id)) expanded.delete(s.id); else expanded.add(s.id); draw(); },
      }, expanded.has(s.id) ? '▾' : '▸')
      : null;
    const tr = h('tr', { dataset: { slo: s.id, state: r.state, kind: r.parent ? 'parent' : r.child ? 'group' : 'slo' }, 'aria-rowindex': String(i + 2) },
      h('td', { class: `name${r.child ? ' child' : ''}`, title: group ? `${name} · ${group}` : name },
        toggle,
        r.child ? h('a', { href: sloHref(r), class: 'mono' }, group) : h('a', { href: sloHref(r) }, name),
        r.parent ? h('span', { class: 'muted' }, ` ${r.children.length} groups, worst shown`) : null),
      h('td', {}, s.service),
      h('td', { class: 'num' }, fmt.pct(s.objective)),
      h('td', { class: 'num' }, fmt.pct(r.sli, 3)),
      h('td', {}, budgetBar(r.budget)),
      h('td', {}, spark),
      h('td', { class: 'num', title: 'downtime the objective still allows this period' }, fmt.seconds(r.downtime)),
      h('td', {}, stateBadge(r.alert, r.evalState)),
      h('td', { class: 'num burn fast' }, burnCell(r.burns.fast, r.burns)),
      h('td', { class: 'num burn slow' }, burnCell(r.burns.slow, r.burns)));
    tr.dispose = () => sparks.forget(spark);
    return tr;
  };

  const sort = { key: ctx.query.get('sort') || 'budget', dir: ctx.query.get('dir') || 'asc' };
  const expanded = new Set((ctx.query.get('open') || '').split(',').filter(Boolean));
  const columns = [['SLO', 'slo'], ['Service', 'service'], ['Objective', 'objective'], ['SLI', 'sli'], ['Budget left', 'budget'],
    ['Budget trend', null], ['Downtime left', 'downtime'], ['State', 'state'], ['Fast burn', 'fast'], ['Slow burn', 'slow']];
  const headRow = h('tr', {});
  const drawHead = () => mount(headRow, columns.map(([t, key]) => {
    const th = header(t, key === 'fast' ? { title: 'The page condition: the lower burn of its two windows, red at the page threshold, amber at the ticket one' }
      : key === 'slow' ? { title: 'The ticket condition: the lower burn of its two windows' } : {});
    if (!key) return th;
    const active = sort.key === key;
    if (active) th.setAttribute('aria-sort', sort.dir === 'asc' ? 'ascending' : 'descending');
    th.append(' ');
    const b = h('button', {
      type: 'button', class: 'sort', 'aria-label': `Sort by ${t}`,
      onclick: () => {
        sort.dir = sort.key === key && sort.dir === 'asc' ? 'desc' : 'asc';
        sort.key = key;
        setQuery({ sort: key, dir: sort.dir });
        drawHead();
        draw(true);
      },
    }, active ? (sort.dir === 'asc' ? '▲' : '▼') : '↕');
    th.append(b);
    return th;
  }));
  drawHead();
  const table = h('table', { class: 'grid', id: 'slo-table', 'aria-label': 'SLOs and groups' },
    h('thead', {}, headRow),
    tbody);
  const scroller = h('div', { class: 'table-scroll' }, table);
  const sparks = sparklines(ctx, scroller);
  const view = virtualRows(scroller, tbody, { rowHeight: ROW, count: 0, row: rowView });

  const draw = (fromTop = false) => {
    sparks.reset();
    if (fromTop) scroller.scrollTop = 0;
    shown = [];
    const sorted = sortRows(rows, sort.key, sort.dir);
    for (const r of sorted) {
      const kids = r.children ? r.children.filter((c) => matches(c, filters)) : [];
      if (!matches(r, filters) && !kids.length) continue;
      shown.push(r);
      if (r.children && expanded.has(r.slo.id)) shown.push(...(kids.length ? kids : r.children));
    }
    setQuery({ open: [...expanded].join(',') });
    summary.textContent = `${rows.length} SLOs, ${shown.length} rows shown · evaluated ${fmt.time(list.evaluated_at)}`;
    table.setAttribute('aria-rowcount', String(shown.length + 1));
    view.reset(shown.length);
  };

  const refreshCards = () => {
    const firing = alertsNow.filter((a) => a.status === 'firing').length;
    const exhausted = rows.filter((r) => r.budget !== null && r.budget !== undefined && r.budget < 0).length;
    mount(cards,
      card('SLOs', list.slos.length),
      card('Groups', rows.reduce((n, r) => n + (r.children ? r.children.length : 1), 0)),
      card('Alerts firing', firing, firing ? 'bad' : 'ok'),
      card('Budget exhausted', exhausted, exhausted ? 'bad' : 'ok'));
  };

  const onFilter = (key) => (e) => {
    filters[key] = e.target.value;
    setQuery({ [key]: e.target.value });
    draw(true);
  };
  const form = h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
    field('Search', h('input', { type: 'search', name: 'q', value: filters.q, placeholder: 'name, service, group', oninput: onFilter('q') })),
    field('Service', h('select', { name: 'service', onchange: onFilter('service') },
      h('option', { value: '' }, 'all'), withCurrent(services, filters.service).map((s) => h('option', { value: s, selected: s === filters.service }, s)))),
    field('Label', h('input', { type: 'text', name: 'label', value: filters.label, placeholder: 'team=payments', oninput: onFilter('label') })),
    field('State', h('select', { name: 'state', onchange: onFilter('state') },
      h('option', { value: '' }, 'all'), withCurrent(states, filters.state).map((s) => h('option', { value: s, selected: s === filters.state }, s)))));

  mount(main,
    h('h1', {}, 'Service level objectives'),
    h('p', {}, h('a', { href: '/slos/new', id: 'new-slo' }, 'New SLO'), h('span', { class: 'muted' }, ' — write one in YAML and backtest it before saving')),
    cards,
    list.problems && list.problems.length
      ? h('div', { class: 'error', role: 'alert' }, `Problems in SLO files:\n${list.problems.map((p) => p.message || JSON.stringify(p)).join('\n')}`)
      : null,
    form,
    summary,
    scroller);
  refreshCards();
  draw();

  ctx.every(15000, async () => {
    if (table.contains(document.activeElement)) return;
    try {
      const [l, a] = await Promise.all([api('/api/v1/slos?instances=true'), api('/api/v1/alerts?brief=true')]);
      if (!ctx.alive()) return;
      Object.assign(list, l);
      rows = rowsOf(l.slos, a.alerts);
      alertsNow = a.alerts;
      refreshCards();
      draw();
    } catch (e) {
      console.warn('refresh failed', e);
    }
  });
}

/** The options of a filter, with the URL's value even when no row has it now. */
function withCurrent(options, current) {
  return current && !options.includes(current) ? [...options, current].sort() : options;
}

function header(text, attrs = {}) {
  const cls = ['Objective', 'SLI', 'Downtime left'].includes(text) ? 'num' : '';
  return h('th', { scope: attrs.colspan ? 'colgroup' : 'col', class: cls, ...attrs }, text);
}

function card(label, value, cls) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label),
    h('div', { class: `value${cls ? ` ${cls === 'bad' ? 'badge bad' : ''}` : ''}` }, String(value)));
}

