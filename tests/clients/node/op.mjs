// A real OpenID Provider for the single sign-on tests: oidc-provider (certified) on an ephemeral port.
//
// Usage: node op.mjs '<json>' with {"users": [{"sub", "email", "email_verified", "name", "groups"}],
// "clients": [{"client_id", "client_secret", "redirect_uris"}]}. Prints one line {"port": N} once listening.
//
// Sign-in (no passwords): GET /interaction/<uid> shows a form with one field, login (an email of the users,
// pre-filled with login_hint); POST /interaction/<uid>/login signs that user in. Consent is granted at once
// for what the client asked. Test hooks, outside the provider's routes:
//   POST /_test/clients  {"clients": [...]}  replace the clients (a gateway's redirect URI is known late)
//   POST /_test/rotate                       a new signing key (new kid); the old one is no longer published
//   POST /_test/users    {"users": [...]}     replace the users (e.g. other groups for the next sign-in)
// Each rebuilds the provider on the same issuer; sessions and grants (a module-global store) survive.
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const spec = JSON.parse(process.argv[2] ?? '{}');
let users = spec.users ?? [];
let clients = spec.clients ?? [];
let signingKey = newKey();
let provider;
let handler;

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

function userBySub(sub) {
  return users.find((user) => user.sub === sub);
}

function build(issuer) {
  const built = new Provider(issuer, {
    clients: clients.map((client) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: client.client_secret ? 'client_secret_basic' : 'none',
      ...client,
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: ['voidllm-test-op-cookie-key'] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    conformIdTokenClaims: false, // the scopes' claims go into the ID token (the gateway reads only that)
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const user = userBySub(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: user.email,
            email_verified: user.email_verified ?? true,
            name: user.name ?? user.email,
            groups: user.groups ?? [],
          };
        },
      };
    },
    ttl: { IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
  });
  return built;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString();
  if ((req.headers['content-type'] ?? '').includes('application/json')) return JSON.parse(text || '{}');
  return Object.fromEntries(new URLSearchParams(text));
}

function send(res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (req.method === 'POST' && url.pathname.endsWith('/login')) {
    const form = await readForm(req);
    const user = users.find((candidate) => candidate.email === form.login);
    if (!user) {
      send(res, 400, 'text/html', `<p id="error">unknown user</p>`);
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'login') {
    const hint = escape(params.login_hint ?? '');
    send(res, 200, 'text/html', `<!doctype html><title>Test OP sign-in</title>
<form method="post" action="/interaction/${uid}/login"><label>Email <input name="login" value="${hint}"></label>
<button type="submit">Sign in</button></form>`);
    return;
  }
  // consent: grant what the client asked for
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function testHook(req, res, url, issuer) {
  const body = await readForm(req);
  if (url.pathname === '/_test/clients') clients = body.clients;
  else if (url.pathname === '/_test/users') users = body.users;
  else if (url.pathname === '/_test/rotate') signingKey = newKey();
  else return send(res, 404, 'application/json', '{}');
  provider = build(issuer);
  handler = provider.callback();
  send(res, 200, 'application/json', JSON.stringify({ kid: signingKey.kid }));
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = build(issuer);
  handler = provider.callback();
  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    try {
      if (req.method === 'POST' && url.pathname.startsWith('/_test/')) return await testHook(req, res, url, issuer);
      if (url.pathname.startsWith('/interaction/')) return await interaction(req, res, url);
      return handler(req, res);
    } catch (error) {
      if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ error: String(error) }));
      else res.end();
    }
  });
  process.stdout.write(`${JSON.stringify({ port, issuer, kid: signingKey.kid })}\n`);
});
process.stdin.on('end', () => process.exit(0)); // the test closed our stdin: stop
process.stdin.resume();
