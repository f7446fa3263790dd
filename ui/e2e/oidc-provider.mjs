// A real OpenID provider for the sign-in tests: node-oidc-provider (npm
// `oidc-provider`, an OpenID Certified implementation) on an ephemeral
// loopback port, with its own login and consent pages (devInteractions:
// any login name, any password).
//
//   node oidc-provider.mjs CLIENT_ID CLIENT_SECRET USERS_JSON
//
// USERS_JSON maps a login name to the groups claim it gets, e.g.
// {"alice": ["smolder:default:viewer"]}. Prints `issuer <url>` once it
// listens (smolder is started with that issuer), then reads the client's
// redirect URI (smolder's /auth/callback, known once smolder listens) as a
// line on its standard input before it answers; stops when its standard
// input closes (the test ends).

import http from 'node:http';
import readline from 'node:readline';
import Provider from 'oidc-provider';

const [clientId, clientSecret, usersJson] = process.argv.slice(2);
const users = JSON.parse(usersJson);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
console.log(`issuer ${issuer}`);

const lines = readline.createInterface({ input: process.stdin });
const redirectUri = await new Promise((resolve) => lines.once('line', (l) => resolve(l.trim())));
lines.on('close', () => process.exit(0));

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [new URL('/', redirectUri).href],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  // The roles claim goes into the ID token itself.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  // PKCE for every client, not only public ones.
  pkce: { required: () => true },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({
      sub: id,
      name: id,
      email: `${id}@example.com`,
      email_verified: true,
      groups: users[id] ?? [],
    }),
  }),
  cookies: { keys: ['smolder-test-provider-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
});
server.on('request', provider.callback());
console.log(`client ${clientId} ${redirectUri}`);
