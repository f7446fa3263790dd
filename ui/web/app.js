// The page shell: a small router over the History API, the shared time-range
// picker, and page lifecycle. Each page is a module in /ui/pages/ exporting
// `render(main, ctx)`; everything a view shows is derived from its URL, so
// any view can be linked and reloaded.
import { durationSeconds, setZone, zone } from '/ui/lib/format.js';
import { errorBox, h, mount } from '/ui/lib/dom.js';
import { endedMessage, loadSession, renderSignIn, showUser } from '/ui/lib/session.js';

// Path, page module, navigation entry, and whether the page shows data of
// the time range (the picker is shown only there).
const ROUTES = [
  [/^\/(?:slos\/?)?$/, 'slos', 'slos', true],
  [/^\/slos\/new$/, 'slo_edit', 'slos', false],
  [/^\/slos\/([^/]+)\/edit$/, 'slo_edit', 'slos', false],
  [/^\/slos\/([^/]+)$/, 'slo', 'slos', true],
  [/^\/explore$/, 'explore', 'explore', true],
  [/^\/traces$/, 'traces', 'traces', true],
  [/^\/traces\/([^/]+)$/, 'trace', 'traces', false],
  [/^\/logs$/, 'logs', 'logs', true],
  [/^\/alerts$/, 'alerts', 'alerts', false],
  [/^\/reports$/, 'reports', 'reports', false],
  [/^\/status$/, 'status', 'status', false],
];
const TIME_PARAMS = ['range', 'from', 'to', 'refresh'];
const DEFAULT_RANGE = '1h';

const main = document.getElementById('main');
let current = { cleanup: [], token: 0 };
let rendered = '';
// Who is signed in (`auth: false` without authentication).
let session = await loadSession();
let signInReason = '';
showUser(document.querySelector('header.top'), session);

/**
 * A time in the URL: `now`, `now-15m`, `now+1h`, an RFC 3339 instant, or
 * `YYYY-MM-DD HH:MM[:SS]` in the chosen zone. Returns ms, or NaN.
 */
export function parseTimeText(text, now = Date.now()) {
  const t = (text || '').trim();
  const rel = /^now(?:\s*([+-])\s*(\d+(?:\.\d+)?[smhdw]))?$/.exec(t);
  if (rel) {
    if (!rel[1]) return now;
    const secs = durationSeconds(rel[2]);
    return now + (rel[1] === '-' ? -1 : 1) * secs * 1000;
  }
  const local = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(?::\d\d(?:\.\d+)?)?)$/.exec(t);
  if (local) return zone() === 'utc' ? Date.parse(`${local[1]}T${local[2]}Z`) : Date.parse(`${local[1]}T${local[2]}`);
  return Date.parse(t);
}

/**
 * The selected time range: {from, to} in ms, the URL's `range` value, and
 * whether it moves with the clock (`relative`). `range=15m` is the last 15
 * minutes; `from`/`to` (relative like `now-6h` or absolute) give any other.
 */
export function timeRange(query = new URLSearchParams(location.search)) {
  const range = query.get('range') || (query.get('from') ? 'custom' : DEFAULT_RANGE);
  if (range === 'custom') {
    const now = Date.now();
    const from = parseTimeText(query.get('from'), now);
    const to = parseTimeText(query.get('to') || 'now', now);
    if (Number.isFinite(from) && Number.isFinite(to) && from < to) {
      const relative = /^now/.test(query.get('to') || 'now') && /^now/.test(query.get('from') || '');
      return { range, from, to, relative, fromText: query.get('from'), toText: query.get('to') || 'now' };
    }
  }
  const secs = durationSeconds(range) || durationSeconds(DEFAULT_RANGE);
  const to = Date.now();
  return { range: durationSeconds(range) ? range : DEFAULT_RANGE, from: to - secs * 1000, to, relative: true };
}

/** Sets an absolute range (ms) for the page and the URL. */
export function setRange(from, to) {
  const iso = (ms) => new Date(Math.round(ms)).toISOString();
  setQuery({ range: 'custom', from: iso(from), to: iso(Math.min(to, Date.now())) }, { push: true });
  render();
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
  for (const [re, page, nav, range] of ROUTES) {
    const m = re.exec(path);
    if (m) {
      try {
        return { page, nav, range, args: m.slice(1).map(decodeURIComponent) };
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
  picker.hidden = !(r && r.range);
  if (!r) {
    notFound(main, `There is no page at ${location.pathname}.`);
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

/** The not-found view: what was not found, and ways on. */
export function notFound(el, message) {
  document.title = 'Not found · smolder';
  mount(el, h('div', { class: 'not-found', id: 'not-found' },
    h('h1', {}, 'Not found'),
    h('p', {}, message),
    h('p', {}, h('a', { href: '/slos' }, 'All SLOs'), ' · ', h('a', { href: '/alerts' }, 'Alerts'), ' · ',
      h('a', { href: '/traces' }, 'Traces'), ' · ', h('a', { href: '/logs' }, 'Logs'))));
}

// ---- preferences: time zone and theme ----------------------------------------

const THEME_KEY = 'smolder.theme';

const systemDark = window.matchMedia('(prefers-color-scheme: dark)');

/** Light or dark as chosen, or as the system prefers (`auto`). */
function applyTheme(theme) {
  const dark = theme === 'dark' || (theme !== 'light' && systemDark.matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  document.documentElement.dataset.themeChoice = theme;
}

function prefsControls() {
  let theme = 'auto';
  try { theme = localStorage.getItem(THEME_KEY) || 'auto'; } catch { /* private mode */ }
  applyTheme(theme);
  // The system's preference changes (evening): follow it when on auto.
  systemDark.addEventListener('change', () => { if (theme === 'auto') { applyTheme(theme); render(); } });
  const zoneButton = h('button', {
    type: 'button', id: 'zone', title: 'Show times in UTC or in this browser\'s time zone',
    'aria-label': 'Time zone', onclick: () => {
      setZone(zone() === 'utc' ? 'local' : 'utc');
      zoneButton.textContent = zone() === 'utc' ? 'UTC' : 'Local time';
      render();
    },
  }, zone() === 'utc' ? 'UTC' : 'Local time');
  const themes = ['auto', 'light', 'dark'];
  const themeButton = h('button', {
    type: 'button', id: 'theme', 'aria-label': 'Colour theme', title: 'Colour theme: the system\'s, light or dark',
    onclick: () => {
      theme = themes[(themes.indexOf(theme) + 1) % themes.length];
      try { localStorage.setItem(THEME_KEY, theme); } catch { /* private mode */ }
      applyTheme(theme);
      themeButton.textContent = `Theme: ${theme}`;
      render();
    },
  }, `Theme: ${theme}`);
  return h('div', { class: 'prefs' }, zoneButton, themeButton);
}

document.querySelector('header.top').append(prefsControls());

// ---- the time-range picker -------------------------------------------------

const picker = document.getElementById('timepicker');
const select = document.getElementById('range');
const custom = picker.querySelector('.custom');
const fromInput = document.getElementById('from');
const toInput = document.getElementById('to');
const refreshSelect = document.getElementById('refresh');

/** An instant as the custom inputs show it: `2026-03-02 17:27:05`, in the
 * chosen zone. */
function inputText(ms) {
  const offset = zone() === 'utc' ? 0 : new Date(ms).getTimezoneOffset() * 60000;
  return new Date(ms - offset).toISOString().slice(0, 19).replace('T', ' ');
}

function syncPicker() {
  const r = timeRange();
  select.value = r.range;
  custom.hidden = r.range !== 'custom';
  fromInput.value = r.range === 'custom' && r.fromText && /^now/.test(r.fromText) ? r.fromText : inputText(r.from);
  toInput.value = r.range === 'custom' && /^now/.test(r.toText || '') ? r.toText : inputText(r.to);
  refreshSelect.value = new URLSearchParams(location.search).get('refresh') || '';
  armRefresh();
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
  const now = Date.now();
  const from = parseTimeText(fromInput.value, now);
  const to = parseTimeText(toInput.value || 'now', now);
  for (const [input, v] of [[fromInput, from], [toInput, to]]) {
    input.setCustomValidity(Number.isFinite(v) ? '' : 'Write now, now-15m, or a time like 2026-03-02 17:00.');
  }
  if (!Number.isFinite(from) || !Number.isFinite(to)) { (Number.isFinite(from) ? toInput : fromInput).reportValidity(); return; }
  if (!(from < to)) {
    toInput.setCustomValidity('The end must be after the start.');
    toInput.reportValidity();
    return;
  }
  toInput.setCustomValidity('');
  // Relative texts stay relative (the range moves with the clock).
  const keep = (text, ms) => (/^now/.test(text.trim()) ? text.trim().replace(/\s+/g, '') : new Date(ms).toISOString());
  setQuery({ range: 'custom', from: keep(fromInput.value, from), to: keep(toInput.value || 'now', to) }, { push: true });
  render();
});

// Earlier / later by the range's length; zoom out to twice the length.
document.getElementById('shift-back').addEventListener('click', () => {
  const r = timeRange();
  const len = r.to - r.from;
  setRange(r.from - len, r.to - len);
});
document.getElementById('shift-forward').addEventListener('click', () => {
  const r = timeRange();
  const len = r.to - r.from;
  const to = Math.min(Date.now(), r.to + len);
  setRange(to - len, to);
});
document.getElementById('zoom-out').addEventListener('click', () => {
  const r = timeRange();
  const len = r.to - r.from;
  const to = Math.min(Date.now(), r.to + len / 2);
  setRange(to - 2 * len, to);
});

// A drag across any chart selects the range for the whole page.
window.addEventListener('smolder:range', (e) => setRange(e.detail.from, e.detail.to));

// Auto-refresh: the view renders again every interval, unless someone is
// typing or a dialog is open.
let refreshTimer = null;
function armRefresh() {
  const every = durationSeconds(new URLSearchParams(location.search).get('refresh') || '');
  if (refreshTimer && refreshTimer.every === every) return;
  if (refreshTimer) clearInterval(refreshTimer.id);
  refreshTimer = null;
  if (!every) return;
  refreshTimer = {
    every,
    id: setInterval(() => {
      const focused = document.activeElement;
      if (document.hidden || document.querySelector('dialog[open]')
        || (focused && focused.matches('input, textarea, select') && focused.closest('main, #timepicker'))) return;
      render();
    }, every * 1000),
  };
}
refreshSelect.addEventListener('change', () => {
  setQuery({ refresh: refreshSelect.value }, { push: false });
  armRefresh();
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
