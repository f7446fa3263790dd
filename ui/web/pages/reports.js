// SLO reports: a calendar week, month or quarter per service, team or tenant
// — each SLO's SLI, budget used, time in violation, incidents and downtime
// left — with the same figures as CSV.
import { api } from '/ui/lib/api.js';
import { errorBox, field, h, mount, td } from '/ui/lib/dom.js';
import * as fmt from '/ui/lib/format.js';
import { navigate } from '/ui/app.js';

const PERIODS = ['week', 'month', 'quarter'];
const GROUPINGS = [['service', 'Service'], ['team', 'Team label'], ['tenant', 'Tenant']];

function select(name, value, options) {
  return h('select', { name, id: `report-${name}` },
    options.map(([v, label]) => h('option', { value: v, selected: v === value ? '' : null }, label)));
}

/** The query of the report's API call from the page's URL. */
function query(params, format) {
  const q = new URLSearchParams();
  for (const k of ['period', 'at', 'by', 'service', 'team']) {
    if (params.get(k)) q.set(k, params.get(k));
  }
  q.set('time_zone', fmt.zone() === 'utc' ? 'UTC' : Intl.DateTimeFormat().resolvedOptions().timeZone);
  if (format) q.set('format', format);
  return q.toString();
}

function incidentsCell(line) {
  const entries = Object.entries(line.incidents || {});
  if (!entries.length) return td('num', '0');
  return td('', entries.map(([sev, n]) => h('span', { class: `badge ${sev === 'page' ? 'bad' : 'warn'}`, title: `${n} ${sev} alert(s) fired` }, `${n} ${sev}`)));
}

function budgetCell(used) {
  const cls = used >= 1 ? 'bad' : used >= 0.5 ? 'warn' : 'ok';
  return td(`num ${cls}-text`, fmt.pct(used, 1));
}

function groupTable(group, lines) {
  return h('section', { class: 'report-group', 'data-group': group.name },
    h('h2', {}, group.name, ' ', h('span', { class: 'muted' }, `${group.met} of ${group.slos} SLOs met · ${group.incidents} incidents`)),
    h('table', { class: 'report' },
      h('thead', {}, h('tr', {}, ['SLO', 'Objective', 'SLI', 'Events', 'Budget used', 'In violation', 'Incidents', 'Downtime allowed', 'Downtime left', 'Excluded']
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, lines.map((l) => h('tr', { 'data-slo': l.slo },
        td('', h('a', { href: `/slos/${encodeURIComponent(l.slo)}` }, l.display_name || l.slo),
          l.warning ? h('div', { class: 'muted small' }, l.warning) : null),
        td('num', fmt.pct(l.objective)),
        td(`num ${l.met ? 'ok' : 'bad'}-text`, l.sli === null ? 'no events' : fmt.pct(l.sli, 4)),
        td('num', fmt.count(l.total)),
        budgetCell(l.budget_used),
        td('num', l.time_in_violation_seconds > 0 ? fmt.seconds(l.time_in_violation_seconds) : '—'),
        incidentsCell(l),
        td('num', fmt.seconds(l.allowed_downtime_seconds)),
        td(`num ${l.downtime_left_seconds < 0 ? 'bad-text' : ''}`, l.downtime_left_seconds < 0
          ? `${fmt.seconds(-l.downtime_left_seconds)} over` : fmt.seconds(l.downtime_left_seconds)),
        // Budget exclusions: time whose events did not count, and why.
        td('num', l.excluded_seconds > 0
          ? h('span', { title: [...new Set((l.exclusions || []).map((o) => o.reason))].join('; ') }, fmt.seconds(l.excluded_seconds))
          : '—'))))));
}

export async function render(main, ctx) {
  ctx.title('Reports');
  const params = new URLSearchParams(location.search);
  const period = PERIODS.includes(params.get('period')) ? params.get('period') : 'month';
  const by = params.get('by') || 'service';
  const form = h('form', { class: 'toolbar', id: 'report-form' },
    field('Period', select('period', period, PERIODS.map((p) => [p, p[0].toUpperCase() + p.slice(1)]))),
    field('Containing', h('input', { type: 'date', name: 'at', id: 'report-at', value: params.get('at') || '' })),
    field('Per', select('by', by, GROUPINGS)),
    field('Service', h('input', { name: 'service', id: 'report-service', value: params.get('service') || '', placeholder: 'all' })),
    field('Team', h('input', { name: 'team', id: 'report-team', value: params.get('team') || '', placeholder: 'all' })),
    h('button', { type: 'submit' }, 'Show'),
    h('a', { class: 'button', id: 'report-csv', href: `/api/v1/reports/slos?${query(params, 'csv')}`, download: '' }, 'Download CSV'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    navigate(`/reports?${q}`);
  });
  const body = h('div', { id: 'report' }, h('p', { class: 'muted' }, 'Loading…'));
  mount(main, h('h1', {}, 'SLO reports'), form, body);
  try {
    const r = await api(`/api/v1/reports/slos?${query(params)}`);
    if (!ctx.alive()) return;
    const heading = h('p', { class: 'muted', id: 'report-heading' },
      `${r.period.kind[0].toUpperCase()}${r.period.kind.slice(1)} from ${fmt.time(r.period.start)} to ${fmt.time(r.period.end)}`,
      r.period.complete ? '' : ' (in progress: figures so far; downtime allowed is the whole period’s)');
    if (!r.slos.length) {
      mount(body, heading, h('p', { class: 'muted' }, 'No SLO matches.'));
      return;
    }
    mount(body, heading, r.groups.map((g) => groupTable(g, r.slos.filter((l) => l.group === g.name))));
  } catch (err) {
    if (ctx.alive()) mount(body, errorBox(err));
  }
}
