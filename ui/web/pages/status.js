// Status: ingest rates per signal, rejected items, storage, WAL and flushes.
import { api } from '/ui/lib/api.js';
import { h, mount, table } from '/ui/lib/dom.js';
import * as fmt from '/ui/lib/format.js';

function rate(now, prev, get) {
  if (!prev) return get(now) / Math.max(now.uptime_seconds, 1);
  const dt = (now.now_ms - prev.now_ms) / 1000;
  return dt > 0 ? (get(now) - get(prev)) / dt : 0;
}

function sloSection(slo) {
  if (!slo) return h('p', { class: 'muted' }, 'Not reported.');
  const t = slo.last_tick;
  return h('div', { id: 'slo-engine' },
    h('dl', { class: 'kv' },
      h('dt', {}, 'SLOs'), h('dd', {}, fmt.count(slo.slos)),
      h('dt', {}, 'evaluated every'), h('dd', {}, slo.interval),
      h('dt', {}, 'ticks since start'), h('dd', {}, fmt.count(slo.ticks)),
      h('dt', {}, 'last tick'), h('dd', {}, t ? `${fmt.time(t.at)} — rollups ${t.update_ms.toFixed(1)} ms, evaluation ${t.evaluate_ms.toFixed(1)} ms; ${t.updated} updated (${t.batched} together), ${t.waiting_or_failed} waiting or failed` : 'none yet'),
      h('dt', {}, 'batched-rollup fallbacks'), h('dd', {}, slo.batch_fallbacks ? h('span', { class: 'badge warn' }, fmt.count(slo.batch_fallbacks)) : '0')),
    slo.backfilling.length
      ? table(['Backfilling', 'Progress'], slo.backfilling.map((b) => [b.slo, h('td', { class: 'num' }, fmt.pct(b.progress, 0))]))
      : h('p', { class: 'muted' }, 'Every SLO is caught up.'),
    slo.failing.length
      ? table(['Failing SLO', 'Error'], slo.failing.map((f) => [f.slo, h('td', { class: 'wrap error-text' }, f.error)]), { attrs: { id: 'slo-failing' } })
      : h('p', { class: 'muted' }, 'No SLO is failing.'),
    slo.problems.length ? h('ul', { class: 'problems' }, slo.problems.map((p) => h('li', { class: 'mono' }, p))) : null);
}

function queueSection(n) {
  if (!n) return h('p', { class: 'muted' }, 'Not reported.');
  if (n.error) return h('p', { class: 'error' }, n.error);
  const states = ['pending', 'delivered', 'failed', 'dead'];
  return h('div', { id: 'notification-queue' },
    h('dl', { class: 'kv' },
      h('dt', {}, 'queued for delivery'), h('dd', {}, fmt.count(n.queued)),
      h('dt', {}, 'oldest pending'), h('dd', {}, n.oldest_pending ? fmt.time(n.oldest_pending) : 'none'),
      ...states.flatMap((st) => [h('dt', {}, st), h('dd', {}, (st === 'failed' || st === 'dead') && n.states[st]
        ? h('span', { class: 'badge bad' }, fmt.count(n.states[st])) : fmt.count(n.states[st] || 0))])));
}

export async function render(main, ctx) {
  ctx.title('Status');
  const box = h('div', { id: 'status' });
  mount(main, h('h1', {}, 'Status'), box);
  let prev = null;
  const draw = (s) => {
    const signals = ['traces', 'metrics', 'logs'];
    const rejected = [];
    for (const [signal, reasons] of Object.entries(s.ingest.rejected_items)) {
      for (const [reason, n] of Object.entries(reasons)) rejected.push([signal, reason, h('td', { class: 'num' }, fmt.count(n))]);
    }
    const totalFiles = Object.values(s.tables).reduce((a, t) => a + t.file_bytes, 0);
    mount(box,
      h('div', { class: 'cards' },
        card('Version', s.version),
        card('Up for', fmt.seconds(s.uptime_seconds)),
        card('Stored on disk', fmt.bytes(totalFiles + s.wal.bytes)),
        card('Buffer', `${fmt.bytes(s.buffer.bytes)} of ${fmt.bytes(s.buffer.limit_bytes)}`)),
      h('h2', {}, 'Ingest'),
      h('p', { class: 'muted' }, prev ? 'Rates over the last 5 seconds.' : 'Rates averaged since start; they update every 5 seconds.'),
      table(['Signal', 'Rate (items/s)', 'Items accepted', 'Bytes received'], signals.map((sig) => [
        sig,
        h('td', { class: 'num' }, rate(s, prev, (x) => x.ingest.accepted_items[sig] || 0).toFixed(1)),
        h('td', { class: 'num' }, fmt.count(s.ingest.accepted_items[sig] || 0)),
        h('td', { class: 'num' }, fmt.bytes(s.ingest.received_bytes[sig] || 0)),
      ]), { attrs: { id: 'ingest-table' } }),
      h('h2', {}, 'SLO engine'),
      sloSection(s.slo),
      h('h2', {}, 'Notification queue'),
      queueSection(s.notifications),
      h('h2', {}, 'Rejected items'),
      rejected.length ? table(['Signal', 'Reason', 'Count'], rejected) : h('p', { class: 'muted' }, 'Nothing rejected since start.'),
      h('h2', {}, 'Storage'),
      table(['Table', 'Rows in memory', 'Files', 'Bytes', 'Retention'], Object.entries(s.tables).map(([t, v]) => [
        t, h('td', { class: 'num' }, fmt.count(v.buffer_rows)), h('td', { class: 'num' }, fmt.count(v.files)), h('td', { class: 'num' }, fmt.bytes(v.file_bytes)), v.retention,
      ])),
      h('h2', {}, 'Write-ahead log and flushes'),
      h('dl', { class: 'kv' },
        h('dt', {}, 'data directory'), h('dd', {}, s.data_dir),
        h('dt', {}, 'WAL'), h('dd', {}, s.wal.enabled ? `on, fsync ${s.wal.sync}` : 'off (acknowledged data in memory can be lost on a crash)'),
        h('dt', {}, 'WAL size'), h('dd', {}, fmt.bytes(s.wal.bytes)),
        h('dt', {}, 'persisted through record'), h('dd', {}, String(s.wal.persisted_through)),
        h('dt', {}, 'flush interval'), h('dd', {}, s.flush.interval),
        h('dt', {}, 'last flush'), h('dd', {}, s.flush.last_flush_ms ? fmt.time(s.flush.last_flush_ms) : 'none yet'),
        h('dt', {}, 'flushes'), h('dd', {}, fmt.count(s.flush.flushes)),
        h('dt', {}, 'failed flushes / compactions'), h('dd', {}, s.flush.failures ? h('span', { class: 'badge bad' }, fmt.count(s.flush.failures)) : '0'),
        h('dt', {}, 'files compacted'), h('dd', {}, fmt.count(s.flush.files_compacted)),
        h('dt', {}, 'files expired by retention'), h('dd', {}, fmt.count(s.flush.files_expired))));
    prev = s;
  };
  const first = await api('/api/v1/status');
  if (!ctx.alive()) return;
  draw(first);
  ctx.every(5000, async () => {
    try {
      const s = await api('/api/v1/status');
      if (ctx.alive()) draw(s);
    } catch (e) {
      console.warn('status refresh failed', e);
    }
  });
}

function card(label, value) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
}
