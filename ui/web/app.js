// The page shell: a small router over the History API, the shared time-range
// picker, and page lifecycle. Each page is a module in /ui/pages/ exporting
// `render(main, ctx)`; everything a view shows is derived from its URL, so
// any view can be linked and reloaded.
import { durationSeconds } from '/ui/lib/format.js';
import { errorBox, mount } from '/ui/lib/dom.js';
import { endedMessage, loadSession, renderSignIn, showUser } from '/ui/lib/session.js';

const ROUTES = [
  [/^\/(?:slos\/?)?$/, 'slos', 'slos'],
  [/^\/slos\/([^/]+)$/, 'slo', 'slos'],
  [/^\/explore$/, 'explore', 'explore'],
  [/^\/traces$/, 'traces', 'traces'],
  [/^\/traces\/([^/]+)$/, 'trace', 'traces'],
  [/^\/logs$/, 'logs', 'logs'],
  [/^\/alerts$/, 'alerts', 'alerts'],
  [/^\/status$/, 'status', 'status'],
];
const TIME_PARAMS = ['range', 'from', 'to'];
const DEFAULT_RANGE = '1h';

const main = document.getElementById('main');
let current = { cleanup: [], token: 0 };
let rendered = '';
// Who is signed in (`auth: false` without authentication).
let session = await loadSession();
let signInReason = '';
showUser(document.querySelector('header.top'), session);

/** The selected time range: {from, to} in ms and the URL's `range` value. */
export function timeRange(query = new URLSearchParams(location.search)) {
  const range = query.get('range') || DEFAULT_RANGE;
  if (range === 'custom') {
    const from = Date.parse(query.get('from') || '');
    const to = Date.parse(query.get('to') || '');
    if (Number.isFinite(from) && Number.isFinite(to) && from < to) return { range, from, to };
  }
  const secs = durationSeconds(range) || durationSeconds(DEFAULT_RANGE);
  const to = Date.now();
  return { range: durationSeconds(range) ? range : DEFAULT_RANGE, from: to - secs * 1000, to };
}

/** Opens `url` inside the app (keeps the time range unless the URL sets one). */
export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, location.origin);
  const here = new URLSearchParams(location.search);
  if (!TIME_PARAMS.some((p) => target.searchParams.has(p))) {
    for (const p of TIME_PARAMS) if (here.has(p)) target.searchParams.set(p, here.get(p));
  }
  const href = target.pathname + target.search + target.hash;
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  render(true);
}

/** Changes query parameters of the current view without reloading it. */
export function setQuery(params, { push = false } = {}) {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') u.searchParams.delete(k);
    else u.searchParams.set(k, v);
  }
  const href = u.pathname + u.search;
  if (href === location.pathname + location.search) return;
  if (push) history.pushState(null, '', href);
  else history.replaceState(null, '', href);
}

function route(path) {
  for (const [re, page, nav] of ROUTES) {
    const m = re.exec(path);
    if (m) {
      try {
        return { page, nav, args: m.slice(1).map(decodeURIComponent) };
      } catch {
        return null; // a malformed %-escape: no such page
      }
    }
  }
  return null;
}

async function render(moveFocus = false) {
  for (const f of current.cleanup) {
    try { f(); } catch (e) { console.warn(e); }
  }
  const token = current.token + 1;
  // Each view owns its cleanups: a slow page cannot hand its timers to the next.
  const cleanup = [];
  current = { cleanup, token };
  rendered = location.pathname + location.search;
  syncPicker();
  const r = route(location.pathname);
  for (const a of document.querySelectorAll('nav a')) {
    if (r && a.dataset.page === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!r) {
    mount(main, errorBox(`No page at ${location.pathname}`));
    return;
  }
  if (session.auth && !session.user) {
    await renderSignIn(main, signInReason || session.message);
    return;
  }
  const ctx = {
    args: r.args,
    query: new URLSearchParams(location.search),
    range: timeRange(),
    alive: () => current.token === token,
    onCleanup: (f) => {
      if (current.token === token) cleanup.push(f);
      else f();
    },
    every: (ms, f) => {
      if (current.token !== token) return;
      const id = setInterval(() => { if (current.token === token && !document.hidden) f(); }, ms);
      cleanup.push(() => clearInterval(id));
    },
    title: (t) => { document.title = `${t} · smolder`; },
  };
  try {
    const mod = await import(`/ui/pages/${r.page}.js`);
    if (current.token !== token) return;
    await mod.render(main, ctx);
  } catch (e) {
    if (current.token === token) mount(main, errorBox(e));
    console.error(e);
  }
  if (moveFocus && current.token === token) main.focus({ preventScroll: false });
}

// ---- the time-range picker -------------------------------------------------

const picker = document.getElementById('timepicker');
const select = document.getElementById('range');
const custom = picker.querySelector('.custom');
const fromInput = document.getElementById('from');
const toInput = document.getElementById('to');

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

function syncPicker() {
  const r = timeRange();
  select.value = r.range;
  custom.hidden = r.range !== 'custom';
  fromInput.value = localInput(r.from);
  toInput.value = localInput(r.to);
}

select.addEventListener('change', () => {
  if (select.value === 'custom') {
    custom.hidden = false;
    fromInput.focus();
    return;
  }
  setQuery({ range: select.value, from: null, to: null }, { push: true });
  render();
});

picker.addEventListener('submit', (e) => {
  e.preventDefault();
  const from = new Date(fromInput.value).getTime();
  const to = new Date(toInput.value).getTime();
  if (!(from < to)) {
    toInput.setCustomValidity('The end must be after the start.');
    toInput.reportValidity();
    return;
  }
  toInput.setCustomValidity('');
  setQuery({ range: 'custom', from: new Date(from).toISOString(), to: new Date(to).toISOString() }, { push: true });
  render();
});

// ---- links inside the app ----------------------------------------------------

document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  if (a.getAttribute('href').startsWith('#')) return; // in-page jumps (the skip link)
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !route(url.pathname)) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});

// An API call answered 401: the session ended (or there never was one).
window.addEventListener('smolder:signin', (e) => {
  if (session.auth && !session.user) return;
  session = { auth: true };
  signInReason = endedMessage() || e.detail;
  showUser(document.querySelector('header.top'), session);
  render();
});

// Back/forward re-render; a change of the #fragment alone does not.
window.addEventListener('popstate', () => {
  if (location.pathname + location.search !== rendered) render();
});
render();
