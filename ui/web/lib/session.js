// Who is signed in, the sign-in page and signing out. Sessions are cookies
// the page cannot read (HttpOnly); GET /auth/session says who it is and
// gives the CSRF token that state changes carry (lib/api.js).
import { api, setCsrfToken } from '/ui/lib/api.js';
import { errorBox, h, mount } from '/ui/lib/dom.js';

// When the last session seen in this browser ends, to tell someone coming
// back that it expired (the cookie itself is gone by then).
const ENDS = 'smolder.session_ends';

/** The session (`{auth: false}` without authentication); without one
 * `{auth: true, message}` saying why. */
export async function loadSession() {
  try {
    const s = await api('/auth/session');
    setCsrfToken(s.csrf_token);
    if (s.expires_at) localStorage.setItem(ENDS, s.expires_at);
    return s;
  } catch (e) {
    setCsrfToken('');
    return { auth: true, message: endedMessage() || e.message.replace(/^\d+: /, '') };
  }
}

/** "Your session expired at …" once the last session's end has passed. */
export function endedMessage() {
  const ends = Date.parse(localStorage.getItem(ENDS) || '');
  if (!Number.isFinite(ends) || ends > Date.now()) return '';
  localStorage.removeItem(ENDS);
  return `Your session expired at ${new Date(ends).toLocaleTimeString()}: sign in again.`;
}

/** Shows who is signed in, and a sign-out button, in the header. */
export function showUser(header, session) {
  const old = header.querySelector('.user');
  if (old) old.remove();
  if (!session.auth || !session.user) return;
  const out = h('button', { type: 'button', id: 'signout' }, 'Sign out');
  out.addEventListener('click', async () => {
    out.disabled = true;
    try {
      const r = await api('/auth/logout', { method: 'POST' });
      localStorage.removeItem(ENDS);
      location.assign(r.end_session_url || '/');
    } catch (e) {
      out.disabled = false;
      alert(e.message);
    }
  });
  const name = session.user;
  header.append(h('div', { class: 'user' },
    h('span', { class: 'muted', title: `tenant ${session.tenant}` }, `${name} · ${session.tenant}`), ' ', out));
}

/** The sign-in page, in place of a view. */
export async function renderSignIn(main, why) {
  // The 401 answer says whether OpenID sign-in is offered.
  const r = await fetch('/auth/session').then((x) => x.json()).catch(() => ({}));
  const oidc = Boolean(r.oidc);
  document.title = 'Sign in · smolder';
  const back = location.pathname + location.search;
  const parts = [h('h1', {}, 'Sign in to smolder')];
  if (why && why !== 'not signed in') parts.push(h('p', { class: 'muted', id: 'signin-reason' }, why));
  if (oidc) {
    parts.push(h('p', {}, h('a', {
      class: 'button', id: 'signin-oidc', href: `/auth/login?return_to=${encodeURIComponent(back)}`,
    }, 'Sign in with your organisation (OpenID Connect)')));
  }
  const input = h('input', { type: 'password', id: 'signin-token', name: 'token', autocomplete: 'off', required: '' });
  const form = h('form', { id: 'signin-token-form' },
    h('label', { for: 'signin-token' }, 'Or with an API token'), ' ', input, ' ',
    h('button', { type: 'submit' }, 'Sign in'));
  const status = h('div', {});
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('/auth/token', { method: 'POST', body: { token: input.value } });
      location.assign(back);
    } catch (err) {
      mount(status, errorBox(err));
    }
  });
  parts.push(form, status);
  mount(main, h('section', { class: 'signin' }, ...parts));
}
