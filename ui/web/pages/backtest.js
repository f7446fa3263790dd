// What a backtest answered (POST /api/v1/slos/backtest), drawn: the burn
// rates with their thresholds and the would-be alerts, the alerts as a
// table, the notifications they would have sent, and the change against
// the running policy. Shared by the SLO editor and the SLO page's "what if".
import { api } from '/ui/lib/api.js';
import { h, table } from '/ui/lib/dom.js';
import { timeChart } from '/ui/lib/chart.js';
import * as fmt from '/ui/lib/format.js';

/** Runs a backtest of `yaml` over [from, to] (ms). */
export function runBacktest(yaml, { id, from, to, variants } = {}) {
  return api('/api/v1/slos/backtest', {
    method: 'POST',
    body: { slo: yaml, id, from: from / 1000, to: to / 1000, variants },
  });
}

/** `1 alert`, `2 alerts`. */
export function plural(n, word) {
  return `${fmt.count(n)} ${word}${n === 1 ? '' : 's'}`;
}

function groupText(g) {
  const parts = Object.entries(g || {}).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(', ') : '—';
}

/** The alerts of a backtest as a table. */
export function alertsTable(alerts, attrs = {}) {
  if (!alerts.length) return h('p', { class: 'muted', ...attrs }, 'No alert would have fired in this range.');
  return table(['Severity', 'Condition', 'Group', 'Start', 'End', 'Peak burn (long / short)', 'Budget spent'],
    alerts.map((a) => [
      h('span', { class: `badge ${a.severity === 'page' ? 'bad' : 'warn'}` }, a.severity),
      a.condition, groupText(a.group), fmt.time(Date.parse(a.start)),
      a.end ? fmt.time(Date.parse(a.end)) : h('span', { class: 'badge bad' }, 'still firing'),
      `${fmt.burn(a.peak_long_burn_rate)} / ${fmt.burn(a.peak_short_burn_rate)}`,
      fmt.pct(a.budget_consumed, 1),
    ]), { attrs });
}

/** Burn-rate charts of the worst group, one per condition, with the
 * threshold and the condition's would-be alerts as bars. Returns
 * disposables. */
export function backtestCharts(el, answer) {
  const disposables = [];
  const s = answer.series;
  const inst = s.instances[0];
  if (!inst || !s.timestamps.length) {
    el.append(h('p', { class: 'muted' }, 'No data in this range.'));
    return disposables;
  }
  for (const c of answer.slo.conditions) {
    const [long, short] = c.condition.split('/');
    const mine = answer.alerts.filter((a) => a.condition === c.condition && groupText(a.group) === groupText(inst.group));
    // 1 while an alert of the condition fires (drawn at the threshold).
    const firing = s.timestamps.map((t) => (mine.some((a) => Date.parse(a.start) <= t && (!a.end || t <= Date.parse(a.end))) ? c.factor : null));
    const title = `Burn rate: ${c.name} (${c.severity}, ${c.condition})`;
    const box = h('section', { class: 'chart burn-chart', 'aria-label': title }, h('h3', {}, title));
    const plot = h('div');
    box.append(plot);
    el.append(box);
    disposables.push(timeChart(plot, {
      title,
      timestamps: s.timestamps,
      series: [
        { label: long, values: inst.burn_rates[long] || [] },
        { label: short, values: inst.burn_rates[short] || [] },
        { label: `threshold ${fmt.burn(c.factor)}`, values: s.timestamps.map(() => c.factor), color: '#cf222e', dash: true },
        { label: 'would fire', values: firing, color: '#cf222e', bars: true },
      ],
      format: (v) => fmt.burn(v),
      min: 0,
    }));
  }
  return disposables;
}

/** The whole answer: charts, alerts, notifications, change. */
export function backtestView(answer, chartsEl) {
  const change = answer.change;
  let changeView = null;
  if (change && change.same_policy) {
    changeView = h('p', { class: 'muted' }, 'Same policy as the running SLO.');
  } else if (change && change.current) {
    changeView = h('div', { id: 'backtest-change' },
      h('p', {}, `Against the running policy: ${change.added.length} added, ${change.removed.length} removed, ${change.moved.length} moved, ${change.unchanged} unchanged.`),
      change.added.length ? [h('h4', {}, 'Added'), alertsTable(change.added)] : null,
      change.removed.length ? [h('h4', {}, 'Removed'), alertsTable(change.removed)] : null,
      change.moved.length ? [h('h4', {}, 'Moved'), table(['Severity', 'Condition', 'Before', 'After'], change.moved.map((m) => [
        m.after.severity, m.after.condition,
        `${fmt.time(Date.parse(m.before.start))} – ${m.before.end ? fmt.time(Date.parse(m.before.end)) : 'still firing'}`,
        `${fmt.time(Date.parse(m.after.start))} – ${m.after.end ? fmt.time(Date.parse(m.after.end)) : 'still firing'}`,
      ]))] : null);
  }
  const sent = answer.notifications;
  return [
    h('p', { class: 'muted', id: 'backtest-summary' },
      `${plural(answer.alerts.length, 'alert')} from ${fmt.time(Date.parse(answer.from))} to ${fmt.time(Date.parse(answer.to))}, `,
      `evaluated every ${fmt.seconds(answer.interval_seconds)} as the live engine does; `,
      answer.source.stored_buckets ? `${fmt.count(answer.source.stored_buckets)} stored buckets read` : 'rolled up from the telemetry',
      `, ${Math.round(answer.stats.elapsed_ms)} ms.`),
    chartsEl,
    h('h3', {}, 'Would-be alerts'),
    alertsTable(answer.alerts, { id: 'backtest-alerts' }),
    h('h3', {}, `Notifications (${sent.length})`),
    sent.length ? table(['At', 'Receiver', 'Status', 'Alerts'], sent.slice(0, 200).map((n) => [
      fmt.time(Date.parse(n.at)), n.receiver, n.status,
      n.alerts.map((a) => `${a.severity} ${a.condition} ${a.state}`).join('; ')])) : h('p', { class: 'muted' }, 'None: no route takes these alerts, or none fired.'),
    changeView ? [h('h3', {}, 'Change'), changeView] : null,
  ];
}
