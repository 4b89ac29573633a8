// End-to-end tests of /api/v1/auth and access-token checking through a real listening hub:
// sessions (bearer and cookie), refresh rotation and reuse detection, forged and malformed access
// tokens, validation, rate limits, CSRF, the JWKS, and the argon2id password hashes.

import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import t, { type Test } from 'tap';
import { ISSUER } from '../src/auth/access-tokens.js';
import { loadSigningKey } from '../src/auth/keys.js';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { startTestHub, tempDir } from './helpers/hub.js';

const AUTH = '/api/v1/auth';
const PW = 'correct horse battery';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JWT_RE = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/** Asserts an error response: status, stable code, and (optionally) the extra fields. */
function isError(t: Test, r: ApiResponse, status: number, code: string, extra: Record<string, unknown> = {}, what = code): void {
  t.equal(r.status, status, `${what}: status ${status}`);
  t.match(r.body, { error: { code, message: String, ...extra } }, `${what}: body has code ${code}`);
}

/** Asserts a 429 with a numeric Retry-After header, at most `maxS`, echoed as retryAfterS. */
function isRateLimited(t: Test, r: ApiResponse, maxS: number): void {
  isError(t, r, 429, 'RATE_LIMITED');
  const header = r.headers.get('retry-after') ?? '';
  t.match(header, /^\d+$/, 'Retry-After is a number of seconds');
  const s = Number(header);
  t.ok(s >= 1 && s <= maxS, `Retry-After ${s} is within 1..${maxS}`);
  t.equal(r.body.error.retryAfterS, s, 'the body repeats it as retryAfterS');
}

interface SetCookie {
  value: string;
  attrs: Record<string, string | true>;
}

/** Parses the response's Set-Cookie headers by cookie name (attribute names lowercased). */
function setCookies(r: ApiResponse): Record<string, SetCookie> {
  const out: Record<string, SetCookie> = {};
  for (const line of r.headers.getSetCookie()) {
    const [pair = '', ...rest] = line.split(';').map((s) => s.trim());
    const i = pair.indexOf('=');
    const attrs: Record<string, string | true> = {};
    for (const a of rest) {
      const j = a.indexOf('=');
      if (j < 0) attrs[a.toLowerCase()] = true;
      else attrs[a.slice(0, j).toLowerCase()] = a.slice(j + 1);
    }
    out[pair.slice(0, i)] = { value: pair.slice(i + 1), attrs };
  }
  return out;
}

const cookieHeader = (c: Record<string, string>) => ({
  cookie: Object.entries(c)
    .map(([k, v]) => `${k}=${v}`)
    .join('; '),
});

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const segments = (jwt: string) => jwt.split('.') as [string, string, string];

// One hub for everything but the rate-limit and cookie-flag tests. Its limits are raised so the
// many logins and registrations here cannot trip them; the rate-limit tests use hubs of their own.
const dataDir = await tempDir(t);
const hub = await startTestHub(t, { dataDir, env: { SB_LOGIN_PER_IP_PER_MINUTE: '10000', SB_REGISTER_PER_IP_PER_HOUR: '10000' } });
const api = new Api(hub.url);

const register = (username: string, password = PW, extra: Record<string, unknown> = {}) => api.post(`${AUTH}/register`, { username, password, ...extra });
const login = (username: string, password = PW, a = api) => a.post(`${AUTH}/login`, { username, password });
const refresh = (refreshToken: string) => api.post(`${AUTH}/refresh`, { refreshToken });
const me = (token: string) => api.get(`${AUTH}/me`, { token });

t.test('register → login → me → refresh → logout', async (t) => {
  const username = uniqueName('Flow');
  const reg = await register(username, PW, { displayName: 'Flow Tester' });
  t.equal(reg.status, 201, 'register: 201');
  t.same(
    Object.keys(reg.body.user).sort(),
    ['avatarUrl', 'bio', 'createdAt', 'displayName', 'id', 'timeZone', 'username'],
    'register returns the public user only',
  );
  t.match(reg.body.user, { id: UUID_RE, username, displayName: 'Flow Tester' });
  t.ok(Math.abs(Date.parse(reg.body.user.createdAt) - Date.now()) < 60_000, 'createdAt is now');

  const l = await login(username);
  t.equal(l.status, 200, 'login: 200');
  t.same(Object.keys(l.body).sort(), ['accessExpiresAt', 'accessToken', 'refreshExpiresAt', 'refreshToken', 'tokenType', 'user']);
  t.equal(l.body.tokenType, 'Bearer');
  t.match(l.body.accessToken, JWT_RE, 'the access token is a compact JWT');
  t.match(l.body.refreshToken, /^[\w-]{40,}$/, 'the refresh token is an opaque random string');
  t.same(
    l.body.user,
    { ...reg.body.user, isAdmin: false, email: null, pendingEmail: null, dmPolicy: 'anyone' },
    'login returns the user with what only they see',
  );
  const accessIn = Date.parse(l.body.accessExpiresAt) - Date.now();
  const refreshIn = Date.parse(l.body.refreshExpiresAt) - Date.now();
  t.ok(accessIn > 890_000 && accessIn <= 900_000, `access token lives the default 900 s (${accessIn} ms left)`);
  t.ok(refreshIn > 2_591_990_000 && refreshIn <= 2_592_000_000, 'refresh token lives the default 30 days');
  t.same(l.headers.getSetCookie(), [], 'a bearer login sets no cookies');

  const m = await me(l.body.accessToken);
  t.equal(m.status, 200, 'me: 200');
  t.same(m.body, { user: l.body.user }, 'me returns the signed-in user');

  const r = await refresh(l.body.refreshToken);
  t.equal(r.status, 200, 'refresh: 200');
  t.same(Object.keys(r.body).sort(), Object.keys(l.body).sort(), 'refresh returns a whole new session');
  t.not(r.body.refreshToken, l.body.refreshToken, 'the refresh token is rotated');
  t.not(r.body.accessToken, l.body.accessToken, 'and a new access token issued');
  t.same(r.body.user, l.body.user);
  t.equal((await me(r.body.accessToken)).status, 200, 'the new access token works');

  const out = await api.post(`${AUTH}/logout`, { refreshToken: r.body.refreshToken });
  t.equal(out.status, 204, 'logout: 204');
  t.equal(out.text, '', 'with no body');
  isError(t, await refresh(r.body.refreshToken), 401, 'SESSION_ENDED', {}, 'the logged-out refresh token: the session ended, no reuse');
  isError(t, await me(r.body.accessToken), 401, 'SESSION_ENDED', {}, "the logged-out session's access token is refused at once");
  isError(t, await refresh(l.body.refreshToken), 401, 'REFRESH_REUSED', {}, 'the rotated-away refresh token');
});

t.test('refresh-token reuse revokes the whole session, and only it', async (t) => {
  const u = await api.signUp(uniqueName('reuse'));
  const otherSession = await login(u.username);
  t.equal(otherSession.status, 200);

  const b = await refresh(u.refreshToken);
  t.equal(b.status, 200, 'A → B');
  isError(t, await refresh(u.refreshToken), 401, 'REFRESH_REUSED', {}, 'presenting A again');
  isError(t, await refresh(b.body.refreshToken), 401, 'REFRESH_REUSED', {}, 'B, revoked with its family');
  t.equal((await refresh(otherSession.body.refreshToken)).status, 200, 'another login of the same user is a separate family and still works');
  isError(t, await refresh('never-issued-token'), 401, 'TOKEN_INVALID', {}, 'an unknown refresh token');
});

t.test('access tokens that are forged, tampered with, expired or malformed are rejected', async (t) => {
  const key = await loadSigningKey({ keyFile: undefined, dataDir });
  t.equal(key.generated, false, 'loaded the key the hub generated, not a new one');
  const u = await api.signUp(uniqueName('tok'));

  const forge = (o: { exp?: number; iss?: string; signWith?: KeyObject; admin?: boolean } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ username: u.username, admin: o.admin ?? false })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'JWT' })
      .setIssuer(o.iss ?? ISSUER)
      .setSubject(u.id)
      .setJti(randomUUID())
      .setIssuedAt(now - 120)
      .setExpirationTime(o.exp ?? now + 300)
      .sign(o.signWith ?? key.privateKey);
  };
  const meCode = async (token: string) => {
    const r = await me(token);
    return r.status === 401 ? r.body.error.code : `status ${r.status}`;
  };

  // Control: a token made this way with the hub's own key is accepted, so each rejection below is
  // due to the one thing changed.
  const good = await me(await forge());
  t.equal(good.status, 200, 'a well-formed token signed with the hub key is accepted');
  t.equal(good.body.user.id, u.id);

  t.equal(await meCode(await forge({ exp: Math.floor(Date.now() / 1000) - 60 })), 'TOKEN_EXPIRED', 'exp in the past');
  t.equal(await meCode(await forge({ iss: 'someone-else' })), 'TOKEN_INVALID', 'another issuer');

  const [h, p, s] = segments(u.token);
  const i = Math.floor(p.length / 2);
  const flipped = `${p.slice(0, i)}${p[i] === 'A' ? 'B' : 'A'}${p.slice(i + 1)}`;
  t.equal(await meCode(`${h}.${flipped}.${s}`), 'TOKEN_INVALID', 'one payload character flipped');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  t.equal(await meCode(`${h}.${b64({ ...claims, admin: true })}.${s}`), 'TOKEN_INVALID', 'payload rewritten to admin: true');

  const foreign = generateKeyPairSync('ed25519').privateKey;
  t.equal(await meCode(await forge({ signWith: foreign })), 'TOKEN_INVALID', 'another Ed25519 key claiming the same kid');

  t.equal(await meCode(`${b64({ alg: 'none', typ: 'JWT', kid: key.kid })}.${p}.`), 'TOKEN_INVALID', 'alg none, unsigned');

  const jwk = key.jwks.keys[0];
  const publicSecrets: [string, Uint8Array][] = [
    ['raw public key bytes', Buffer.from(jwk?.x ?? '', 'base64url')],
    ['public key PEM', Buffer.from(key.publicKey.export({ type: 'spki', format: 'pem' }) as string)],
  ];
  for (const [what, secret] of publicSecrets) {
    t.ok(secret.length >= 32, `${what}: a real secret`);
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'JWT' }).sign(secret);
    t.equal(await meCode(hs), 'TOKEN_INVALID', `HS256 with the ${what} as the secret`);
  }

  for (const authorization of ['Basic x', 'Bearer', `Bearer ${u.token} extra`, `Token ${u.token}`]) {
    isError(t, await api.get(`${AUTH}/me`, { headers: { authorization } }), 401, 'UNAUTHENTICATED', {}, `Authorization: ${authorization.slice(0, 20)}`);
  }
  isError(t, await api.get(`${AUTH}/me`), 401, 'UNAUTHENTICATED', {}, 'no credentials');
  t.equal((await me(u.token)).status, 200, 'the genuine token still works');
  const lower = await api.get(`${AUTH}/me`, { headers: { authorization: `bearer ${u.token}` } });
  t.equal(lower.status, 200, 'the auth scheme is case-insensitive (RFC 7235)');
});

t.test('registration validation', async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['too short', { username: 'ab' }, 'username'],
    ['too long', { username: 'a'.repeat(33) }, 'username'],
    ['a space', { username: 'bad name' }, 'username'],
    ['a symbol', { username: 'bad$name' }, 'username'],
    ['leading dot', { username: '.dotted' }, 'username'],
    ['leading underscore', { username: '_under' }, 'username'],
    ['leading dash', { username: '-dash' }, 'username'],
    ['9-character password', { password: '123456789' }, 'password'],
    ['9 characters in 18 UTF-16 units', { password: '🔑'.repeat(9) }, 'password'],
    ['missing password', { password: undefined }, 'password'],
    ['unknown field', { admin: true }, 'admin'],
  ];
  const fresh = uniqueName('valid');
  for (const [what, patch, field] of cases) {
    const r = await api.post(`${AUTH}/register`, { username: fresh, password: PW, ...patch });
    isError(t, r, 400, 'VALIDATION', { field }, what);
  }
  // None of those created the account, and the boundaries themselves are accepted.
  t.equal((await register(fresh, 'ten chars!')).status, 201, 'a 10-character password is enough');
  t.equal((await register('a1b')).status, 201, 'a 3-character username is enough');
  t.equal((await register('z9.b_c-d')).status, 201, '`.`, `_` and `-` are allowed after the first character');
  t.equal((await register('b'.repeat(32))).status, 201, 'a 32-character username is allowed');
});

t.test('usernames are unique regardless of case; login ignores case; failures look alike', async (t) => {
  const username = uniqueName('MiXeD');
  t.equal((await register(username)).status, 201);
  for (const variant of [username.toLowerCase(), username.toUpperCase()]) {
    isError(t, await register(variant), 409, 'USERNAME_TAKEN', { field: 'username' }, `registering ${variant}`);
  }

  const l = await login(username.toUpperCase());
  t.equal(l.status, 200, 'login with the username in another case');
  t.equal(l.body.user.username, username, 'the account keeps the casing it was registered with');

  const wrongPassword = await login(username, 'not the right password');
  const unknownUser = await login(uniqueName('nobody'), PW);
  isError(t, wrongPassword, 401, 'UNAUTHENTICATED', {}, 'wrong password');
  isError(t, unknownUser, 401, 'UNAUTHENTICATED', {}, 'unknown user');
  t.same(wrongPassword.body, unknownUser.body, 'the two failures have identical bodies');
});

t.test('passwords are stored as argon2id hashes with the configured cost', async (t) => {
  const u = await api.signUp(uniqueName('argon'));
  const [row] = await hub.store.db.sql<{ password_hash: string }[]>`SELECT password_hash FROM users WHERE id = ${u.id}`;
  t.ok(row, 'the user row exists');
  t.match(row?.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[\w+/]+\$[\w+/]+$/, 'an argon2id PHC string with the default parameters');
  t.notMatch(row?.password_hash, u.password, 'the password itself is not stored');
  t.equal((await login(u.username)).status, 200, 'and the hash verifies at login');
});

t.test('GET /.well-known/jwks.json publishes the key that verifies issued tokens', async (t) => {
  const r = await api.get('/.well-known/jwks.json');
  t.equal(r.status, 200);
  t.equal(r.body.keys.length, 1, 'one key');
  const [jwk] = r.body.keys;
  t.match(jwk, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', x: /^[\w-]{43}$/, kid: String });
  t.notOk('d' in jwk, 'no private part');
  t.equal(jwk.kid, await calculateJwkThumbprint(jwk), 'kid is the RFC 7638 thumbprint');

  const u = await api.signUp(uniqueName('jwks'));
  t.equal(decodeProtectedHeader(u.token).kid, jwk.kid, 'issued tokens name that kid');
  const { payload, protectedHeader } = await jwtVerify(u.token, createLocalJWKSet(r.body), { issuer: ISSUER });
  t.equal(protectedHeader.alg, 'EdDSA');
  t.match(payload, { sub: u.id, username: u.username, admin: false, jti: UUID_RE });
});

t.test('cookie sessions: cookies, CSRF, refresh and logout', async (t) => {
  const u = await api.signUp(uniqueName('cookie'));
  const l = await api.post(`${AUTH}/login`, { username: u.username, password: PW, cookie: true });
  t.equal(l.status, 200, 'cookie login: 200');
  t.same(Object.keys(l.body).sort(), ['accessExpiresAt', 'csrfToken', 'refreshExpiresAt', 'user'], 'no tokens in the body');
  t.match(l.body.csrfToken, /^[\w-]{32}$/);
  const c = setCookies(l);
  t.same(Object.keys(c).sort(), ['sb_access', 'sb_csrf', 'sb_refresh']);
  t.match(c.sb_access, { value: JWT_RE, attrs: { path: '/', 'max-age': '900', samesite: 'Lax', httponly: true, secure: true } });
  t.match(c.sb_refresh, { value: /^[\w-]{40,}$/, attrs: { path: '/api/v1/auth', 'max-age': '2592000', samesite: 'Lax', httponly: true, secure: true } });
  t.match(c.sb_csrf, { value: l.body.csrfToken, attrs: { path: '/', samesite: 'Lax', secure: true } });
  t.notOk(c.sb_csrf?.attrs.httponly, 'sb_csrf is readable by the page (not HttpOnly)');
  const access = c.sb_access?.value as string;
  const csrf = l.body.csrfToken as string;

  const m = await api.get(`${AUTH}/me`, { headers: cookieHeader({ sb_access: access }) });
  t.equal(m.status, 200, 'me with only the access cookie');
  t.equal(m.body.user.id, u.id);

  const other = await api.post(`${AUTH}/login`, { username: u.username, password: PW, cookie: true });
  const createRoom = (headers: Record<string, string>) => api.post('/api/v1/rooms', { kind: 'group', name: 'cookie room' }, { headers });
  const withCookies = cookieHeader({ sb_access: access, sb_csrf: csrf });
  isError(t, await createRoom(withCookies), 403, 'CSRF', {}, 'POST without X-CSRF-Token');
  isError(t, await createRoom({ ...withCookies, 'x-csrf-token': 'wrong' }), 403, 'CSRF', {}, 'POST with a wrong token');
  isError(t, await createRoom({ ...withCookies, 'x-csrf-token': other.body.csrfToken }), 403, 'CSRF', {}, "POST with another session's token");
  const created = await createRoom({ ...withCookies, 'x-csrf-token': csrf });
  t.equal(created.status, 201, 'POST with the right X-CSRF-Token');
  t.match(created.body, { room: { id: UUID_RE, name: 'cookie room' } });
  t.equal((await api.post('/api/v1/rooms', { kind: 'group', name: 'bearer room' }, { token: u.token })).status, 201, 'bearer requests need no CSRF token');

  const refreshCookies = { sb_refresh: c.sb_refresh?.value as string, sb_csrf: csrf };
  const cookieRefresh = (cookies: Record<string, string>, extra: Record<string, string> = {}) =>
    api.post(`${AUTH}/refresh`, undefined, { headers: { ...cookieHeader(cookies), ...extra } });
  isError(t, await cookieRefresh(refreshCookies), 403, 'CSRF', {}, 'cookie refresh without X-CSRF-Token');
  isError(t, await cookieRefresh(refreshCookies, { 'x-csrf-token': `${csrf.slice(1)}x` }), 403, 'CSRF', {}, 'cookie refresh with a wrong token');
  const noCsrfCookie = await cookieRefresh({ sb_refresh: refreshCookies.sb_refresh }, { 'x-csrf-token': csrf });
  isError(t, noCsrfCookie, 403, 'CSRF', {}, 'cookie refresh without the sb_csrf cookie');

  const r = await cookieRefresh(refreshCookies, { 'x-csrf-token': csrf });
  t.equal(r.status, 200, 'cookie refresh with the matching header (the failed attempts did not consume the token)');
  t.same(Object.keys(r.body).sort(), ['accessExpiresAt', 'csrfToken', 'refreshExpiresAt', 'user'], 'still no tokens in the body');
  const rc = setCookies(r);
  t.same(Object.keys(rc).sort(), ['sb_access', 'sb_csrf', 'sb_refresh'], 'new cookies are set');
  t.not(rc.sb_access?.value, access, 'a new access cookie');
  t.not(rc.sb_refresh?.value, refreshCookies.sb_refresh, 'a rotated refresh cookie');
  t.match(rc.sb_refresh?.attrs, { path: '/api/v1/auth', httponly: true });
  const access2 = rc.sb_access?.value as string;
  const csrf2 = rc.sb_csrf?.value as string;
  t.equal(r.body.csrfToken, csrf2);
  const again = await createRoom({ ...cookieHeader({ sb_access: access2, sb_csrf: csrf2 }), 'x-csrf-token': csrf2 });
  t.equal(again.status, 201, 'the refreshed access cookie works with the CSRF token');

  const logoutCookies = { sb_access: access2, sb_refresh: rc.sb_refresh?.value as string, sb_csrf: csrf2 };
  const logout = (extra: Record<string, string> = {}) => api.post(`${AUTH}/logout`, undefined, { headers: { ...cookieHeader(logoutCookies), ...extra } });
  isError(t, await logout(), 403, 'CSRF', {}, 'cookie logout without X-CSRF-Token');
  const out = await logout({ 'x-csrf-token': csrf2 });
  t.equal(out.status, 204, 'cookie logout: 204');
  const cleared = setCookies(out);
  t.same(Object.keys(cleared).sort(), ['sb_access', 'sb_csrf', 'sb_refresh']);
  for (const [name, ck] of Object.entries(cleared)) t.match(ck, { value: '', attrs: { 'max-age': '0' } }, `${name} cleared`);
  t.equal(cleared.sb_refresh?.attrs.path, '/api/v1/auth', 'sb_refresh is cleared on the path it was set on');
  const afterLogout = await cookieRefresh({ sb_refresh: logoutCookies.sb_refresh, sb_csrf: csrf2 }, { 'x-csrf-token': csrf2 });
  isError(t, afterLogout, 401, 'SESSION_ENDED', {}, 'refresh after logout: the session ended, no reuse');
});

t.test('SB_COOKIE_SECURE=false leaves Secure off the cookies', async (t) => {
  const plain = new Api((await startTestHub(t, { env: { SB_COOKIE_SECURE: 'false' } })).url);
  const u = await plain.signUp(uniqueName('plain'));
  const l = await plain.post(`${AUTH}/login`, { username: u.username, password: PW, cookie: true });
  t.equal(l.status, 200);
  const c = setCookies(l);
  t.same(Object.keys(c).sort(), ['sb_access', 'sb_csrf', 'sb_refresh']);
  for (const [name, ck] of Object.entries(c)) {
    t.notOk(ck.attrs.secure, `${name} is not Secure`);
    t.equal(ck.attrs.samesite, 'Lax', `${name} is still SameSite=Lax`);
  }
});

t.test('rate limits', async (t) => {
  t.test('failed logins per username and IP (SB_LOGIN_FAILS_PER_USER_IP=3)', async (t) => {
    const a = new Api((await startTestHub(t, { env: { SB_LOGIN_FAILS_PER_USER_IP: '3' } })).url);
    const victim = await a.signUp(uniqueName('Victim'));
    const bystander = await a.signUp(uniqueName('bystander'));
    const fail = (name: string) => login(name, 'wrong password!', a);

    // A success resets the count: two failures, a success, then three more failures all still 401.
    for (let i = 0; i < 2; i++) t.equal((await fail(victim.username)).status, 401);
    t.equal((await login(victim.username, PW, a)).status, 200, 'a success');
    // The count is per username regardless of case.
    for (const name of [victim.username, victim.username.toLowerCase(), victim.username.toUpperCase()]) {
      isError(t, await fail(name), 401, 'UNAUTHENTICATED', {}, `failure as ${name}`);
    }
    isRateLimited(t, await login(victim.username, PW, a), 900);
    isRateLimited(t, await fail(victim.username), 900);
    t.equal((await login(bystander.username, PW, a)).status, 200, 'other usernames are unaffected');
  });

  t.test('logins per client IP (SB_LOGIN_PER_IP_PER_MINUTE=2)', async (t) => {
    const a = new Api((await startTestHub(t, { env: { SB_LOGIN_PER_IP_PER_MINUTE: '2' } })).url);
    const one = await a.post(`${AUTH}/register`, { username: uniqueName('ipone'), password: PW });
    const two = await a.post(`${AUTH}/register`, { username: uniqueName('iptwo'), password: PW });
    t.equal(one.status, 201);
    t.equal(two.status, 201);
    t.equal((await login(one.body.user.username, PW, a)).status, 200, 'first login');
    t.equal((await login(one.body.user.username, 'wrong password!', a)).status, 401, 'second (failed) login');
    isRateLimited(t, await login(one.body.user.username, PW, a), 60);
    isRateLimited(t, await login(two.body.user.username, PW, a), 60);
  });

  t.test('registrations per client IP (SB_REGISTER_PER_IP_PER_HOUR=2)', async (t) => {
    const h = await startTestHub(t, { env: { SB_REGISTER_PER_IP_PER_HOUR: '2' } });
    const a = new Api(h.url);
    for (let i = 0; i < 2; i++) t.equal((await a.post(`${AUTH}/register`, { username: uniqueName('reg'), password: PW })).status, 201);
    const name = uniqueName('reg');
    isRateLimited(t, await a.post(`${AUTH}/register`, { username: name, password: PW }), 3600);
    const [row] = await h.store.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users WHERE lower(username) = lower(${name})`;
    t.equal(row?.n, 0, 'the refused registration created no account');
  });
});
