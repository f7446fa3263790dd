// SLO detail: charts over the period and the time range, the alert
// conditions, likely causes, example bad traces, budget exclusions,
// definition and history.
import { runbookButton } from '/ui/pages/alerts.js';
import { api, qs, traceHref } from '/ui/lib/api.js';
import { h, mount, table, errorBox, toast } from '/ui/lib/dom.js';
import { timeChart } from '/ui/lib/chart.js';
import { alertsTable, plural, runBacktest } from '/ui/pages/backtest.js';
import * as fmt from '/ui/lib/format.js';
import { navigate, notFound } from '/ui/app.js';
import { budgetBar, burnChip, stateBadge, alertFor, groupText, windowOrder } from '/ui/pages/slos.js';

function card(label, value, detail = null) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), detail);
}

function chartBox(title) {
  const plot = h('div');
  return { box: h('section', { class: 'chart', 'aria-label': title }, h('h3', {}, title), plot), plot };
}

function periodText(p) {
  if (!p) return '';
  return p.kind === 'rolling' ? `rolling ${p.duration}` : `calendar ${p.count} ${p.unit} (${p.time_zone})`;
}

export async function render(main, ctx) {
  const id = ctx.args[0];
  ctx.title(id);
  let slo;
  try {
    slo = await api(`/api/v1/slos/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    if (ctx.alive()) notFound(main, `There is no SLO “${id}” (it may have been deleted or renamed).`);
    return;
  }
  if (!ctx.alive()) return;
  const wanted = ctx.query.get('group');
  let instance = slo.instances[0];
  if (wanted) {
    let g = null;
    try { g = JSON.parse(wanted); } catch { g = null; }
    instance = (g && slo.instances.find((i) => groupText(i.group) === groupText(g))) || instance;
  }
  const group = instance ? instance.group : {};
  const groupParam = slo.group_by.length ? JSON.stringify(group) : undefined;
  // Each instance carries its evaluation's fields (sli, burn_rates, conditions …).
  const e = instance || null;
  const thresholds = slo.thresholds || {};
  const { from, to } = ctx.range;

  // The range drawn, for tests and tools that wait for a redraw.
  const charts = h('div', { class: 'charts', dataset: { range: `${Math.round(from)}-${Math.round(to)}` } });
  const causes = h('div', {}, h('p', { class: 'muted' }, 'Looking for over-represented values…'));
  const alertsBox = h('div');
  const scalingBox = h('div', { id: 'slo-scaling' });
  const exclusionsBox = h('div', { id: 'slo-exclusions' });
  const cleanup = [];
  ctx.onCleanup(() => cleanup.forEach((c) => c.dispose()));

  const groupPicker = slo.group_by.length > 1 || slo.instances.length > 1
    ? h('label', {}, 'Group ',
      h('select', {
        onchange: (ev) => {
          const u = new URL(location.href);
          u.searchParams.set('group', ev.target.value);
          navigate(u.pathname + u.search);
        },
      }, slo.instances.map((i) => h('option', { value: JSON.stringify(i.group), selected: i === instance }, groupText(i.group) || '(all)'))))
    : null;

  const activeAlerts = (await api('/api/v1/alerts')).alerts.filter((a) => a.slo === id);
  if (!ctx.alive()) return;
  const alert = alertFor(activeAlerts, id, group);

  mount(main,
    h('p', {}, h('a', { href: '/slos' }, '← All SLOs')),
    h('h1', {}, slo.display_name || slo.id, ' ', stateBadge(alert, e && e.alert_state)),
    h('p', { class: 'muted' }, `${slo.service} · objective ${fmt.pct(slo.objective)} · ${periodText(slo.period)} · ${slo.budgeting && slo.budgeting.method ? slo.budgeting.method : ''} budgeting · from ${slo.table}`,
      groupText(group) ? ` · group ${groupText(group)}` : ''),
    h('div', { class: 'toolbar' }, runbookButton(slo.definition && slo.definition.runbook_url), groupPicker,
      h('a', { href: `/slos/${encodeURIComponent(id)}/edit`, id: 'edit-slo' }, 'Edit and backtest')),
    slo.error ? errorBox(slo.error) : null,
    slo.backfill && !slo.backfill.done ? h('p', { class: 'badge warn' }, `Backfilling rollups: ${(slo.backfill.progress * 100).toFixed(0)}% (through ${slo.backfill.through})`) : null,
    (slo.excluded_now || []).map((o) => h('p', { class: 'badge neutral excluded-now' },
      `Events do not count until ${fmt.time(o.end)}: ${o.reason} (budget exclusion)`)),
    h('div', { class: 'cards' },
      card('SLI over the period', fmt.pct(e && e.sli, 4)),
      card('Error budget left', budgetBar(e ? e.error_budget_remaining : null), budgetEvents(e, slo)),
      card('Downtime left', downtimeLeft(e, slo)),
      card('Budget exhausted in', exhaustion(e)),
      card('Events this period', e ? `${fmt.count(Math.round(e.period.good))} good / ${fmt.count(Math.round(e.period.total))}` : '—')),
    coverage(e, slo),
    h('h2', {}, 'Burn rate now'),
    h('p', {}, Object.keys(e ? e.burn_rates : {}).sort(windowOrder).map((w) => [burnChip(w, e.burn_rates[w], thresholds[w]), ' '])),
    h('h2', {}, 'Alert conditions'),
    e ? conditionsTable(e.conditions) : h('p', { class: 'muted' }, 'No evaluation yet.'),
    h('h2', {}, 'Charts'),
    charts,
    h('h2', {}, 'Likely causes and example bad traces (shortest alert window)'),
    causes,
    h('h2', {}, 'Alerts and notifications'),
    alertsBox,
    h('h2', {}, 'Scaling'),
    scalingBox,
    h('h2', {}, 'Budget exclusions'),
    exclusionsBox,
    h('h2', {}, 'What if'),
    whatIf(slo, e, ctx),
    h('h2', {}, 'Definition'),
    h('pre', { class: 'code', tabindex: '0', 'aria-label': 'SLO definition' }, JSON.stringify(slo.definition, null, 2)));

  // Period charts (SLI, budget) and time-range charts (burn rates per
  // condition); an SLO without an evaluation has none yet.
  if (!instance) {
    charts.append(h('p', { class: 'muted' }, 'No evaluation yet: charts appear once the SLO has data.'));
  } else {
    try {
      await drawCharts();
    } catch (err) {
      if (ctx.alive()) charts.append(errorBox(err));
    }
  }
  loadRest();

  async function drawCharts() {
    const [period, recent] = await Promise.all([
      api(`/api/v1/slos/${encodeURIComponent(id)}/series${qs({ group: groupParam })}`),
      api(`/api/v1/slos/${encodeURIComponent(id)}/series${qs({ from: from / 1000, to: to / 1000, group: groupParam })}`),
    ]);
    if (!ctx.alive()) return;
    const sli = chartBox('SLI over the period');
    const budget = chartBox('Error budget remaining over the period');
    charts.append(sli.box, budget.box);
    const objective = period.timestamps.map(() => slo.objective);
    cleanup.push(timeChart(sli.plot, {
      title: 'SLI over the period',
      timestamps: period.timestamps,
      series: [{ label: 'SLI', values: period.sli }, { label: 'objective', values: objective, color: '#cf222e', dash: true }],
      format: (v) => fmt.pct(v, 3),
      axisFormat: (v) => fmt.pct(v, 2),
      bands: bands(period.exclusions),
    }));
    cleanup.push(timeChart(budget.plot, {
      title: 'Error budget remaining over the period',
      timestamps: period.timestamps,
      series: [
        { label: 'budget remaining', values: period.error_budget_remaining },
        { label: 'full', values: period.timestamps.map(() => 1), color: '#8c959f', dash: true },
        { label: 'exhausted', values: period.timestamps.map(() => 0), color: '#cf222e', dash: true },
        // The error-budget policy: its event levels and the deploy gate's.
        ...(slo.budget_levels || []).filter((l) => l > 0).map((l) => (
          { label: `budget event below ${fmt.pct(l)}`, values: period.timestamps.map(() => l), color: '#bf8700', dash: true })),
        ...(slo.freeze_below > 0
          ? [{ label: `changes frozen below ${fmt.pct(slo.freeze_below)}`, values: period.timestamps.map(() => slo.freeze_below), color: '#8250df', dash: true }]
          : []),
      ],
      format: (v) => fmt.budget(v),
      axisFormat: (v) => `${Math.round(v * 100)}%`,
      bands: bands(period.exclusions),
    }));
    for (const c of e ? e.conditions : []) {
      const title = `Burn rate: ${c.name} (${c.severity}, ${c.long_window} and ${c.short_window})`;
      const box = chartBox(title);
      box.box.classList.add('burn-chart');
      charts.append(box.box);
      cleanup.push(timeChart(box.plot, {
        title,
        timestamps: recent.timestamps,
        series: [
          { label: c.long_window, values: recent.burn_rates[c.long_window] || [] },
          { label: c.short_window, values: recent.burn_rates[c.short_window] || [] },
          { label: `threshold ${fmt.burn(c.factor)}`, values: recent.timestamps.map(() => c.factor), color: '#cf222e', dash: true },
        ],
        format: (v) => fmt.burn(v),
        min: 0,
        bands: bands(recent.exclusions),
      }));
    }
  }

  function loadRest() {
    // Causes and history load after the charts; they may take longer.
    // Over the shortest alert window, as the alerts' own hints are.
    const shortWindows = (e ? e.conditions : []).map((c) => fmt.durationSeconds(c.short_window)).filter(Boolean);
    const windowSecs = shortWindows.length ? Math.min(...shortWindows) : 3600;
    api(`/api/v1/slos/${encodeURIComponent(id)}/causes${qs({ group: groupParam, window: `${windowSecs}s` })}`)
      .then((c) => { if (ctx.alive()) mount(causes, causesView(c)); })
      .catch((err) => { if (ctx.alive()) mount(causes, errorBox(err)); });
    Promise.all([
      api(`/api/v1/alerts/history${qs({ slo: id, limit: 50 })}`),
      api(`/api/v1/notifications${qs({ slo: id, limit: 50 })}`),
    ]).then(([hist, notes]) => {
      if (!ctx.alive()) return;
      mount(alertsBox,
        activeAlerts.length ? h('h3', {}, 'Active') : null,
        activeAlerts.length ? table(['Severity', 'State', 'Since', 'Summary'], activeAlerts.map((a) => [
          a.labels.severity, stateBadge(a), fmt.time(a.since), h('td', { class: 'wrap' }, a.annotations.summary || '')]), { attrs: { id: 'slo-alerts' } }) : null,
        h('h3', {}, 'History'),
        hist.history.length ? table(['At', 'Severity', 'From', 'To', 'Summary'], hist.history.map((t) => [
          fmt.time(t.at), t.labels.severity || '', t.from, t.to, t.summary || ''])) : h('p', { class: 'muted' }, 'No alert has changed state.'),
        h('h3', {}, 'Notifications'),
        notes.notifications.length ? table(['Created', 'Receiver', 'State', 'Attempts', 'Last status', 'Last error'], notes.notifications.map((n) => [
          fmt.time(n.created_at), n.receiver, h('span', { class: `badge ${n.state === 'delivered' ? 'ok' : n.state === 'pending' ? 'warn' : 'bad'}` }, n.state),
          String(n.attempts), n.last_status ?? '—', n.last_error || '']), { attrs: { id: 'slo-notifications' } }) : h('p', { class: 'muted' }, 'No notifications sent for this SLO.'));
    }).catch((err) => { if (ctx.alive()) mount(alertsBox, errorBox(err)); });
    Promise.all([
      api(`/api/v1/scaling/${encodeURIComponent(id)}`).catch(() => null),
      api(`/api/v1/scaling/${encodeURIComponent(id)}/history${qs({ limit: 50 })}`),
    ]).then(([now, hist]) => { if (ctx.alive()) mount(scalingBox, scalingView(now, hist)); })
      .catch((err) => { if (ctx.alive()) mount(scalingBox, errorBox(err)); });
    api(`/api/v1/slos/${encodeURIComponent(id)}/exclusions`)
      .then((x) => { if (ctx.alive()) mount(exclusionsBox, exclusionsView(id, x)); })
      .catch((err) => { if (ctx.alive()) mount(exclusionsBox, errorBox(err)); });
  }
}

/** Exclusion occurrences as shaded bands of a chart. */
function bands(occurrences) {
  return (occurrences || []).map((o) => ({ from: Date.parse(o.start), to: Date.parse(o.end), label: `excluded: ${o.reason}` }));
}

const REPEATS = [['', 'once'], ['FREQ=DAILY', 'every day'], ['FREQ=WEEKLY', 'every week (the start\'s weekday)'], ['FREQ=MONTHLY', 'every month (the start\'s day)'], ['custom', 'custom RRULE']];

/** The SLO's budget exclusions: each with when it applies, where it came
 * from and its occurrences; a form to add one (through the API); those made
 * through the API can be removed. Adding or removing one changes the
 * figures at once, so the page is drawn again. */
function exclusionsView(id, x) {
  const reload = () => navigate(location.pathname + location.search, { replace: true });
  const byId = new Map();
  for (const o of x.occurrences) byId.set(o.id, (byId.get(o.id) || 0) + 1);
  const list = x.exclusions.length
    ? table(['Reason', 'When', 'Repeats', 'Made', 'Occurrences (period to next week)', ''], x.exclusions.map((e) => [
      h('td', { class: 'wrap' }, e.reason),
      e.rrule ? `from ${fmt.time(e.start)}, ${fmt.seconds(e.duration_seconds)} each` : `${fmt.time(e.start)} – ${fmt.time(e.end)}`,
      e.rrule ? h('span', { class: 'mono' }, `${e.rrule} (${e.time_zone})`) : 'once',
      e.source === 'annotation' ? 'in the SLO file (smolder.dev/exclusions)' : `by ${e.created_by}, ${fmt.time(e.created_at)}`,
      h('td', { class: 'num' }, String(byId.get(e.id) || 0)),
      e.source === 'annotation' ? '' : h('button', {
        type: 'button',
        'aria-label': `Remove exclusion ${e.id}`,
        onclick: async () => {
          try {
            await api(`/api/v1/slos/${encodeURIComponent(id)}/exclusions/${encodeURIComponent(e.id)}`, { method: 'DELETE' });
            toast('Exclusion removed: its events count again');
            reload();
          } catch (err) { toast(err.message); }
        },
      }, 'Remove'),
    ]), { attrs: { id: 'exclusions-table' } })
    : h('p', { class: 'muted' }, 'No exclusions: every event counts.');
  const zoneDefault = fmt.zone() === 'utc' ? 'UTC' : Intl.DateTimeFormat().resolvedOptions().timeZone;
  const start = h('input', { type: 'datetime-local', name: 'start', required: true });
  const end = h('input', { type: 'datetime-local', name: 'end', required: true });
  const repeat = h('select', { name: 'repeat' }, REPEATS.map(([v, t]) => h('option', { value: v }, t)));
  const rule = h('input', { name: 'rrule', class: 'mono', placeholder: 'FREQ=WEEKLY;BYDAY=SA,SU', hidden: true });
  repeat.addEventListener('change', () => { rule.hidden = repeat.value !== 'custom'; });
  const tz = h('input', { name: 'time_zone', value: zoneDefault, size: '16' });
  const reason = h('input', { name: 'reason', required: true, placeholder: 'planned maintenance', size: '30' });
  const problem = h('div');
  const form = h('form', {
    class: 'filters',
    id: 'exclusion-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const rrule = repeat.value === 'custom' ? rule.value.trim() : repeat.value;
      try {
        await api(`/api/v1/slos/${encodeURIComponent(id)}/exclusions`, {
          method: 'POST',
          body: { start: start.value, end: end.value, time_zone: tz.value.trim(), reason: reason.value.trim(), ...(rrule ? { rrule } : {}) },
        });
        toast('Exclusion added: its events no longer count');
        reload();
      } catch (err) { mount(problem, errorBox(err)); }
    },
  },
  h('label', {}, 'Start', start),
  h('label', {}, 'End (of the first occurrence)', end),
  h('label', {}, 'Repeats', repeat, rule),
  h('label', {}, 'Time zone', tz),
  h('label', {}, 'Reason', reason),
  h('button', { type: 'submit', class: 'primary' }, 'Exclude'));
  return h('div', {},
    h('p', { class: 'muted' }, 'Events inside an exclusion do not count: SLI, error budget, burn rates, charts and reports are recomputed without them (shaded on the charts). A silence only mutes notifications.'),
    (x.excluded_now || []).length ? h('p', {}, h('span', { class: 'badge neutral' }, 'in force now')) : null,
    list,
    x.truncated ? h('p', { class: 'muted' }, 'Only the first occurrences are counted.') : null,
    h('h3', {}, 'Add an exclusion'),
    form,
    problem);
}

/** The scaling targets acting on the SLO: where each stands now, and each
 * decision with the burn rate, window and threshold that made it. */
function scalingView(now, hist) {
  const states = (now ? now.instances : []).flatMap((i) => Object.entries(i.targets)
    .map(([target, s]) => [target, groupText(i.group) || '(all)', s]));
  if (!states.length && !hist.decisions.length) {
    return h('p', { class: 'muted' }, 'No scaling target has acted on this SLO.');
  }
  const action = (a) => h('span', { class: `badge ${a === 'scale_up' ? 'warn' : 'ok'}` }, a.replace('_', ' '));
  return [
    states.length ? table(['Target', 'Group', 'Now', 'Since', 'Under the lower threshold since'], states.map(([target, group, s]) => [
      target, group, h('span', { class: `badge ${s.scaled_up ? 'warn' : 'ok'}` }, s.scaled_up ? 'scaled up' : 'scaled back'), fmt.time(s.since), s.low_since ? fmt.time(s.low_since) : '—',
    ]), { attrs: { id: 'scaling-state' }, caption: 'Each target\'s state per SLO instance.' }) : null,
    h('h3', {}, 'Decisions'),
    hist.decisions.length ? table(['At', 'Target', 'Action', 'Burn rate', 'Window', 'Threshold', 'Why', 'Delivery'], hist.decisions.map((d) => [
      fmt.time(d.at), d.target, action(d.action), h('td', { class: 'num' }, fmt.burn(d.burn_rate)), d.window,
      h('td', { class: 'num' }, d.threshold === null || d.threshold === undefined ? 'on alert' : fmt.burn(d.threshold)),
      h('td', { class: 'wrap' }, d.reason),
      h('span', { class: `badge ${d.delivery.state === 'delivered' ? 'ok' : d.delivery.state === 'pending' ? 'warn' : 'bad'}` }, d.delivery.state),
    ]), { attrs: { id: 'scaling-history' } }) : h('p', { class: 'muted' }, 'No decision recorded.'),
  ];
}

/** "What if": another objective or other burn-rate thresholds, replayed
 * over the time range next to the current policy — the alerts that would
 * have fired with each. */
function whatIf(slo, e, ctx) {
  const box = h('div', { id: 'what-if' });
  if (!slo.source) {
    box.append(h('p', { class: 'muted' }, 'The SLO\'s source is not available.'));
    return box;
  }
  const objective = h('input', { type: 'number', name: 'objective', step: '0.0001', min: '0.5', max: '0.99999', value: String(slo.objective), 'aria-label': 'Objective' });
  const conditions = (e ? e.conditions : []);
  const factors = conditions.map((c) => h('input', { type: 'number', step: '0.1', min: '0.1', value: String(c.factor), 'aria-label': `Threshold of ${c.name}` }));
  const out = h('div');
  const run = async () => {
    const { from, to } = ctx.range;
    mount(out, h('p', { class: 'muted' }, 'Replaying both policies…'));
    try {
      const answer = await runBacktest(slo.source.yaml, {
        id: slo.id, from, to,
        variants: [{ objective: Number(objective.value), factors: factors.map((f) => Number(f.value)) }],
      });
      if (!ctx.alive()) return;
      const variant = answer.variants[0];
      mount(out,
        h('h3', {}, `Current policy: ${plural(answer.alerts.length, 'alert')}`),
        alertsTable(answer.alerts, { id: 'what-if-current' }),
        h('h3', {}, `With the change: ${plural(variant.alerts.length, 'alert')}`),
        alertsTable(variant.alerts, { id: 'what-if-variant' }));
    } catch (err) {
      if (ctx.alive()) mount(out, errorBox(err));
    }
  };
  box.append(
    h('p', { class: 'muted' }, 'Change the objective or a threshold and see when alerts would have fired over the time range.'),
    h('div', { class: 'toolbar' },
      h('label', {}, 'Objective ', objective),
      conditions.map((c, i) => h('label', {}, `${c.name} (${c.long_window}/${c.short_window}) `, factors[i])),
      h('button', { type: 'button', id: 'what-if-run', onclick: run }, 'Show alerts')),
    out);
  return box;
}

/** The share of the period the figures cover, when the data is younger
 * than the period: "Data since 17:27 — 3m of 28d". */
function coverage(e, slo) {
  if (!e || e.data_since_ns === null || e.data_since_ns === undefined || !slo.period_seconds) return null;
  const covered = (e.at_ns - e.data_since_ns) / 1e9;
  if (covered >= 0.99 * slo.period_seconds) return null;
  return h('p', { id: 'coverage', class: 'note' },
    `Data since ${fmt.time(e.data_since_ns / 1e6)} — ${fmt.seconds(Math.max(covered, 60))} of ${fmt.seconds(slo.period_seconds)}. `,
    'The SLI and budget cover only that time: a few bad events weigh much more than they will once the period is full.');
}

/** The budget as events (or slices): how many more may be bad this period,
 * at the traffic so far. */
function budgetEvents(e, slo) {
  if (!e || !e.period || e.period.total <= 0) return null;
  const unit = slo.budgeting && slo.budgeting.method && slo.budgeting.method !== 'occurrences' ? 'slices' : 'events';
  const allowed = (1 - slo.objective) * e.period.total;
  const bad = e.period.total - e.period.good;
  const left = Math.round(allowed - bad);
  return h('div', { class: 'muted budget-events' }, left >= 0
    ? `${fmt.count(left)} bad ${unit} left of ${fmt.count(Math.round(allowed))}`
    : `overspent by ${fmt.count(-left)} bad ${unit}`);
}

/** Downtime left over the period: the budget's share of the period less
 * the time the bad events so far stand for (over the time with data), so a
 * young SLO is not shown days of negative downtime. */
function downtimeLeft(e, slo) {
  if (!e || !slo.period_seconds) return '—';
  if (!e.period || e.period.total <= 0 || e.data_since_ns === null || e.data_since_ns === undefined) {
    return fmt.seconds((1 - slo.objective) * slo.period_seconds);
  }
  const covered = Math.min(slo.period_seconds, Math.max(0, (e.at_ns - e.data_since_ns) / 1e9));
  const badShare = (e.period.total - e.period.good) / e.period.total;
  return fmt.seconds((1 - slo.objective) * slo.period_seconds - badShare * covered);
}

function exhaustion(e) {
  if (!e) return '—';
  if (e.error_budget_remaining <= 0) return h('span', { class: 'badge bad' }, 'already exhausted');
  const t = e.time_to_exhaustion_seconds;
  return t === null || t === undefined ? 'not at this rate' : fmt.seconds(t);
}

function conditionsTable(conditions) {
  const count = (n) => fmt.count(Math.round(n));
  return table(['Condition', 'Severity', 'Long window', 'Burn', 'Short window', 'Burn', 'Threshold', 'Bad events (long window)', 'State'],
    conditions.map((c) => [
      c.name, c.severity,
      c.long_window, burnChip(c.long_window, c.long_burn_rate, c.factor),
      c.short_window, burnChip(c.short_window, c.short_burn_rate, c.factor),
      fmt.burn(c.factor),
      h('span', { title: `The low-traffic guard: no page on fewer than ${count(c.min_bad_events)} bad events in the ${c.long_window} window. A window burning just at ${fmt.burn(c.factor)} holds that many among ${count(c.events_at_threshold)} events.` },
        `${count(c.long_bad_events)} of ${count(c.min_bad_events)} needed`),
      c.low_traffic ? h('span', { class: 'badge neutral', title: 'Too few events in the window for its burn rate to mean anything: this condition cannot be met.' }, 'low traffic')
        : c.met ? h('span', { class: 'badge bad' }, 'met') : h('span', { class: 'badge ok' }, 'not met'),
    ]), { attrs: { id: 'conditions' } });
}

function causesView(c) {
  const hints = c.hints.length
    ? table(['Attribute', 'Value', 'Share of bad events', 'Share of all events'], c.hints.map((x) => [
      h('span', { class: 'mono' }, x.attribute), h('span', { class: 'mono' }, x.value), fmt.pct(x.bad_share, 1), fmt.pct(x.total_share, 1)]))
    : h('p', { class: 'muted' }, `No attribute value is over-represented among bad events in the last ${c.window}.`);
  const traces = c.example_trace_ids.length
    ? h('ul', { id: 'example-traces' }, c.example_trace_ids.map((t) => h('li', {}, h('a', { class: 'mono', href: traceHref(t, Date.now()) }, t))))
    : h('p', { class: 'muted' }, `No bad events in the last ${c.window}.`);
  return [hints, h('h3', {}, 'Example bad traces'), traces];
}
