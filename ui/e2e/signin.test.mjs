// Signing in to smolder's web UI in headless Chromium against a real OpenID
// provider (ui/e2e/oidc-provider.mjs; tests/tests/signin.rs starts both):
//
//   SMOLDER_URL=http://127.0.0.1:P ISSUER=http://127.0.0.1:Q READ_TOKEN=smd_… node signin.test.mjs [artifacts]
//
// The provider's users: alice is a viewer and erin an editor of the default
// tenant, nobody has no smolder role. smolder runs with --oidc-session-ttl
// 20s. Checks, in order: the UI asks to sign in; alice signs in through the
// provider's pages (authorization code + PKCE) and sees the SLOs, the
// session cookie is HttpOnly, Secure and SameSite=Strict; a viewer cannot
// create a silence; erin (editor) can, but not without the CSRF token; a
// page of another origin cannot make one with erin's cookie; a callback URL
// of another browser's sign-in is refused (login CSRF); erin signs out
// (also at the provider) and her old cookie is dead; nobody is refused;
// an API token signs in from the same page; alice's session expires and the
// UI asks to sign in again.
import { join } from 'node:path';
import { ARTIFACTS, launchChromium } from './browser.mjs';
import assert from 'node:assert/strict';

const BASE = process.env.SMOLDER_URL;
const ISSUER = process.env.ISSUER;
// A token of the default tenant with the read scope.
const READ_TOKEN = process.env.READ_TOKEN;
if (!BASE || !ISSUER || !READ_TOKEN) {
  console.error('Set SMOLDER_URL, ISSUER and READ_TOKEN (tests/tests/signin.rs does).');
  process.exit(2);
}

const browser = await launchChromium();

const SILENCE = { matchers: ['slo="checkout-availability"'], duration: '1h', created_by: 'e2e' };

function step(name) {
  console.log(`- ${name}`);
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => { throw new Error(`uncaught exception on ${page.url()}: ${e.message}`); });
  return { context, page };
}

/** From the UI's sign-in page through the provider's login and consent. */
async function atProvider(page, login) {
  await page.goto(`${BASE}/slos`);
  await page.locator('#signin-oidc').click();
  await page.waitForURL((u) => u.href.startsWith(ISSUER));
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any password');
  await page.locator('button[type=submit]').click();
  // The consent page, the first time.
  await page.locator('button[type=submit]').click();
}

/** Signs `login` in through the provider's pages. */
async function signIn(page, login) {
  await atProvider(page, login);
  await page.waitForURL((u) => u.href.startsWith(BASE));
}

/** A request from the page (its cookie is sent): status and body. */
async function fetchFrom(page, path, init) {
  return page.evaluate(async ([p, i]) => {
    const r = await fetch(p, i);
    return { status: r.status, body: await r.text() };
  }, [path, init]);
}

async function csrfOf(page) {
  const s = await fetchFrom(page, '/auth/session', {});
  assert.equal(s.status, 200, s.body);
  return JSON.parse(s.body).csrf_token;
}

async function silenceCount(page) {
  const r = await fetchFrom(page, '/api/v1/silences', {});
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).silences.length;
}

// ---------------------------------------------------------------------------
step('the UI asks to sign in, offering OpenID Connect and a token');
const a = await newPage();
await a.page.goto(`${BASE}/slos`);
await a.page.locator('#signin-oidc').waitFor();
await a.page.locator('#signin-token').waitFor();
await a.page.screenshot({ path: join(ARTIFACTS, 'signin.png') });

step('alice signs in through the provider and sees the SLOs');
await signIn(a.page, 'alice');
await a.page.locator('header .user').getByText('alice').waitFor();
await a.page.locator('main h1').getByText('Service level objectives').waitFor();
await a.page.screenshot({ path: join(ARTIFACTS, 'signed-in.png') });
const [cookie] = (await a.context.cookies(BASE)).filter((c) => c.name === '__Host-smolder_session');
assert.ok(cookie, 'a session cookie');
assert.equal(cookie.httpOnly, true);
assert.equal(cookie.secure, true);
assert.equal(cookie.sameSite, 'Strict');
assert.equal(await a.page.evaluate(() => document.cookie.includes('__Host-smolder_session')), false,
  'scripts cannot read the session cookie');

const aliceEnds = Date.parse(JSON.parse((await fetchFrom(a.page, '/auth/session', {})).body).expires_at);
assert.ok(aliceEnds > Date.now(), 'the session ends in the future');

step('a viewer cannot create a silence');
const viewer = await fetchFrom(a.page, '/api/v1/silences', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': await csrfOf(a.page) },
  body: JSON.stringify(SILENCE),
});
assert.equal(viewer.status, 403, viewer.body);
assert.match(viewer.body, /permission_denied/);
assert.equal(await silenceCount(a.page), 0);

step('an editor creates one, but not without the CSRF token');
const e = await newPage();
await signIn(e.page, 'erin');
await e.page.locator('header .user').getByText('erin').waitFor();
const bare = await fetchFrom(e.page, '/api/v1/silences', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(SILENCE),
});
assert.equal(bare.status, 403, bare.body);
assert.match(bare.body, /CSRF/);
const wrong = await fetchFrom(e.page, '/api/v1/silences', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'not-the-token' },
  body: JSON.stringify(SILENCE),
});
assert.equal(wrong.status, 403, wrong.body);
const made = await fetchFrom(e.page, '/api/v1/silences', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': await csrfOf(e.page) },
  body: JSON.stringify(SILENCE),
});
assert.equal(made.status, 201, made.body);
assert.equal(await silenceCount(e.page), 1);

step("a page of another origin cannot make one with the editor's cookie");
await e.page.goto(`${ISSUER}/.well-known/openid-configuration`);
await e.page.evaluate(async ([url, body]) => {
  await fetch(`${url}/api/v1/silences`, {
    method: 'POST', mode: 'no-cors', credentials: 'include',
    headers: { 'Content-Type': 'text/plain' }, body,
  }).catch(() => {});
}, [BASE, JSON.stringify(SILENCE)]);
await e.page.goto(`${BASE}/alerts`);
assert.equal(await silenceCount(e.page), 1, 'no silence was added');

step('the editor signs out, at smolder and at the provider; the old cookie is dead');
const [old] = (await e.context.cookies(BASE)).filter((c) => c.name === '__Host-smolder_session');
await e.page.locator('#signout').click();
await e.page.waitForURL((u) => u.href.startsWith(ISSUER));
await e.page.screenshot({ path: join(ARTIFACTS, 'signed-out-at-provider.png') });
const replay = await fetch(`${BASE}/api/v1/silences`, { headers: { Cookie: `__Host-smolder_session=${old.value}` } });
assert.equal(replay.status, 401, 'the signed-out session no longer works');
await e.page.goto(`${BASE}/slos`);
await e.page.locator('#signin-oidc').waitFor();

step("a callback URL of someone else's sign-in does not sign this browser in");
// The provider's answer (a valid code and state) reaches a browser without
// the cookie that the sign-in's start set — as when an attacker hands
// someone the callback URL of their own sign-in.
const x = await newPage();
await x.page.goto(`${BASE}/slos`);
await x.page.locator('#signin-oidc').click();
await x.page.waitForURL((u) => u.href.startsWith(ISSUER));
assert.equal((await x.context.cookies(`${BASE}/auth/callback`)).filter((c) => c.name === '__Secure-smolder_signin').length, 1);
await x.context.clearCookies({ name: '__Secure-smolder_signin' });
await x.page.locator('input[name=login]').fill('erin');
await x.page.locator('input[name=password]').fill('any password');
await x.page.locator('button[type=submit]').click();
await x.page.locator('button[type=submit]').click();
await x.page.waitForURL((u) => u.href.startsWith(`${BASE}/auth/callback`));
await x.page.locator('#message').getByText('not started in this browser').waitFor();
assert.equal((await x.context.cookies(BASE)).filter((c) => c.name === '__Host-smolder_session').length, 0);

step('a person without a smolder role is refused');
const n = await newPage();
await signIn(n.page, 'nobody').catch(() => {});
await n.page.locator('#message').getByText('has no smolder role').waitFor();
assert.equal((await n.context.cookies(BASE)).filter((c) => c.name === '__Host-smolder_session').length, 0);

step('an API token signs in from the sign-in page (small setups)');
const t = await newPage();
await t.page.goto(`${BASE}/slos`);
await t.page.locator('#signin-token').fill('smd_not_a_token');
await t.page.locator('#signin-token-form button').click();
await t.page.locator('.signin .error').getByText('not valid').waitFor();
await t.page.locator('#signin-token').fill(READ_TOKEN);
await t.page.locator('#signin-token-form button').click();
await t.page.locator('main h1').getByText('Service level objectives').waitFor();
await t.page.locator('header .user').waitFor();

step("alice's session expires; the UI asks her to sign in again");
assert.ok(aliceEnds - Date.now() < 60000, 'the session lasts --oidc-session-ttl');
await new Promise((r) => setTimeout(r, Math.max(0, aliceEnds - Date.now()) + 1500));
await a.page.goto(`${BASE}/alerts`);
await a.page.locator('#signin-reason').getByText('expired').waitFor();
await a.page.locator('#signin-oidc').waitFor();
await a.page.screenshot({ path: join(ARTIFACTS, 'session-expired.png') });

await browser.close();
console.log('signin: all checks passed');
