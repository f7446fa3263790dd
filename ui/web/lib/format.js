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
  if (v < 1e3) return `${v}ns`;
  if (v < 1e6) return `${(v / 1e3).toFixed(1)}µs`;
  if (v < 1e9) return `${(v / 1e6).toFixed(1)}ms`;
  return `${(v / 1e9).toFixed(2)}s`;
}

/** A timestamp (ms, RFC 3339 text, or Date) in local time with seconds. */
export function time(t) {
  if (t === null || t === undefined) return '—';
  const d = t instanceof Date ? t : new Date(typeof t === 'string' ? fixIso(t) : t);
  if (Number.isNaN(d.getTime())) return String(t);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
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
