// Strict independent OAuth clients for latchkey: oauth4webapi and openid-client (both by panva),
// run by node_test.go. Each command checks what the server answers and exits non-zero with the
// reason on stderr when a check fails. Nothing here prints a token, a code or a key: stdout gets
// one JSON object of facts the Go test may check as well.
//
//   node client.mjs <command>
//
// Commands (configuration in environment variables):
//   cc        oauth4webapi: DPoP-bound client_credentials, cnf.jkt, introspection.
//             ISSUER CLIENT_ID CLIENT_SECRET INTROSPECTOR_ID INTROSPECTOR_SECRET NONCE
//   oc-cc     openid-client: discovery and a DPoP client_credentials grant.
//             ISSUER CLIENT_ID CLIENT_SECRET NONCE
//   par-start oauth4webapi: a pushed authorization request (code + PKCE, resource, DPoP);
//             prints {"authorizationUrl": ...} and keeps the PKCE verifier, state, nonce and
//             DPoP key in STATE_FILE.
//             ISSUER CLIENT_ID REDIRECT_URI RESOURCE STATE_FILE
//             [BIND: "dpop_jkt" sends dpop_jkt, "proof" a DPoP proof with the push (RFC 9449 10):
//             the code is then bound to the key]
//   par-finish oauth4webapi: exchanges the code of CALLBACK_URL with DPoP, validates the ID
//             token, checks cnf.jkt and aud, calls userinfo with DPoP, refreshes with DPoP
//             (another key first, which must be refused).
//             ISSUER CLIENT_ID REDIRECT_URI RESOURCE STATE_FILE CALLBACK_URL NONCE
//   oc-par-start, oc-par-finish  the same code flow with openid-client's high-level API
//             (buildAuthorizationUrlWithPAR with a DPoP proof at the push,
//             authorizationCodeGrant, fetchUserInfo, refreshTokenGrant); same variables.
//
// NONCE says what the server does with DPoP nonces: "off" (none issued), "required"
// (--dpop-require-nonce: the first proof without one must get use_dpop_nonce).
import { readFileSync, writeFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';

class CheckFailed extends Error {}

function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new CheckFailed(`environment variable ${name} is not set`);
  return v;
}

function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

const insecure = { [oauth.allowInsecureRequests]: true }; // the test server is http://127.0.0.1

// recorder wraps fetch to remember the DPoP-Nonce headers of the answers (their values only).
function recorder() {
  const nonces = [];
  const statuses = [];
  return {
    nonces,
    statuses,
    options: {
      ...insecure,
      [oauth.customFetch]: async (url, init) => {
        const res = await fetch(url, init);
        statuses.push(res.status);
        const n = res.headers.get('dpop-nonce');
        if (n) nonces.push(n);
        return res;
      },
    },
  };
}

async function discover(issuer) {
  const url = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, insecure));
  check(Array.isArray(as.dpop_signing_alg_values_supported) && as.dpop_signing_alg_values_supported.includes('ES256'),
    'discovery does not advertise ES256 in dpop_signing_alg_values_supported');
  return as;
}

// withNonce runs a DPoP request. mode "required": the DPoP handle has no nonce yet, so the first
// attempt must fail with use_dpop_nonce (the handle keeps the nonce of that answer) and the retry
// must pass; "known": the handle may hold a nonce already, a use_dpop_nonce is retried once;
// "off": no retry.
async function withNonce(mode, what, attempt) {
  try {
    const out = await attempt();
    check(mode !== 'required', `${what}: the server accepted a DPoP proof without a nonce although nonces are required`);
    return out;
  } catch (err) {
    if (mode !== 'off' && oauth.isDPoPNonceError(err)) return attempt();
    throw err;
  }
}

async function thumbprintOf(keyPair) {
  return calculateJwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey), 'sha256');
}

// verifyAccessToken checks the access token's signature against the JWKS and its RFC 9068 shape.
async function verifyAccessToken(as, token, audience) {
  const jwks = createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: as.issuer, audience, typ: 'at+jwt' });
  check(protectedHeader.typ === 'at+jwt', `access token typ is ${protectedHeader.typ}, want at+jwt`);
  return payload;
}

async function expectRefused(what, wantError, attempt) {
  try {
    await attempt();
  } catch (err) {
    check(err instanceof oauth.ResponseBodyError, `${what}: want a ${wantError} error response, got ${describe(err)}`);
    check(err.error === wantError, `${what}: want error ${wantError}, got ${err.error}`);
    return;
  }
  throw new CheckFailed(`${what}: the server accepted it`);
}

async function clientCredentials() {
  const mode = env('NONCE');
  const as = await discover(env('ISSUER'));
  const c = { client_id: env('CLIENT_ID') };
  const keyPair = await oauth.generateKeyPair('ES256');
  const jkt = await thumbprintOf(keyPair);
  const DPoP = oauth.DPoP(c, keyPair);
  const rec = recorder();
  const tokens = await withNonce(mode, 'client_credentials', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, c, oauth.ClientSecretBasic(env('CLIENT_SECRET')),
      { scope: 'read:projects' }, { ...rec.options, DPoP });
    return oauth.processClientCredentialsResponse(as, c, res);
  });
  check(tokens.token_type === 'dpop', `token_type is ${tokens.token_type}, want DPoP`);
  check(tokens.refresh_token === undefined, 'client_credentials returned a refresh token');
  const claims = await verifyAccessToken(as, tokens.access_token, undefined);
  check(claims.cnf?.jkt === jkt, 'the access token\'s cnf.jkt is not the thumbprint of the DPoP key');
  check(claims.client_id === c.client_id, `client_id claim is ${claims.client_id}`);
  if (mode === 'off') check(rec.nonces.length === 0, 'the server sent DPoP-Nonce although nonces are off');
  else check(rec.nonces.length > 0, 'the server sent no DPoP-Nonce');

  // The resource server's view: introspection reports the binding.
  const rs = { client_id: env('INTROSPECTOR_ID') };
  const ires = await oauth.introspectionRequest(as, rs, oauth.ClientSecretBasic(env('INTROSPECTOR_SECRET')),
    tokens.access_token, insecure);
  const intro = await oauth.processIntrospectionResponse(as, rs, ires);
  check(intro.active === true, 'introspection says the token is not active');
  check(intro.token_type === 'DPoP', `introspection token_type is ${intro.token_type}, want DPoP`);
  check(intro.cnf?.jkt === jkt, 'introspection cnf.jkt is not the thumbprint of the DPoP key');

  // The same token without its key is only a Bearer token, which a bound token is not.
  const wrong = await oauth.generateKeyPair('ES256');
  const wrongDPoP = oauth.DPoP(c, wrong);
  const again = await withNonce(mode, 'client_credentials with a second key', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, c, oauth.ClientSecretBasic(env('CLIENT_SECRET')),
      { scope: 'read:projects' }, { ...insecure, DPoP: wrongDPoP });
    return oauth.processClientCredentialsResponse(as, c, res);
  });
  const claims2 = decodeJwt(again.access_token);
  check(claims2.cnf?.jkt === await thumbprintOf(wrong) && claims2.cnf.jkt !== jkt, 'a second key got a token bound to the first');
  return { token_type: tokens.token_type, jkt_matches: true, introspection_cnf: true, nonces_seen: rec.nonces.length };
}

async function openidClientCredentials() {
  const mode = env('NONCE');
  const config = await client.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined,
    client.ClientSecretPost(env('CLIENT_SECRET')), { execute: [client.allowInsecureRequests] });
  check(config.serverMetadata().issuer === env('ISSUER'), 'discovery issuer mismatch');
  check(config.serverMetadata().supportsPKCE(), 'discovery does not advertise S256 PKCE');
  const keyPair = await client.randomDPoPKeyPair('ES256');
  // openid-client retries use_dpop_nonce by itself.
  const tokens = await client.clientCredentialsGrant(config, { scope: 'read:projects' },
    { DPoP: client.getDPoPHandle(config, keyPair) });
  check(tokens.token_type === 'dpop', `token_type is ${tokens.token_type}, want DPoP`);
  const claims = await verifyAccessToken(config.serverMetadata(), tokens.access_token, undefined);
  check(claims.cnf?.jkt === await thumbprintOf(keyPair), 'the access token\'s cnf.jkt is not the thumbprint of the DPoP key');
  check(typeof tokens.expiresIn() === 'number' && tokens.expiresIn() > 0, 'no expires_in');
  // Without a proof (Required client) the same request is refused.
  const refused = await client.clientCredentialsGrant(config, { scope: 'read:projects' }).then(() => null, (e) => e);
  check(refused !== null, 'a Required client got a token without a DPoP proof');
  check(refused.error === 'invalid_dpop_proof', `without a proof: want invalid_dpop_proof, got ${describe(refused)}`);
  void mode;
  return { token_type: tokens.token_type, jkt_matches: true };
}

async function parStart() {
  const as = await discover(env('ISSUER'));
  check(typeof as.pushed_authorization_request_endpoint === 'string', 'discovery has no pushed_authorization_request_endpoint');
  const c = { client_id: env('CLIENT_ID') };
  const keyPair = await oauth.generateKeyPair('ES256', { extractable: true });
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const params = new URLSearchParams({
    response_type: 'code', redirect_uri: env('REDIRECT_URI'), scope: 'openid email offline_access',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    state, nonce, resource: env('RESOURCE'),
  });
  const bind = process.env.BIND ?? '';
  check(['', 'dpop_jkt', 'proof'].includes(bind), `BIND ${bind}: want dpop_jkt or proof`);
  if (bind === 'dpop_jkt') params.set('dpop_jkt', await thumbprintOf(keyPair));
  const pushOptions = bind === 'proof' ? { ...insecure, DPoP: oauth.DPoP(c, keyPair) } : insecure;
  const res = await oauth.pushedAuthorizationRequest(as, c, oauth.None(), params, pushOptions);
  const pushed = await oauth.processPushedAuthorizationResponse(as, c, res);
  check(pushed.request_uri.startsWith('urn:ietf:params:oauth:request_uri:'), 'request_uri is not a URN');
  check(pushed.expires_in > 0 && pushed.expires_in <= 600, `expires_in ${pushed.expires_in}`);
  writeFileSync(env('STATE_FILE'), JSON.stringify({
    verifier, state, nonce,
    privateJwk: await crypto.subtle.exportKey('jwk', keyPair.privateKey),
    publicJwk: await crypto.subtle.exportKey('jwk', keyPair.publicKey),
  }), { mode: 0o600 });
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', c.client_id);
  url.searchParams.set('request_uri', pushed.request_uri);
  return { authorizationUrl: url.href };
}

async function importKeyPair(saved) {
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  return {
    privateKey: await crypto.subtle.importKey('jwk', saved.privateJwk, alg, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', saved.publicJwk, alg, true, ['verify']),
  };
}

async function parFinish() {
  const mode = env('NONCE');
  const resource = env('RESOURCE');
  const as = await discover(env('ISSUER'));
  const c = { client_id: env('CLIENT_ID') };
  const saved = JSON.parse(readFileSync(env('STATE_FILE'), 'utf8'));
  const keyPair = await importKeyPair(saved);
  const jkt = await thumbprintOf(keyPair);
  const DPoP = oauth.DPoP(c, keyPair);
  const params = oauth.validateAuthResponse(as, c, new URL(env('CALLBACK_URL')), saved.state);

  const tokens = await withNonce(mode, 'authorization_code', async () => {
    const res = await oauth.authorizationCodeGrantRequest(as, c, oauth.None(), params, env('REDIRECT_URI'),
      saved.verifier, { ...insecure, DPoP });
    // Validates the ID token: iss, aud, azp, exp, iat, nonce, and that one is returned.
    return oauth.processAuthorizationCodeResponse(as, c, res, { expectedNonce: saved.nonce, requireIdToken: true });
  });
  check(tokens.token_type === 'dpop', `token_type is ${tokens.token_type}, want DPoP`);
  check(typeof tokens.refresh_token === 'string', 'no refresh token (offline_access was granted)');
  const idClaims = oauth.getValidatedIdTokenClaims(tokens);
  check(idClaims?.sub, 'no validated ID token');
  // oauth4webapi checks the ID token's claims; its signature is checked here against the JWKS.
  const jwks = createRemoteJWKSet(new URL(as.jwks_uri));
  await jwtVerify(tokens.id_token, jwks, { issuer: as.issuer, audience: c.client_id });
  const claims = await verifyAccessToken(as, tokens.access_token, resource);
  check(claims.cnf?.jkt === jkt, 'the access token\'s cnf.jkt is not the thumbprint of the DPoP key');
  check((Array.isArray(claims.aud) ? claims.aud : [claims.aud]).join(' ') === resource,
    `the access token's aud is ${JSON.stringify(claims.aud)}, want exactly the resource`);
  check(claims.sub === idClaims.sub, 'access token and ID token name different subjects');

  // Userinfo with the DPoP scheme (never needs a nonce).
  const ures = await oauth.userInfoRequest(as, c, tokens.access_token, { ...insecure, DPoP });
  const info = await oauth.processUserInfoResponse(as, c, idClaims.sub, ures);
  check(typeof info.email === 'string', 'userinfo has no email');

  // The public client's refresh token is bound to the key: another key is refused and does not
  // use the token up.
  const other = oauth.DPoP(c, await oauth.generateKeyPair('ES256'));
  await expectRefused('refresh with another DPoP key', 'invalid_dpop_proof', () => withNonce(mode, 'refresh with another key', async () => {
    const res = await oauth.refreshTokenGrantRequest(as, c, oauth.None(), tokens.refresh_token, { ...insecure, DPoP: other });
    return oauth.processRefreshTokenResponse(as, c, res);
  }));
  await expectRefused('refresh without a DPoP proof', 'invalid_dpop_proof', async () => {
    const res = await oauth.refreshTokenGrantRequest(as, c, oauth.None(), tokens.refresh_token, insecure);
    return oauth.processRefreshTokenResponse(as, c, res);
  });
  const refreshed = await withNonce(mode === 'required' ? 'known' : mode, 'refresh_token', async () => {
    const res = await oauth.refreshTokenGrantRequest(as, c, oauth.None(), tokens.refresh_token, { ...insecure, DPoP });
    return oauth.processRefreshTokenResponse(as, c, res);
  });
  check(refreshed.token_type === 'dpop', `refreshed token_type is ${refreshed.token_type}, want DPoP`);
  check(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'the refresh token was not rotated');
  const rclaims = await verifyAccessToken(as, refreshed.access_token, resource);
  check(rclaims.cnf?.jkt === jkt, 'the refreshed access token is not bound to the key');
  return { token_type: tokens.token_type, jkt_matches: true, aud: claims.aud, id_token_validated: true, refreshed: true };
}

async function openidClientConfig() {
  return client.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined, client.None(),
    { execute: [client.allowInsecureRequests] });
}

async function openidClientParStart() {
  const config = await openidClientConfig();
  const keyPair = await client.randomDPoPKeyPair('ES256', { extractable: true });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: env('REDIRECT_URI'), scope: 'openid email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    state, nonce, resource: env('RESOURCE'),
  }, { DPoP: client.getDPoPHandle(config, keyPair) });
  check(url.searchParams.has('request_uri') && !url.searchParams.has('code_challenge'), 'the authorization URL does not carry the request_uri only');
  writeFileSync(env('STATE_FILE'), JSON.stringify({
    verifier, state, nonce,
    privateJwk: await crypto.subtle.exportKey('jwk', keyPair.privateKey),
    publicJwk: await crypto.subtle.exportKey('jwk', keyPair.publicKey),
  }), { mode: 0o600 });
  return { authorizationUrl: url.href };
}

async function openidClientParFinish() {
  const resource = env('RESOURCE');
  const config = await openidClientConfig();
  const saved = JSON.parse(readFileSync(env('STATE_FILE'), 'utf8'));
  const keyPair = await importKeyPair(saved);
  const jkt = await thumbprintOf(keyPair);
  const DPoP = client.getDPoPHandle(config, keyPair);
  // The code was bound to the key by the proof at the push; openid-client retries
  // use_dpop_nonce by itself.
  const tokens = await client.authorizationCodeGrant(config, new URL(env('CALLBACK_URL')), {
    pkceCodeVerifier: saved.verifier, expectedState: saved.state, expectedNonce: saved.nonce, idTokenExpected: true,
  }, undefined, { DPoP });
  check(tokens.token_type === 'dpop', `token_type is ${tokens.token_type}, want DPoP`);
  const idClaims = tokens.claims();
  check(idClaims?.sub, 'no validated ID token');
  const as = config.serverMetadata();
  const claims = await verifyAccessToken(as, tokens.access_token, resource);
  check(claims.cnf?.jkt === jkt, 'the access token\'s cnf.jkt is not the thumbprint of the DPoP key');
  const info = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub, { DPoP });
  check(typeof info.email === 'string', 'userinfo has no email');
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  check(refreshed.token_type === 'dpop', `refreshed token_type is ${refreshed.token_type}, want DPoP`);
  const rclaims = await verifyAccessToken(as, refreshed.access_token, resource);
  check(rclaims.cnf?.jkt === jkt, 'the refreshed access token is not bound to the key');
  return { token_type: tokens.token_type, jkt_matches: true, aud: claims.aud, id_token_validated: true, refreshed: true };
}

function describe(err) {
  // Never the response body or cause: they may hold tokens.
  if (err instanceof oauth.ResponseBodyError) return `${err.status} ${err.error}: ${err.error_description ?? ''}`;
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    return `${err.status} ` + err.cause.map((ch) => `${ch.scheme} ${ch.parameters.error ?? ''}: ${ch.parameters.error_description ?? ''}`).join('; ');
  }
  if (err && typeof err === 'object' && 'error' in err && typeof err.error === 'string') return `${err.error}: ${err.error_description ?? ''}`;
  return `${err?.name ?? 'Error'}${err?.code ? ` (${err.code})` : ''}: ${err?.message ?? String(err)}`;
}

const commands = {
  'cc': clientCredentials, 'oc-cc': openidClientCredentials, 'par-start': parStart, 'par-finish': parFinish,
  'oc-par-start': openidClientParStart, 'oc-par-finish': openidClientParFinish,
};
const name = process.argv[2];
try {
  if (!commands[name]) throw new CheckFailed(`unknown command ${name}; want one of ${Object.keys(commands).join(', ')}`);
  process.stdout.write(JSON.stringify(await commands[name]()) + '\n');
} catch (err) {
  let reason = err instanceof CheckFailed ? err.message : describe(err);
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    // The challenge (Basic realm=...) may not say more; the JSON body's error does.
    const body = await err.response.json().catch(() => ({}));
    reason += ` (body: ${body.error ?? '?'}: ${body.error_description ?? ''})`;
  }
  process.stderr.write(`${name}: ${reason}\n`);
  process.exit(1);
}
