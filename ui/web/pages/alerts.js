// Alerts: active alerts, silences (create from an alert, list, expire),
// state history and notification deliveries.
import { api, qs } from '/ui/lib/api.js';
import { h, mount, errorBox, table, toast } from '/ui/lib/dom.js';
import * as fmt from '/ui/lib/format.js';
import { stateBadge } from '/ui/pages/slos.js';

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

export async function render(main, ctx) {
  ctx.title('Alerts');
  const active = h('div', { id: 'active-alerts' });
  const silences = h('div', { id: 'silences' });
  const history = h('div', { id: 'alert-history' });
  const deliveries = h('div', { id: 'notifications' });
  mount(main,
    h('h1', {}, 'Alerts'),
    h('h2', {}, 'Active'), active,
    h('h2', {}, 'Silences'), silences,
    h('h2', {}, 'Notifications'), deliveries,
    h('h2', {}, 'History'), history);

  const load = async () => {
    const [a, s, hist, n] = await Promise.all([
      api('/api/v1/alerts'), api('/api/v1/silences'),
      api(`/api/v1/alerts/history${qs({ limit: 100 })}`), api(`/api/v1/notifications${qs({ limit: 100 })}`),
    ]);
    if (!ctx.alive()) return;
    mount(active, a.alerts.length
      ? table(['Severity', 'State', 'SLO', 'Group', 'Since', 'Summary', 'Receivers', ''], a.alerts.map((al) => [
        al.labels.severity,
        h('span', {}, stateBadge(al), al.flapping ? h('span', { class: 'badge warn flapping', title: 'Started firing again and again within the hour: it now resolves only after an hour without its condition.' }, 'flapping') : null),
        h('a', { href: `/slos/${encodeURIComponent(al.slo)}` }, al.slo),
        h('span', { class: 'mono' }, al.labels.slo_group || ''),
        fmt.time(al.since),
        h('td', { class: 'wrap' }, al.annotations.summary || '', al.suppressed && (al.suppressed.silenced_by || []).length ? h('div', { class: 'muted' }, `silenced by ${al.suppressed.silenced_by.join(', ')}`) : null),
        (al.receivers || []).join(', '),
        h('button', { type: 'button', class: 'silence', onclick: () => silenceDialog(al, load, ctx) }, 'Silence…'),
      ]), { attrs: { id: 'alerts-table' } })
      : h('p', { class: 'muted' }, 'No active alerts.'));
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
        table(['Created', 'Receiver', 'SLOs', 'State', 'Attempts', 'Last status', 'Last error', 'Next attempt'], n.notifications.map((d) => [
          fmt.time(d.created_at), d.receiver, (d.slos || []).join(', '),
          h('span', { class: `badge ${d.state === 'delivered' ? 'ok' : d.state === 'pending' ? 'warn' : 'bad'}` }, d.state),
          h('td', { class: 'num' }, String(d.attempts)), d.last_status ?? '—', h('td', { class: 'wrap' }, d.last_error || ''), d.next_attempt_at ? fmt.time(d.next_attempt_at) : '',
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
