// Number, time and duration formatting shared by the pages.

export function pct(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return `${(x * 100).toFixed(digits).replace(/\.?0+$/, '')}%`;
}

/** Budget remaining: a fraction, negative when overspent. */
export function budget(x) {
  if (x === null || x === undefined) return '—';
  return `${(x * 100).toFixed(1)}%`;
}

export function burn(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return x >= 100 ? `${x.toFixed(0)}×` : x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`;
}

/** Seconds as "3d 4h", "12m 5s", "-2h 10m". */
export function seconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  const sign = s < 0 ? '-' : '';
  let v = Math.abs(s);
  const units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts = [];
  for (const [u, n] of units) {
    if (v >= n || (u === 's' && parts.length === 0)) {
      const q = Math.floor(v / n);
      v -= q * n;
      parts.push(`${q}${u}`);
    }
    if (parts.length === 2) break;
  }
  return sign + parts.join(' ');
}

/** Nanoseconds as a human duration: 850µs, 12.3ms, 1.25s. */
export function ns(n) {
  if (n === null || n === undefined) return '—';
  const v = Number(n);
  if (v < 1e3) return `${Math.round(v)}ns`;
  if (v < 1e6) return `${(v / 1e3).toFixed(1)}µs`;
  if (v < 1e9) return `${(v / 1e6).toFixed(1)}ms`;
  return `${(v / 1e9).toFixed(2)}s`;
}

// ---- time: one 24-hour format with its zone, UTC or local everywhere ----

const ZONE_KEY = 'smolder.zone';

/** `utc` or `local` (the header's switch; local by default). */
export function zone() {
  try { return localStorage.getItem(ZONE_KEY) === 'utc' ? 'utc' : 'local'; } catch { return 'local'; }
}

export function setZone(z) {
  try { localStorage.setItem(ZONE_KEY, z === 'utc' ? 'utc' : 'local'); } catch { /* private mode */ }
}

/** The fields of `d` in the chosen zone. */
export function fields(d) {
  const utc = zone() === 'utc';
  return utc
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds() }
    : { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds() };
}

/** The zone's short name at `d`: `UTC`, `CET`, `GMT+5:30`. */
export function zoneName(d = new Date()) {
  if (zone() === 'utc') return 'UTC';
  try {
    const part = new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName');
    return part ? part.value : 'local';
  } catch { return 'local'; }
}

function toDate(t) {
  return t instanceof Date ? t : new Date(typeof t === 'string' ? fixIso(t) : t);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** A timestamp (ms, RFC 3339 text, or Date): `2026-03-02 17:27:05 CET`,
 * with milliseconds when `ms`. */
export function time(t, { ms = false } = {}) {
  if (t === null || t === undefined) return '—';
  const d = toDate(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const f = fields(d);
  return `${f.y}-${pad(f.mo)}-${pad(f.d)} ${pad(f.h)}:${pad(f.mi)}:${pad(f.s)}${ms ? `.${pad(f.ms, 3)}` : ''} ${zoneName(d)}`;
}

/** A chart tick at `secs` (Unix seconds) for ticks `step` seconds apart:
 * `17:27`, `17:27:30`, `03-02`, `03-02 12:00`. */
export function tick(secs, step) {
  const f = fields(new Date(secs * 1000));
  const hm = `${pad(f.h)}:${pad(f.mi)}`;
  if (step < 60) return `${hm}:${pad(f.s)}`;
  if (step < 86400) return f.h === 0 && f.mi === 0 ? `${pad(f.mo)}-${pad(f.d)}` : hm;
  return `${pad(f.mo)}-${pad(f.d)}`;
}

/** A number in SI units, 3 significant digits: 950, 1.23k, 45.6M. */
export function si(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a === 0) return '0';
  const units = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [n, u] of units) if (a >= n) return `${+(v / n).toPrecision(3)}${u}`;
  if (a >= 1) return String(+v.toPrecision(4));
  return String(+v.toPrecision(3));
}

/** A number for a table cell: integers grouped, others to 4 significant
 * decimals at most (41.30434782608695 → 41.3043). */
export function number(v) {
  if (v === null || v === undefined) return '—';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const a = Math.abs(n);
  const digits = a >= 1000 ? 1 : a >= 1 ? 4 : Math.min(8, 3 - Math.floor(Math.log10(a)));
  return n.toLocaleString('en-US', { maximumFractionDigits: Math.max(0, digits) });
}

/** Arrow's JSON timestamps may lack a zone and carry nanoseconds; make them parseable. */
export function fixIso(s) {
  if (/^\d{4}-\d\d-\d\d$/.test(s)) return `${s}T00:00:00Z`;
  let t = s.replace(' ', 'T').replace(/(\.\d{3})\d+/, '$1');
  if (!/(Z|[+-]\d\d:?\d\d)$/.test(t)) t += 'Z';
  return t;
}

export function parseTime(s) {
  return new Date(fixIso(s)).getTime();
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function count(n) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString('en-US');
}

/** "5m", "1h", "7d" → seconds. */
export function durationSeconds(s) {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(s || '');
  if (!m) return null;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
}
