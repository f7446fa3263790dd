// Alerts: active alerts, silences (create from an alert, list, expire),
// state history and notification deliveries.
import { api, qs, traceHref } from '/ui/lib/api.js';
import { h, mount, errorBox, table, toast } from '/ui/lib/dom.js';
import * as fmt from '/ui/lib/format.js';

const WHO_KEY = 'smolder.silence.created_by';

/** Matchers that select exactly this alert's SLO group and severity. */
export function matchersFor(alert) {
  const keys = ['slo', 'severity', 'slo_group'];
  return keys.filter((k) => alert.labels[k]).map((k) => `${k}="${alert.labels[k].replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
}

function silenceDialog(alert, onCreated, ctx) {
  const matchers = h('textarea', { name: 'matchers', rows: '3', class: 'mono', required: true });
  matchers.value = matchersFor(alert).join('\n');
  const who = h('input', { name: 'created_by', required: true, value: localStorage.getItem(WHO_KEY) || '' });
  const duration = h('select', { name: 'duration' }, ['30m', '1h', '2h', '4h', '8h', '1d', '3d'].map((d) => h('option', { value: d, selected: d === '2h' }, d)));
  const comment = h('input', { name: 'comment', placeholder: 'why (e.g. deploy rollback in progress)' });
  const problem = h('div');
  const dialog = h('dialog', { 'aria-labelledby': 'silence-title' });
  const form = h('form', {
    method: 'dialog',
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const s = await api('/api/v1/silences', {
          method: 'POST',
          body: {
            matchers: matchers.value.split('\n').map((m) => m.trim()).filter(Boolean),
            duration: duration.value,
            created_by: who.value.trim(),
            comment: comment.value,
          },
        });
        localStorage.setItem(WHO_KEY, who.value.trim());
        dialog.close();
        dialog.remove();
        toast(`Silence ${s.id} created`);
        onCreated();
      } catch (err) {
        mount(problem, errorBox(err));
      }
    },
  },
  h('h2', { id: 'silence-title' }, `Silence ${alert.labels.severity} alerts of ${alert.slo}`),
  h('label', {}, 'Matchers (one per line, Prometheus syntax)', matchers),
  h('label', {}, 'For', duration),
  h('label', {}, 'Created by', who),
  h('label', {}, 'Comment', comment),
  problem,
  h('div', { class: 'toolbar' },
    h('button', { type: 'submit', class: 'primary' }, 'Create silence'),
    h('button', { type: 'button', onclick: () => { dialog.close(); dialog.remove(); } }, 'Cancel')));
  dialog.append(form);
  // Escape closes it too; leaving the page removes it.
  dialog.addEventListener('close', () => dialog.remove());
  ctx.onCleanup(() => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  (who.value ? comment : who).focus();
}

/** The body a notification's receiver was sent, fetched when opened. */
function payloadCell(id) {
  const body = h('pre', { class: 'code payload', tabindex: '0' }, 'Loading…');
  const box = h('details', { class: 'payload' }, h('summary', {}, 'payload'), body);
  box.addEventListener('toggle', () => {
    if (!box.open || box.dataset.loaded) return;
    box.dataset.loaded = '1';
    api(`/api/v1/notifications/${encodeURIComponent(id)}`)
      .then((sent) => {
        body.textContent = sent.payload === null
          ? `The receiver sends mail (or is no longer configured). The notification:\n${JSON.stringify(sent.notification, null, 2)}`
          : JSON.stringify(sent.payload, null, 2);
      })
      .catch((err) => { body.textContent = err.message; });
  });
  return box;
}

/** A group key (`0:{severity="page",slo="x"}`) as its labels. */
function groupText(key) {
  const m = /\{(.*)\}$/.exec(key || '');
  return m ? m[1] : key || '';
}

/** Prometheus-style matchers (`a="b"`, `a!="b"`, `a=~"re"`, `a!~"re"`),
 * separated by commas; throws on one it cannot read. */
export function parseMatchers(text) {
  const out = [];
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;
  let at = 0;
  const src = text.trim();
  while (at < src.length) {
    re.lastIndex = at;
    const m = re.exec(src);
    if (!m) throw new Error(`cannot read the matcher at “${src.slice(at, at + 30)}”: write name="value", name!="value", name=~"regex" or name!~"regex", separated by commas`);
    const value = m[3].replace(/\\(.)/g, '$1');
    let test;
    if (m[2] === '=' || m[2] === '!=') test = (v) => v === value;
    else {
      const rx = new RegExp(`^(?:${value})$`);
      test = (v) => rx.test(v);
    }
    const negate = m[2].startsWith('!');
    out.push({ name: m[1], op: m[2], value, matches: (labels) => test(labels[m[1]] ?? '') !== negate });
    at = re.lastIndex;
  }
  return out;
}

/** `silenced`, `inhibited` (both when both), `firing` or `pending`. */
export function alertState(a) {
  const s = a.suppressed || {};
  const silenced = (s.silenced_by || []).length > 0;
  const inhibited = (s.inhibited_by || []).length > 0;
  if (silenced || inhibited) return silenced && inhibited ? 'silenced, inhibited' : silenced ? 'silenced' : 'inhibited';
  return a.status;
}

const STATE_CLASS = { firing: 'bad', pending: 'warn', silenced: 'neutral', inhibited: 'neutral', 'silenced, inhibited': 'neutral' };
const SEVERITY_RANK = { page: 0, ticket: 1 };

function alertBadge(a) {
  const state = alertState(a);
  return h('span', { class: `badge ${STATE_CLASS[state] || 'neutral'} state-${state.split(',')[0]}` }, state);
}

/** What silences or inhibits an alert, with the silence's author and comment. */
function suppressionText(a, silencesById, alertsByFp) {
  const parts = [];
  for (const id of (a.suppressed && a.suppressed.silenced_by) || []) {
    const s = silencesById.get(id);
    parts.push(h('div', { class: 'suppressed-by' }, id.startsWith('maintenance/')
      ? `In the maintenance window ${id.slice('maintenance/'.length)}`
      : s ? `Silenced by ${s.created_by} until ${fmt.time(s.ends_at)}${s.comment ? ` — “${s.comment}”` : ''}` : `Silenced by ${id}`));
  }
  for (const fp of (a.suppressed && a.suppressed.inhibited_by) || []) {
    const by = alertsByFp.get(fp);
    parts.push(h('div', { class: 'suppressed-by' }, by
      ? `Inhibited by the ${by.labels.severity} alert of ${by.slo} (${by.labels.window || by.labels.condition}), firing since ${fmt.time(by.since)}`
      : `Inhibited by alert ${fp}`));
  }
  return parts;
}

function valuesTable(a) {
  const v = a.values || {};
  // A budget event (severity `budget`) has a level instead of windows.
  const rates = v.budget_level === undefined || v.budget_level === null
    ? [
      h('dt', {}, `Burn rate over ${a.labels.long_window}`), h('dd', {}, fmt.burn(v.long_burn_rate)),
      h('dt', {}, `Burn rate over ${a.labels.short_window}`), h('dd', {}, fmt.burn(v.short_burn_rate)),
      h('dt', {}, 'Threshold'), h('dd', {}, fmt.burn(v.factor)),
    ]
    : [
      h('dt', {}, 'Budget level'), h('dd', {}, v.budget_level > 0 ? `below ${fmt.pct(v.budget_level)}` : 'spent'),
      h('dt', {}, 'Burn rate over the period'), h('dd', {}, fmt.burn(v.long_burn_rate)),
    ];
  return h('dl', { class: 'kv alert-values' },
    ...rates,
    h('dt', {}, 'SLI over the period'), h('dd', {}, fmt.pct(v.sli, 4)),
    h('dt', {}, 'Objective'), h('dd', {}, fmt.pct(v.objective)),
    h('dt', {}, 'Error budget left'), h('dd', {}, fmt.budget(v.error_budget_remaining)),
    h('dt', {}, 'Budget exhausted in'), h('dd', {}, v.time_to_exhaustion_seconds === null || v.time_to_exhaustion_seconds === undefined ? 'not at this rate' : fmt.seconds(v.time_to_exhaustion_seconds)));
}

/** A runbook link styled as a button. */
export function runbookButton(url) {
  if (!url || !/^https?:\/\//i.test(url)) return null;
  return h('a', { class: 'button runbook', href: url, target: '_blank', rel: 'noopener noreferrer' }, 'Runbook ↗');
}

function alertDetail(a, ctx, load, silencesById, alertsByFp) {
  const ann = a.annotations || {};
  const examples = a.examples || [];
  return h('div', { class: 'alert-detail' },
    h('p', { class: 'wrap' }, ann.description || ann.summary || ''),
    suppressionText(a, silencesById, alertsByFp),
    valuesTable(a),
    (a.hints || []).length
      ? h('div', {}, h('h4', {}, 'Likely causes'), h('ul', { class: 'hints' }, a.hints.map((x) => h('li', {},
        h('span', { class: 'mono' }, `${x.attribute}=${x.value}`), ` — ${fmt.pct(x.bad_share, 1)} of bad events, ${fmt.pct(x.total_share, 1)} of all`))))
      : null,
    examples.length
      ? h('div', {}, h('h4', {}, 'Example bad traces'), h('ul', { class: 'examples' }, examples.map((t) => h('li', {}, h('a', { class: 'mono', href: traceHref(t, Date.parse(a.since) || Date.now()) }, t)))))
      : null,
    h('div', { class: 'toolbar' },
      runbookButton(ann.runbook_url),
      h('a', { class: 'button', href: `/slos/${encodeURIComponent(a.slo)}${a.labels.slo_group ? `?group=${encodeURIComponent(JSON.stringify(Object.fromEntries(a.labels.slo_group.split(',').map((kv) => kv.split('=')))))}` : ''}` }, 'SLO page'),
      h('button', { type: 'button', class: 'silence', onclick: () => silenceDialog(a, load, ctx) }, 'Silence…')),
    h('details', { class: 'labels' }, h('summary', {}, 'Labels'),
      h('p', { class: 'mono wrap' }, Object.entries(a.labels).map(([k, v]) => `${k}="${v}"`).join(', '))));
}

/** One alert: a line that opens to its details (built when opened). */
function alertRow(a, ctx, load, silencesById, alertsByFp, open) {
  const row = h('details', { class: 'alert', 'data-fingerprint': a.fingerprint, 'data-state': alertState(a) },
    h('summary', {},
      alertBadge(a),
      a.flapping ? h('span', { class: 'badge warn flapping', title: 'Started firing again and again within the hour: it now resolves only after an hour without its condition.' }, 'flapping') : null,
      a.labels.slo_group ? h('span', { class: 'mono group' }, a.labels.slo_group) : null,
      h('span', { class: 'window mono' }, a.labels.window || a.labels.condition),
      h('span', { class: 'summary' }, a.annotations.summary || ''),
      h('span', { class: 'since muted' }, `since ${fmt.time(a.since)}`),
      h('span', { class: 'receivers muted' }, (a.receivers || []).join(', '))));
  let built = false;
  const build = () => {
    if (built || !row.open) return;
    built = true;
    row.append(alertDetail(a, ctx, load, silencesById, alertsByFp));
  };
  row.addEventListener('toggle', build);
  if (open) { row.open = true; build(); }
  return row;
}

/** Alerts by SLO and severity, page first, then by how many fire. */
function groupAlerts(alerts) {
  const groups = new Map();
  for (const a of alerts) {
    const key = `${a.labels.tenant || ''}\u0000${a.slo}\u0000${a.labels.severity}`;
    if (!groups.has(key)) groups.set(key, { slo: a.slo, severity: a.labels.severity, tenant: a.labels.tenant, alerts: [] });
    groups.get(key).alerts.push(a);
  }
  const firing = (g) => g.alerts.filter((a) => alertState(a) === 'firing').length;
  return [...groups.values()].sort((x, y) => (SEVERITY_RANK[x.severity] ?? 9) - (SEVERITY_RANK[y.severity] ?? 9)
    || firing(y) - firing(x) || x.slo.localeCompare(y.slo));
}

const GROUPS_SHOWN = 50;

export async function render(main, ctx) {
  ctx.title('Alerts');
  const params = new URLSearchParams(location.search);
  const filter = h('input', { name: 'filter', id: 'alert-filter', class: 'mono', size: '48', placeholder: 'severity="page", team=~"pay.*"', value: params.get('filter') || '', 'aria-label': 'Filter alerts by label matchers' });
  const stateSel = h('select', { name: 'state', id: 'alert-state', 'aria-label': 'State' },
    [['', 'any state'], ['firing', 'firing'], ['pending', 'pending'], ['silenced', 'silenced'], ['inhibited', 'inhibited']]
      .map(([v, t]) => h('option', { value: v, selected: (params.get('state') || '') === v }, t)));
  const filterProblem = h('div');
  const active = h('div', { id: 'active-alerts' });
  const silences = h('div', { id: 'silences' });
  const history = h('div', { id: 'alert-history' });
  const deliveries = h('div', { id: 'notifications' });
  let shown = GROUPS_SHOWN;
  let last = null;
  const setParam = (k, v) => {
    const u = new URL(location.href);
    if (v) u.searchParams.set(k, v); else u.searchParams.delete(k);
    window.history.replaceState(window.history.state, '', u);
  };
  filter.addEventListener('input', () => { setParam('filter', filter.value.trim()); shown = GROUPS_SHOWN; if (last) drawActive(last); });
  stateSel.addEventListener('change', () => { setParam('state', stateSel.value); shown = GROUPS_SHOWN; if (last) drawActive(last); });
  mount(main,
    h('h1', {}, 'Alerts'),
    h('h2', {}, 'Active'),
    h('div', { class: 'toolbar filters' }, h('label', {}, 'Matchers ', filter), h('label', {}, 'State ', stateSel)),
    filterProblem,
    active,
    h('h2', {}, 'Silences'), silences,
    h('h2', {}, 'Notifications'), deliveries,
    h('h2', {}, 'History'), history);

  function drawActive({ alerts, silencesById }) {
    let matchers = [];
    try {
      matchers = parseMatchers(filter.value);
      mount(filterProblem);
    } catch (err) {
      mount(filterProblem, errorBox(err));
    }
    const want = stateSel.value;
    const selected = alerts.filter((a) => matchers.every((m) => m.matches({ ...a.labels, slo: a.slo }))
      && (!want || alertState(a).split(', ').includes(want)));
    const alertsByFp = new Map(alerts.map((a) => [a.fingerprint, a]));
    const openNow = new Set([...active.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
    const openAlerts = new Set([...active.querySelectorAll('details.alert[open]')].map((d) => d.dataset.fingerprint));
    if (!alerts.length) { mount(active, h('p', { class: 'muted' }, 'No active alerts.')); return; }
    if (!selected.length) { mount(active, h('p', { class: 'muted' }, `None of the ${alerts.length} active alerts matches.`)); return; }
    const groups = groupAlerts(selected);
    const counts = (g) => {
      const c = {};
      for (const a of g.alerts) for (const st of alertState(a).split(', ')) c[st] = (c[st] || 0) + 1;
      return Object.entries(c).map(([st, n]) => h('span', { class: `badge ${STATE_CLASS[st] || 'neutral'}` }, `${n} ${st}`));
    };
    const list = h('div', { id: 'alert-groups', role: 'list' }, groups.slice(0, shown).map((g) => {
      const key = `${g.tenant || ''}/${g.slo}/${g.severity}`;
      const single = g.alerts.length === 1;
      const box = h('details', { class: `alert-group severity-${g.severity}`, 'data-key': key, 'data-slo': g.slo, role: 'listitem' },
        h('summary', {},
          h('span', { class: `badge ${g.severity === 'page' ? 'bad' : 'warn'}` }, g.severity),
          h('a', { href: `/slos/${encodeURIComponent(g.slo)}`, class: 'slo' }, g.slo),
          g.tenant ? h('span', { class: 'muted' }, ` tenant ${g.tenant}`) : null,
          h('span', { class: 'count muted' }, single ? '1 alert' : `${g.alerts.length} alerts`),
          ...counts(g)));
      let built = false;
      const build = () => {
        if (built || !box.open) return;
        built = true;
        box.append(h('div', { class: 'alert-list' }, g.alerts.map((a) => alertRow(a, ctx, load, silencesById, alertsByFp, openAlerts.has(a.fingerprint) || (single && openNow.has(key))))));
      };
      box.addEventListener('toggle', build);
      // A short list opens whole, as Alertmanager's does; a long one is a list
      // of groups to open.
      if (openNow.has(key) || groups.length <= 10) { box.open = true; build(); }
      return box;
    }));
    const more = groups.length > shown
      ? h('button', { type: 'button', id: 'more-groups', onclick: () => { shown += GROUPS_SHOWN * 4; drawActive(last); } }, `Show more (${groups.length - shown} more groups)`)
      : null;
    mount(active, h('p', { class: 'muted', id: 'alert-summary' }, `${selected.length} alerts in ${groups.length} groups`), list, more);
  }

  const load = async () => {
    const [a, s, hist, n] = await Promise.all([
      api('/api/v1/alerts'), api('/api/v1/silences'),
      api(`/api/v1/alerts/history${qs({ limit: 100 })}`), api(`/api/v1/notifications${qs({ limit: 100 })}`),
    ]);
    if (!ctx.alive()) return;
    last = { alerts: a.alerts, silencesById: new Map(s.silences.map((x) => [x.id, x])) };
    drawActive(last);
    mount(silences, s.silences.length
      ? table(['Status', 'Matchers', 'Starts', 'Ends', 'Created by', 'Comment', ''], s.silences.map((x) => [
        h('span', { class: `badge ${x.status === 'active' ? 'warn' : 'neutral'}` }, x.status),
        h('span', { class: 'mono' }, x.matchers.join(', ')),
        fmt.time(x.starts_at), fmt.time(x.ends_at), x.created_by, h('td', { class: 'wrap' }, x.comment),
        x.status === 'expired' ? '' : h('button', {
          type: 'button',
          onclick: async () => {
            try {
              await api(`/api/v1/silences/${encodeURIComponent(x.id)}`, { method: 'DELETE' });
              toast(`Silence ${x.id} expired`);
              load();
            } catch (err) { toast(err.message); }
          },
        }, 'Expire'),
      ]), { attrs: { id: 'silences-table' } })
      : h('p', { class: 'muted' }, 'No silences.'));
    mount(deliveries, n.notifications.length
      ? [h('p', { class: 'muted' }, `${n.pending} pending`),
        table(['Created', 'Status', 'Receiver', 'Group', 'SLOs', 'Delivery', 'Attempts', 'Last status', 'Last error', 'Next attempt', 'Sent'], n.notifications.map((d) => [
          fmt.time(d.created_at),
          h('span', { class: `badge ${d.status === 'resolved' ? 'ok' : d.status === 'firing' ? 'bad' : 'neutral'} status-${d.status}` }, d.status),
          d.receiver,
          h('span', { class: 'mono wrap group-key' }, groupText(d.group_key)),
          (d.slos || []).join(', '),
          h('span', { class: `badge ${d.state === 'delivered' ? 'ok' : d.state === 'pending' ? 'warn' : 'bad'}` }, d.state),
          h('td', { class: 'num' }, String(d.attempts)), d.last_status ?? '—', h('td', { class: 'wrap' }, d.last_error || ''), d.next_attempt_at ? fmt.time(d.next_attempt_at) : '',
          payloadCell(d.id),
        ]), { attrs: { id: 'notifications-table' } })]
      : h('p', { class: 'muted' }, 'No notifications yet.'));
    mount(history, hist.history.length
      ? table(['At', 'SLO', 'Severity', 'From', 'To', 'Summary'], hist.history.map((t) => [
        fmt.time(t.at), h('a', { href: `/slos/${encodeURIComponent(t.slo)}` }, t.slo), t.labels.severity || '', t.from, t.to, h('td', { class: 'wrap' }, t.summary || ''),
      ]))
      : h('p', { class: 'muted' }, 'No alert has changed state yet.'));
  };
  try {
    await load();
  } catch (e) {
    mount(active, errorBox(e));
    return;
  }
  ctx.every(10000, () => {
    // Not while a dialog is open or a control in the page has focus.
    const focused = document.activeElement;
    if (document.querySelector('dialog[open]') || (focused !== main && main.contains(focused) && focused.matches('a, button, input, select, textarea'))) return;
    load().catch((e) => console.warn('refresh failed', e));
  });
}
