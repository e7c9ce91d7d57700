// A real OpenID provider (the OpenID-certified `oidc-provider` package) standing in for the Cognito
// user pool in end-to-end tests. It listens on loopback only, issues ID tokens that carry
// `cognito:groups`, `token_use` and `email` like Cognito's, requires PKCE (S256), and checks each
// account's password on its own sign-in page.
//
// Configuration comes as JSON in the OIDC_PROVIDER_CONFIG environment variable:
//   { "port": 0, "client": { "client_id", "client_secret", "redirect_uris": [...],
//     "post_logout_redirect_uris": [...] },
//     "accounts": [{ "sub", "email", "password", "groups": ["Viewer"] }] }
// Once listening it prints one line to stdout: `READY <issuer>`.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_PROVIDER_CONFIG || '{}');
if (!config.client || !Array.isArray(config.accounts)) {
  console.error('OIDC_PROVIDER_CONFIG must give "client" and "accounts".');
  process.exit(2);
}

const accountsByEmail = new Map(config.accounts.map((a) => [a.email.toLowerCase(), a]));
const accountsBySub = new Map(config.accounts.map((a) => [a.sub, a]));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `e2e-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' };

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function loginPage(uid, error, email) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · Test identity provider</title></head>
<body><main>
<h1>Test identity provider</h1>
${error ? `<p role="alert" class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label>Email <input type="email" name="email" value="${escapeHtml(email || '')}" required autofocus></label>
  <label>Password <input type="password" name="password" required></label>
  <button type="submit">Sign in</button>
</form>
</main></body></html>`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 64 * 1024) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

const server = http.createServer();
server.listen(config.port || 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: [{
      client_id: config.client.client_id,
      client_secret: config.client.client_secret,
      redirect_uris: config.client.redirect_uris,
      post_logout_redirect_uris: config.client.post_logout_redirect_uris || [],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // Like Cognito: the ID token carries the user's claims, groups included.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'token_use', 'cognito:groups', 'cognito:username'],
      email: ['email', 'email_verified'],
    },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = accountsBySub.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            token_use: 'id',
            email: account.email,
            email_verified: account.email_verified !== false,
            'cognito:username': account.email,
            ...(account.groups && account.groups.length ? { 'cognito:groups': account.groups } : {}),
          };
        },
      };
    },
    // The platform is a first-party client: no consent screen, as with Cognito's hosted UI.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email');
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const providerCallback = provider.callback();
  server.on('request', async (req, res) => {
    const match = req.url.match(/^\/interaction\/([\w-]+)(\/login)?$/);
    if (!match) {
      providerCallback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name !== 'login') {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(`unexpected prompt ${details.prompt.name}`);
        return;
      }
      if (req.method === 'GET' && !match[2]) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(loginPage(details.uid));
        return;
      }
      if (req.method === 'POST' && match[2]) {
        const form = await readForm(req);
        const email = (form.get('email') || '').trim().toLowerCase();
        const account = accountsByEmail.get(email);
        if (!account || account.password !== form.get('password')) {
          res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
          res.end(loginPage(details.uid, 'Incorrect email or password.', email));
          return;
        }
        await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
        return;
      }
      res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed');
    } catch (err) {
      console.error('interaction error', err);
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}`);
    }
  });

  process.stdout.write(`READY ${issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
