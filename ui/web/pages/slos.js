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

function rowsOf(slos, alerts) {
  const rows = [];
  for (const s of slos) {
    const instances = s.group_by.length && s.instances && s.instances.length ? s.instances : [null];
    for (const i of instances) {
      const src = i || s;
      const group = i ? i.group : {};
      const alert = alertFor(alerts, s.id, group);
      // An SLO not evaluated yet has no budget: say so rather than "ok".
      const evalState = src.error_budget_remaining === null || src.error_budget_remaining === undefined ? 'no data' : src.alert_state;
      rows.push({
        slo: s,
        group,
        sli: src.sli,
        budget: src.error_budget_remaining,
        downtime: src.allowed_downtime_left_seconds,
        burn: src.burn_rates || {},
        evalState,
        alert,
        state: alert ? alert.status : evalState,
        text: `${s.id} ${s.display_name || ''} ${s.service} ${groupText(group)}`.toLowerCase(),
      });
    }
  }
  rows.sort((a, b) => (a.budget ?? Infinity) - (b.budget ?? Infinity) || a.slo.id.localeCompare(b.slo.id));
  return rows;
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
  const services = [...new Set(list.slos.map((s) => s.service))].sort();
  const states = [...new Set(rows.map((r) => r.state))].sort();
  const windows = [...new Set(list.slos.flatMap((s) => Object.keys(s.burn_rates || {})))].sort(windowOrder);

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
    const tr = h('tr', { dataset: { slo: s.id, state: r.state }, 'aria-rowindex': String(i + 3) },
      h('td', { class: 'name', title: group ? `${name} · ${group}` : name },
        h('a', { href: sloHref(r) }, name), group ? h('span', { class: 'muted mono' }, ` ${group}`) : null),
      h('td', {}, s.service),
      h('td', { class: 'num' }, fmt.pct(s.objective)),
      h('td', { class: 'num' }, fmt.pct(r.sli, 3)),
      h('td', {}, budgetBar(r.budget)),
      h('td', {}, spark),
      h('td', { class: 'num', title: 'downtime the objective still allows this period' }, fmt.seconds(r.downtime)),
      h('td', {}, stateBadge(r.alert, r.evalState)),
      windows.map((w) => h('td', { class: 'num burn' }, w in r.burn ? burnChip(w, r.burn[w], (s.thresholds || {})[w], false) : h('span', { class: 'muted' }, '—'))));
    tr.dispose = () => sparks.forget(spark);
    return tr;
  };

  const table = h('table', { class: 'grid', id: 'slo-table', 'aria-label': 'SLOs and groups, worst error budget first' },
    h('thead', {},
      h('tr', {},
        ['SLO', 'Service', 'Objective', 'SLI', 'Budget left', 'Budget trend', 'Downtime left', 'State'].map((t) => header(t, { rowspan: 2 })),
        windows.length ? header('Burn rate', { colspan: windows.length, class: 'group' }) : null),
      h('tr', {}, windows.map((w) => header(w, { class: 'num burn', title: `burn rate over the last ${w}` })))),
    tbody);
  const scroller = h('div', { class: 'table-scroll' }, table);
  const sparks = sparklines(ctx, scroller);
  const view = virtualRows(scroller, tbody, { rowHeight: ROW, count: 0, row: rowView });

  const draw = (fromTop = false) => {
    sparks.reset();
    if (fromTop) scroller.scrollTop = 0;
    shown = rows.filter((r) => matches(r, filters));
    summary.textContent = `${shown.length} of ${rows.length} SLOs and groups, worst error budget first · evaluated ${fmt.time(list.evaluated_at)}`;
    table.setAttribute('aria-rowcount', String(shown.length + 2));
    view.reset(shown.length);
  };

  const refreshCards = () => {
    const firing = rows.filter((r) => r.alert && r.alert.status === 'firing').length;
    const exhausted = rows.filter((r) => r.budget !== null && r.budget !== undefined && r.budget < 0).length;
    mount(cards,
      card('SLOs', list.slos.length),
      card('Groups shown', rows.length),
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

