// Enrollment where the robot's key never leaves it, over REST against a real hub and PostgreSQL: an
// owner registers a robot (or rotates its certificate) with the robot's certificate signing request
// and the robot connects with its own key; requests the hub must refuse (bad signature, weak or
// foreign keys, garbage, oversize) and callers who may not; fleet bootstrap tokens (one use, a count
// raced by concurrent robots, expiry, revocation, unknown secrets, another owner's token and
// robots untouched), and the per-IP limit on self-enrolment.

import { createHash, createPublicKey, randomUUID, X509Certificate } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { type ApiResponse, uniqueName } from './helpers/api.js';
import { csrPem, deviceCsr, tamperedSignature } from './helpers/csr.js';
import { CHANNELS, startRobotHub, type User } from './helpers/robots.js';

const h = await startRobotHub(t);
const { api } = h;
const as = (u: User) => ({ token: u.token });
const bearer = (secret: string) => ({ headers: { authorization: `Bearer ${secret}` } });
const fpBuffer = (fp: string) => Buffer.from(fp.replaceAll(':', ''), 'hex');

function isError(t: Test, r: ApiResponse, status: number, code: string): void {
  t.equal(r.status, status, `status ${status}: ${r.text.slice(0, 200)}`);
  t.equal(r.body?.error?.code, code, `code ${code}`);
}

/** The certificate is the robot's: CN = its id, issued by the CA, for the device's key, clientAuth only. */
function isRobotCert(t: Test, certPem: string, robotId: string, keyPem: string): void {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(h.caPem);
  t.equal(cert.subject, `CN=${robotId}`, 'CN = robot id, not the request’s subject');
  t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the robot CA');
  t.ok(
    cert.publicKey.export({ type: 'spki', format: 'der' }).equals(createPublicKey(keyPem).export({ type: 'spki', format: 'der' })),
    'for the device’s own key',
  );
  t.notOk(cert.ca, 'not a CA, whatever the request asked');
  t.equal(cert.subjectAltName, undefined, 'no name the request asked for');
  t.same(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth only');
}

/** Every POST /enroll of this file goes through here. */
const postEnroll = (body: unknown, opts: Parameters<typeof api.post>[2] = {}) => api.post('/api/v1/robots/enroll', body, opts);

const robotIds = async (u: User) => ((await api.get('/api/v1/robots?limit=200', as(u))).body.robots as { id: string }[]).map((r) => r.id).sort();

t.test('an owner registers a robot with its CSR: no key is made, and the robot connects with its own', async (t) => {
  const owner = await h.signUp('csr');
  const device = await deviceCsr('P-256');
  const r = await api.post('/api/v1/robots', { name: 'own-key', csr: device.csrPem }, as(owner));
  t.equal(r.status, 201, r.text.slice(0, 200));
  t.equal(r.body.privateKeyPem, undefined, 'no private key in the answer');
  t.equal(r.body.caPem, h.caPem, 'the CA certificate comes along');
  isRobotCert(t, r.body.certificatePem, r.body.robot.id, device.keyPem);
  t.equal(r.body.fingerprint, new X509Certificate(r.body.certificatePem).fingerprint256);
  const rec = await h.hub.store.robots.certificateByFingerprint(fpBuffer(r.body.fingerprint));
  t.equal(rec?.robot.id, r.body.robot.id, 'recorded by fingerprint');

  const robot = await h.connectRobot({ cert: r.body.certificatePem, key: device.keyPem });
  t.equal(robot.robotId, r.body.robot.id, 'WELCOME with its own key');
  await robot.close();
});

t.test('rotation with a CSR: P-384, Ed25519 and RSA 2048 keys, each revoking the others, each connecting', async (t) => {
  const owner = await h.signUp('rot');
  const created = await h.enroll(owner);
  for (const kind of ['P-384', 'Ed25519', 'RSA-2048'] as const) {
    const device = await deviceCsr(kind);
    const r = await api.post(`/api/v1/robots/${created.id}/certificate`, { csr: device.csrPem }, as(owner));
    t.equal(r.status, 201, `${kind}: ${r.text.slice(0, 200)}`);
    t.equal(r.body.privateKeyPem, undefined, `${kind}: no key`);
    t.equal(r.body.revoked, 1, `${kind}: the previous certificate is revoked`);
    isRobotCert(t, r.body.certificatePem, created.id, device.keyPem);
    const robot = await h.connectRobot({ cert: r.body.certificatePem, key: device.keyPem });
    t.equal(robot.robotId, created.id, `${kind}: connects with its own key`);
    await robot.close();
  }
  const noBody = await api.post(`/api/v1/robots/${created.id}/certificate`, undefined, as(owner));
  t.equal(noBody.status, 201, 'without a body, a rotation still makes a key (the quick start)');
  t.match(noBody.body.privateKeyPem, /BEGIN PRIVATE KEY/);
});

t.test('requests the hub will not sign: 400 with a code, and nothing registered', async (t) => {
  const owner = await h.signUp('bad');
  const good = await deviceCsr('P-256');
  const bigDer = Buffer.alloc(9_000, 0x30);
  const cases: [string, string, number, string][] = [
    ['a bad signature', csrPem(tamperedSignature(good.csrDer)), 400, 'CSR_SIGNATURE_INVALID'],
    ['an RSA key of 1024 bits', (await deviceCsr('RSA-1024')).csrPem, 400, 'CSR_KEY_UNSUPPORTED'],
    ['an EC key on P-521', (await deviceCsr('P-521')).csrPem, 400, 'CSR_KEY_UNSUPPORTED'],
    ['garbage', 'hello, I am a robot', 400, 'CSR_MALFORMED'],
    ['garbage in PEM armour', csrPem(Buffer.from('not DER at all')), 400, 'CSR_MALFORMED'],
    ['a certificate instead of a request', h.caPem, 400, 'CSR_MALFORMED'],
    ['more than 8192 bytes of DER', csrPem(bigDer), 400, 'CSR_MALFORMED'],
    ['more PEM than the body field takes', `${good.csrPem}${' '.repeat(13_000)}`, 400, 'VALIDATION'],
  ];
  for (const [what, csr, status, code] of cases) {
    const r = await api.post('/api/v1/robots', { name: 'refused', csr }, as(owner));
    isError(t, r, status, code);
    t.equal(r.body?.error?.field, 'csr', `${what}: the field is named`);
  }
  t.same(await robotIds(owner), [], 'no robot was registered');

  const created = await h.enroll(owner);
  const r = await api.post(`/api/v1/robots/${created.id}/certificate`, { csr: csrPem(tamperedSignature(good.csrDer)) }, as(owner));
  isError(t, r, 400, 'CSR_SIGNATURE_INVALID');
  t.equal((await h.hub.store.robots.certificates(created.id)).filter((c) => !c.revokedAt).length, 1, 'the rotation revoked nothing');
});

t.test('only the owner (or an admin) signs a CSR for a robot', async (t) => {
  const owner = await h.signUp('own');
  const viewer = await h.signUp('view');
  const operator = await h.signUp('op');
  const stranger = await h.signUp('str');
  const created = await h.enroll(owner);
  await h.grant(owner, created.id, viewer, 'viewer');
  await h.grant(owner, created.id, operator, 'operator');
  const { csrPem: csr } = await deviceCsr();
  isError(t, await api.post(`/api/v1/robots/${created.id}/certificate`, { csr }, as(viewer)), 403, 'NOT_OWNER');
  isError(t, await api.post(`/api/v1/robots/${created.id}/certificate`, { csr }, as(operator)), 403, 'NOT_OWNER');
  isError(t, await api.post(`/api/v1/robots/${created.id}/certificate`, { csr }, as(stranger)), 404, 'NOT_FOUND');
  t.equal((await h.hub.store.robots.certificates(created.id)).length, 1, 'no certificate was issued');
});

/** Creates a bootstrap token of `u`'s; returns its id and secret. */
async function token(u: User, body: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const r = await api.post('/api/v1/robots/bootstrap-tokens', body, as(u));
  if (r.status !== 201) throw new Error(`token: ${r.status} ${r.text}`);
  return { id: r.body.token.id, secret: r.body.secret };
}

const enroll = async (secret: string, name = uniqueName('fleet')) => {
  const device = await deviceCsr('P-256');
  const r = await postEnroll({ name, csr: device.csrPem }, bearer(secret));
  return { r, device };
};

t.test('a bootstrap token: shown once, enrolls one robot as its owner’s, then is used up', async (t) => {
  const owner = await h.signUp('boot');
  const created = await api.post('/api/v1/robots/bootstrap-tokens', { name: 'line 3' }, as(owner));
  t.equal(created.status, 201, created.text);
  const { token: tok, secret } = created.body;
  t.match(secret, /^sbb_[A-Za-z0-9_-]{43}$/);
  t.match(tok, { name: 'line 3', uses: 1, usesLeft: 1, revokedAt: null });
  const lifetime = new Date(tok.expiresAt).getTime() - new Date(tok.createdAt).getTime();
  t.ok(Math.abs(lifetime - 86_400_000) < 5_000, 'expires in a day by default');
  const listed = await api.get('/api/v1/robots/bootstrap-tokens', as(owner));
  t.equal(listed.body.tokens.length, 1);
  t.notOk(listed.text.includes(secret), 'the list never carries the secret');
  const [row] = await h.hub.store.db.sql<{ secret_hash: Buffer }[]>`SELECT secret_hash FROM robot_bootstrap_tokens WHERE id = ${tok.id}`;
  t.equal(row?.secret_hash.length, 32, 'only a hash is stored');

  const { r, device } = await enroll(secret, 'rover-self');
  t.equal(r.status, 201, r.text.slice(0, 200));
  t.match(r.body.robot, { name: 'rover-self', ownerId: owner.id, online: false, role: 'owner' }, 'the robot as refs.Robot describes it');
  t.equal(r.body.privateKeyPem, undefined);
  t.equal(r.body.caPem, h.caPem);
  isRobotCert(t, r.body.certificatePem, r.body.robot.id, device.keyPem);
  t.same(await robotIds(owner), [r.body.robot.id], 'the owner has the robot');
  const robot = await h.connectRobot({ cert: r.body.certificatePem, key: device.keyPem });
  t.equal(robot.robotId, r.body.robot.id, 'it connects with its own key');
  await robot.close();

  isError(t, (await enroll(secret)).r, 403, 'BOOTSTRAP_TOKEN_USED_UP');
  t.match((await api.get('/api/v1/robots/bootstrap-tokens', as(owner))).body.tokens[0], { usesLeft: 0 });
});

t.test('unknown, missing, expired and revoked tokens each get their own answer', async (t) => {
  const owner = await h.signUp('refuse');
  isError(t, (await enroll('sbb_nobody-knows-this-one')).r, 401, 'BOOTSTRAP_TOKEN_UNKNOWN');
  const device = await deviceCsr();
  isError(t, await postEnroll({ name: 'x', csr: device.csrPem }), 401, 'BOOTSTRAP_TOKEN_UNKNOWN');
  isError(t, await postEnroll({ name: 'x', csr: device.csrPem }, as(owner)), 401, 'BOOTSTRAP_TOKEN_UNKNOWN');

  const expired = await token(owner, { uses: 5, expiresInS: 60 });
  await h.hub.store.db.sql`UPDATE robot_bootstrap_tokens SET expires_at = now() - interval '1 second' WHERE id = ${expired.id}`;
  isError(t, (await enroll(expired.secret)).r, 401, 'BOOTSTRAP_TOKEN_EXPIRED');

  const revoked = await token(owner, { uses: 5 });
  const rv = await api.request('DELETE', `/api/v1/robots/bootstrap-tokens/${revoked.id}`, undefined, as(owner));
  t.equal(rv.status, 200, rv.text);
  t.ok(rv.body.token.revokedAt);
  isError(t, (await enroll(revoked.secret)).r, 401, 'BOOTSTRAP_TOKEN_REVOKED');

  const live = await token(owner, { uses: 2 });
  const bad = await postEnroll({ name: 'bad-csr', csr: csrPem(tamperedSignature(device.csrDer)) }, bearer(live.secret));
  isError(t, bad, 400, 'CSR_SIGNATURE_INVALID');
  t.equal((await enroll(live.secret, 'same-name')).r.status, 201);
  isError(t, (await enroll(live.secret, 'SAME-NAME')).r, 409, 'CONFLICT');
  const [left] = await h.hub.store.db.sql<{ uses_left: number }[]>`SELECT uses_left FROM robot_bootstrap_tokens WHERE id = ${live.id}`;
  t.equal(left?.uses_left, 1, 'refused enrollments took no use');
  t.same((await robotIds(owner)).length, 1, 'and registered nothing');
});

t.test('a token of 3 uses enrolls exactly 3 of 5 robots racing; another owner is untouched', async (t) => {
  const owner = await h.signUp('race');
  const other = await h.signUp('other');
  const othersRobot = await h.enroll(other);
  const othersToken = await token(other, { uses: 1 });
  const tok = await token(owner, { uses: 3 });
  const devices = await Promise.all([0, 1, 2, 3, 4].map(() => deviceCsr('P-256')));
  const answers = await Promise.all(devices.map((d, i) => postEnroll({ name: `racer-${i}`, csr: d.csrPem }, bearer(tok.secret))));
  const statuses = answers.map((a) => a.status).sort();
  t.same(statuses, [201, 201, 201, 403, 403], `3 enrolled, 2 refused: ${answers.map((a) => a.text.slice(0, 80)).join(' | ')}`);
  for (const a of answers.filter((x) => x.status === 403)) t.equal(a.body.error.code, 'BOOTSTRAP_TOKEN_USED_UP');
  const enrolled = answers.filter((a) => a.status === 201).map((a) => a.body.robot.id as string);
  t.same(await robotIds(owner), enrolled.sort(), 'the owner has exactly those three');
  const rows = await h.hub.store.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM robots WHERE bootstrap_token = ${tok.id}`;
  t.equal(rows[0]?.n, 3, 'each records its token');

  t.same(await robotIds(other), [othersRobot.id], 'another owner’s robots are untouched');
  const othersList = await api.get('/api/v1/robots/bootstrap-tokens', as(other));
  t.same(
    othersList.body.tokens.map((x: { id: string }) => x.id),
    [othersToken.id],
    'each owner sees only their own tokens',
  );
  isError(t, await api.request('DELETE', `/api/v1/robots/bootstrap-tokens/${othersToken.id}`, undefined, as(owner)), 404, 'NOT_FOUND');
  const { r } = await enroll(othersToken.secret);
  t.equal(r.status, 201, 'the other owner’s token still works');
  t.equal(r.body.robot.ownerId, other.id, 'for its own owner');
});

t.test('token bounds: uses 1..1000, lifetime up to 30 days', async (t) => {
  const owner = await h.signUp('bounds');
  for (const body of [{ uses: 0 }, { uses: 1001 }, { expiresInS: 30 * 86_400 + 1 }, { expiresInS: 59 }, { name: 'x'.repeat(65) }, { extra: 1 }]) {
    const r = await api.post('/api/v1/robots/bootstrap-tokens', body, as(owner));
    isError(t, r, 400, 'VALIDATION');
  }
  const max = await api.post('/api/v1/robots/bootstrap-tokens', { uses: 1000, expiresInS: 30 * 86_400 }, as(owner));
  t.equal(max.status, 201, max.text);
  const none = await api.post('/api/v1/robots/bootstrap-tokens', undefined, as(owner));
  t.equal(none.status, 201, 'no body: one use, one day');
  t.match(none.body.token, { uses: 1 });
  isError(t, await api.post('/api/v1/robots/bootstrap-tokens', {}), 401, 'UNAUTHENTICATED');
});

t.test('an owner keeps at most 100 tokens', async (t) => {
  const owner = await h.signUp('many');
  for (let i = 0; i < 100; i++) await token(owner);
  isError(t, await api.post('/api/v1/robots/bootstrap-tokens', {}, as(owner)), 409, 'CONFLICT');
  // Ended more than 7 days ago: deleted at the next creation, which then fits.
  await h.hub.store.db.sql`
    UPDATE robot_bootstrap_tokens SET revoked_at = now() - interval '8 days'
    WHERE id IN (SELECT id FROM robot_bootstrap_tokens WHERE owner_id = ${owner.id} LIMIT 1)`;
  t.equal((await api.post('/api/v1/robots/bootstrap-tokens', {}, as(owner))).status, 201);
  t.equal((await api.get('/api/v1/robots/bootstrap-tokens', as(owner))).body.tokens.length, 100);
});

t.test("a disabled owner's tokens enroll nothing (403 ACCOUNT_DISABLED); enabled again, they do", async (t) => {
  const owner = await h.signUp('disabled');
  const tok = await token(owner, { uses: 2 });
  await h.hub.store.users.setDisabled(owner.id, true);
  isError(t, (await enroll(tok.secret)).r, 403, 'ACCOUNT_DISABLED');
  // The check in the statement that takes the use, not only the look-up before: a token whose owner
  // is disabled between the two takes no use either.
  const refused = await h.hub.store.robotEnrollment.enroll(
    createHash('sha256').update(tok.secret).digest(),
    { id: randomUUID(), name: 'raced' },
    { fingerprint: Buffer.alloc(32, 9), serial: '0abc', notAfter: new Date(Date.now() + 86_400_000) },
  );
  t.same(refused, { refused: 'owner-disabled' }, 'the store refuses it too');
  const [left] = await h.hub.store.db.sql<{ uses_left: number }[]>`SELECT uses_left FROM robot_bootstrap_tokens WHERE id = ${tok.id}`;
  t.equal(left?.uses_left, 2, 'no use taken');
  const [robots] = await h.hub.store.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM robots WHERE owner_id = ${owner.id}`;
  t.equal(robots?.n, 0, 'nothing registered');
  await h.hub.store.users.setDisabled(owner.id, false);
  t.equal((await enroll(tok.secret)).r.status, 201, 'enabled again: the token works');
});

// Last: it spends this IP's enrollment budget for the minute. The counter starts at zero here, so
// the test does not depend on how long the earlier ones took.
t.test('self-enrolment is rate-limited per client IP', async (t) => {
  const device = await deviceCsr();
  await h.hub.store.db.sql`DELETE FROM rate_limits WHERE key LIKE 'robot_enroll_ip:%'`;
  const statuses: number[] = [];
  for (let i = 0; i < 61; i++) {
    const r = await postEnroll({ name: 'x', csr: device.csrPem }, bearer('sbb_unknown'));
    statuses.push(r.status);
    if (r.status === 429) {
      t.equal(r.body.error.code, 'RATE_LIMITED');
      t.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After');
      break;
    }
  }
  t.equal(statuses.at(-1), 429, `refused after 60 a minute (${statuses.length} requests)`);
  t.equal(statuses.filter((s) => s === 401).length, 60, 'exactly 60 answered before the limit');
});

t.test('the hub kept serving robots', async (t) => {
  const owner = await h.signUp('after');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, CHANNELS);
  t.equal(robot.robotId, r.id);
});
