// Calls to smolder's JSON API; errors carry the server's message.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// The signed-in session's CSRF token (lib/session.js sets it): every state
// change made with the session cookie carries it.
let csrfToken = '';

export function setCsrfToken(token) {
  csrfToken = token || '';
}

/** Calls the API: `body` is sent as JSON, `text` as is with `contentType`. */
export async function api(path, { method = 'GET', body, text: raw, contentType, signal } = {}) {
  const init = { method, signal, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  } else if (raw !== undefined) {
    init.body = raw;
    init.headers['Content-Type'] = contentType || 'text/plain';
  }
  if (method !== 'GET' && csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const message = (data && data.error) || text || res.statusText;
    // Not (or no longer) signed in: the shell shows the sign-in page.
    if (res.status === 401 && !path.startsWith('/auth/')) {
      window.dispatchEvent(new CustomEvent('smolder:signin', { detail: message }));
    }
    throw new ApiError(`${res.status}: ${message}`, res.status);
  }
  return data;
}

/** Query-string from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, v);
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** A SQL API answer's rows as objects keyed by column name. */
export function records(answer) {
  const names = answer.columns.map((c) => c.name);
  return answer.rows.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])));
}

/**
 * The trace view's URL. `at` (ms, or an RFC 3339 time) is when the trace
 * happened, if known: the lookup then reads the hours around it first
 * instead of all stored data.
 */
export function traceHref(id, at) {
  const ms = typeof at === 'string' ? Date.parse(at) : at;
  return `/traces/${id}${Number.isFinite(ms) ? `?at=${Math.round(ms / 1000)}` : ''}`;
}
