// resource_server against panva's oidc-provider (a certified OpenID provider) with tokens
// fetched by oauth4webapi (a certified client): discovery, RFC 9068 JWT access tokens signed
// with Ed25519 (`alg: Ed25519`, RFC 9864), ES256 and RS256 keys, JWT_TYP=at+jwt, the audience,
// and DPoP-bound tokens with an Ed25519 proof key.
//
//   node oidc_provider.mjs <path to the resource_server binary>
//
// Run it from a directory where `npm install oauth4webapi@3 oidc-provider@9` was done (copied
// there, as `.ci/run` does: Node resolves an ES module's imports next to the script).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import assert from 'node:assert/strict';
import Provider from 'oidc-provider';
import * as oauth from 'oauth4webapi';

const binary = process.argv[2];
const insecure = { [oauth.allowInsecureRequests]: true };

function privateJwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg}-key` };
}

/** The provider on a free port, signing the API's access tokens with `alg`. */
async function provider(alg) {
  const keys = [
    privateJwk('ed25519', {}, 'Ed25519'),
    privateJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
    privateJwk('rsa', { modulusLength: 2048 }, 'RS256'),
  ];
  const http = createServer();
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${http.address().port}`;
  const oidc = new Provider(issuer, {
    jwks: { keys },
    clients: [{
      client_id: 'svc',
      client_secret: 'svc-secret-that-is-long-enough',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    scopes: ['api.read'],
    features: {
      clientCredentials: { enabled: true },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:orders',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api.read',
          audience: 'urn:orders',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        }),
      },
    },
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'Ed25519', 'EdDSA'] },
  });
  http.on('request', oidc.callback());
  return { issuer, close: () => http.close() };
}

function start(env) {
  const child = spawn(binary, [], {
    env: { PATH: process.env.PATH, BIND_ADDR: '127.0.0.1:0', RUST_LOG: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stderr });
    lines.on('line', (raw) => {
      const m = raw.replace(/\x1b\[[0-9;]*m/g, '').match(/listening.*addr=(\S+)/);
      if (m) resolve({ base: `http://${m[1]}`, child });
    });
    child.on('exit', (code) => reject(new Error(`resource_server exited (${code}) before listening`)));
  });
}

async function call(base, token, DPoP) {
  try {
    const res = await oauth.protectedResourceRequest(token, 'GET', new URL(`${base}/protected`), undefined, undefined, { ...insecure, DPoP });
    return { status: res.status, body: await res.json() };
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) return { status: err.status };
    throw err;
  }
}

async function run(alg) {
  const op = await provider(alg);
  const { base, child } = await start({
    OIDC_ISSUERS: op.issuer,
    JWT_AUDIENCE: 'urn:orders',
    JWT_TYP: 'at+jwt',
  });
  try {
    const issuer = new URL(op.issuer);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
    const client = { client_id: 'svc' };
    const auth = oauth.ClientSecretBasic('svc-secret-that-is-long-enough');
    const grant = async (DPoP) => oauth.processClientCredentialsResponse(as, client,
      await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'api.read', resource: 'urn:orders' }, { ...insecure, DPoP }));

    const bearer = await grant();
    const [header] = bearer.access_token.split('.').slice(0, 1).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, alg, 'the provider signs with the fully-specified name');
    const res = await call(base, bearer.access_token);
    assert.equal(res.status, 200, `${alg}: a stock RFC 9068 token`);
    assert.equal(res.body.client_id, 'svc');

    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('Ed25519'));
    let bound;
    try {
      bound = await grant(DPoP);
    } catch (err) {
      if (!oauth.isDPoPNonceError(err)) throw err;
      bound = await grant(DPoP);
    }
    assert.equal(bound.token_type, 'dpop');
    assert.equal((await call(base, bound.access_token, DPoP)).status, 200, `${alg}: DPoP with an Ed25519 proof`);
    assert.equal((await call(base, bound.access_token)).status, 401, `${alg}: a bound token as bearer`);
    console.log(`oidc-provider (${alg}) → resource_server: discovery, RFC 9068 token, DPoP (Ed25519 proof): ok`);
  } finally {
    child.kill();
    op.close();
  }
}

try {
  for (const alg of ['Ed25519', 'ES256', 'RS256']) {
    await run(alg);
  }
  process.exit(0);
} catch (err) {
  console.error('oidc-provider interop failed:', err);
  process.exit(1);
}
