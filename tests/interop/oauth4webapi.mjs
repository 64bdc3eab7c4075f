// Interoperability with oauth4webapi (panva's certified OAuth 2 / OpenID client), which nobody
// here wrote: discovery, client_credentials with client_secret_basic and client_secret_post,
// the refresh grant of a /login session, DPoP-bound tokens (ES256 and Ed25519 keys, with and
// without server nonces), revocation and introspection, against a demo server binary.
//
//   node tests/interop/oauth4webapi.mjs <path to axum_server or hyper_server>
//
// Run it from a directory where `npm install oauth4webapi@3` was done (copied there: Node
// resolves an ES module's imports next to the script). `.ci/run` does both.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node oauth4webapi.mjs <demo server binary>');
  process.exit(2);
}

/** Start the demo with `env`; resolve with its base URL and the child. */
function start(env) {
  const child = spawn(binary, [], {
    env: { PATH: process.env.PATH, BIND_ADDR: '127.0.0.1:0', RUST_LOG: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stderr });
    lines.on('line', (raw) => {
      const line = raw.replace(/\x1b\[[0-9;]*m/g, '');
      const m = line.match(/listening.*addr=(\S+)/);
      if (m) resolve({ base: `http://${m[1]}`, child });
    });
    child.on('exit', (code) => reject(new Error(`${binary} exited (${code}) before listening`)));
  });
}

const insecure = { [oauth.allowInsecureRequests]: true };

/** Run `attempt`; once more if the server asked for a DPoP nonce (the handle has it now). */
async function withNonce(attempt) {
  try {
    return await attempt();
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return await attempt();
    throw err;
  }
}

/** GET /protected: its status and JSON body (a 401 with a challenge is thrown by the client:
 * caught here, after one retry if the challenge asked for a DPoP nonce). */
async function protectedCall(base, token, DPoP) {
  const call = async () => {
    const res = await oauth.protectedResourceRequest(token, 'GET', new URL(`${base}/protected`), undefined, undefined, { ...insecure, DPoP });
    return { status: res.status, json: async () => res.json() };
  };
  try {
    return await withNonce(call);
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) return { status: err.status };
    throw err;
  }
}

async function run(label, env) {
  const { base, child } = await start(env);
  try {
    const issuer = new URL(base);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }));
    assert.equal(as.issuer, base);
    assert.equal(as.token_endpoint, `${base}/token`);
    assert.ok(as.dpop_signing_alg_values_supported.includes('Ed25519'));

    const client = { client_id: 'client1' };
    const other = { client_id: 'client2' };
    const basic = oauth.ClientSecretBasic('secret1');
    const post = oauth.ClientSecretPost('secret1');
    const otherAuth = oauth.ClientSecretBasic('secret2');

    // client_credentials, both ways of authenticating; the token opens /protected.
    for (const [how, auth] of [['client_secret_basic', basic], ['client_secret_post', post]]) {
      const res = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'api.read' }, insecure);
      const tokens = await oauth.processClientCredentialsResponse(as, client, res);
      assert.equal(tokens.token_type, 'bearer', how);
      assert.equal(tokens.scope, 'api.read', how);
      const me = await protectedCall(base, tokens.access_token);
      assert.equal(me.status, 200, `${how}: /protected`);
      assert.equal((await me.json()).client_id, 'client1');
    }
    // A wrong secret: 401 with the Basic challenge (client_secret_basic), or the standard
    // `invalid_client` body (client_secret_post).
    await assert.rejects(
      async () => oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic('nope'), {}, insecure)),
      (err) => err instanceof oauth.WWWAuthenticateChallengeError && err.status === 401
        && err.cause.some((c) => c.scheme === 'basic'),
    );
    await assert.rejects(
      async () => oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost('nope'), {}, insecure)),
      (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_client' && err.status === 401,
    );

    // DPoP-bound client tokens, with an ES256 key and an Ed25519 key (whose proofs say
    // `alg: Ed25519`, RFC 9864).
    for (const alg of ['ES256', 'Ed25519']) {
      const DPoP = oauth.DPoP(client, await oauth.generateKeyPair(alg));
      const tokens = await withNonce(async () => oauth.processClientCredentialsResponse(
        as, client, await oauth.clientCredentialsGrantRequest(as, client, basic, {}, { ...insecure, DPoP })));
      assert.equal(tokens.token_type, 'dpop', alg);
      const me = await protectedCall(base, tokens.access_token, DPoP);
      assert.equal(me.status, 200, `${alg}: DPoP /protected`);
      const seen = await oauth.processIntrospectionResponse(as, other, await oauth.introspectionRequest(as, other, otherAuth, tokens.access_token, insecure));
      assert.equal(seen.active, true, alg);
      assert.equal(seen.token_type, 'DPoP', alg);
      assert.ok(seen.cnf && typeof seen.cnf.jkt === 'string', `${alg}: cnf.jkt`);
      // As a plain bearer token it is refused.
      const bearer = await protectedCall(base, tokens.access_token);
      assert.equal(bearer.status, 401, `${alg}: bound token as bearer`);
    }

    // Revocation and introspection of a client's token.
    const cc = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, basic, {}, insecure));
    let seen = await oauth.processIntrospectionResponse(as, other, await oauth.introspectionRequest(as, other, otherAuth, cc.access_token, insecure));
    assert.equal(seen.active, true);
    assert.equal(seen.client_id, 'client1');
    assert.equal(seen.scope, 'api.read api.write');
    await assert.rejects(
      async () => oauth.processRevocationResponse(await oauth.revocationRequest(as, other, otherAuth, cc.access_token, insecure)),
      (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_request',
      'another client may not revoke it',
    );
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, basic, cc.access_token, insecure));
    seen = await oauth.processIntrospectionResponse(as, other, await oauth.introspectionRequest(as, other, otherAuth, cc.access_token, insecure));
    assert.equal(seen.active, false);
    assert.equal((await protectedCall(base, cc.access_token)).status, 401);

    // A /login session renewed with the standard refresh grant (the first-party public
    // client), then revoked.
    const login = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'user1', password: 'password1' }),
    });
    assert.equal(login.status, 200);
    const session = await login.json();
    const firstParty = { client_id: 'first-party' };
    const renewed = await oauth.processRefreshTokenResponse(as, firstParty,
      await oauth.refreshTokenGrantRequest(as, firstParty, oauth.None(), session.refresh_token, insecure));
    assert.ok(renewed.refresh_token && renewed.refresh_token !== session.refresh_token);
    assert.equal((await protectedCall(base, renewed.access_token)).status, 200);
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, firstParty, oauth.None(), renewed.refresh_token, insecure));
    assert.equal((await protectedCall(base, renewed.access_token)).status, 401, 'the session ended');
    await assert.rejects(
      async () => oauth.processRefreshTokenResponse(as, firstParty,
        await oauth.refreshTokenGrantRequest(as, firstParty, oauth.None(), renewed.refresh_token, insecure)),
      (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant',
    );
    console.log(`oauth4webapi ${label}: discovery, client_credentials (basic, post), DPoP (ES256, Ed25519), revocation, introspection, refresh: ok`);
  } finally {
    child.kill();
  }
}

const base = {
  JWT_SECRET: 'oauth4webapi-interop-secret-that-is-long-enough-0123456789',
  LOGIN_IP_LIMIT: '1000/60',
  OAUTH_CLIENTS: 'client1:secret1:api.read api.write;client2:secret2:api.read',
};
try {
  await run('(no DPoP nonces)', base);
  await run('(DPoP nonces)', { ...base, DPOP_NONCE_SECRET: 'a-nonce-secret-of-at-least-32-bytes-long!!' });
} catch (err) {
  console.error(`oauth4webapi interop failed against ${binary}:`, err);
  process.exit(1);
}
