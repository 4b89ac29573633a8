// Robots over REST through a listening hub: enrollment (503 before the CA exists, then a certificate
// that chains to the CA, names the robot and is recorded by fingerprint), the lifecycle, the
// authorisation matrix (owner / operator / viewer / stranger / admin against every action, each
// checked by its effect in the store), pagination of the robot list and the audit log, validation.

import { createHash, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Test } from 'tap';
import t from 'tap';
import { defaultCaFiles, initCa } from '../src/auth/pki.js';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { startTestHub, tempDir } from './helpers/hub.js';

const FAST = { SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1', SB_REGISTER_PER_IP_PER_HOUR: '10000', SB_LOGIN_PER_IP_PER_MINUTE: '10000' };

type User = Awaited<ReturnType<Api['signUp']>>;

const dataDir = await tempDir(t);
const hub = await startTestHub(t, { env: FAST, dataDir });
const api = new Api(hub.url);
const store = hub.store;

const as = (u: User) => ({ token: u.token });
const robotPath = (id: string) => `/api/v1/robots/${id}`;
const fpBuffer = (fp: string) => Buffer.from(fp.replaceAll(':', ''), 'hex');

function isError(t: Test, r: ApiResponse, status: number, code: string, field?: string): void {
  t.equal(r.status, status, `status ${status}: ${r.text}`);
  t.equal(r.body?.error?.code, code, `code ${code}`);
  if (field !== undefined) t.equal(r.body?.error?.field, field, `field ${field}`);
}

async function createRobot(u: User, name = `robot-${randomUUID().slice(0, 8)}`) {
  const r = await api.post('/api/v1/robots', { name }, as(u));
  if (r.status !== 201) throw new Error(`create robot: ${r.status} ${r.text}`);
  return r.body as { robot: { id: string; name: string }; certificatePem: string; privateKeyPem: string; fingerprint: string; notAfter: string };
}

/** An account whose tokens carry admin: true (promoted in the store, then logged in). */
async function signUpAdmin(): Promise<User> {
  const u = await api.signUp(uniqueName('adm'));
  await store.db.sql`UPDATE users SET is_admin = true WHERE id = ${u.id}`;
  const l = await api.post('/api/v1/auth/login', { username: u.username, password: u.password });
  if (l.status !== 200) throw new Error(`admin login: ${l.text}`);
  return { ...u, token: l.body.accessToken };
}

const put = (path: string, body: unknown, u: User) => api.request('PUT', path, body, as(u));
const patch = (path: string, body: unknown, u: User) => api.request('PATCH', path, body, as(u));

t.test('before the CA exists, enrollment is 503 and registers nothing; afterwards it works without a restart', async (t) => {
  const u = await api.signUp(uniqueName('early'));
  const r = await api.post('/api/v1/robots', { name: 'too-early' }, as(u));
  isError(t, r, 503, 'UNAVAILABLE');
  t.match(r.body.error.message, /switchboard pki init/, 'tells the operator what to run');
  t.notMatch(r.body.error.message, new RegExp(dataDir), 'does not leak server paths');
  t.same((await api.get('/api/v1/robots', as(u))).body.robots, [], 'no robot registered');
  t.equal(await store.robots.byOwnerAndName(u.id, 'too-early'), undefined);

  await initCa(defaultCaFiles(dataDir));
  const ok = await api.post('/api/v1/robots', { name: 'too-early' }, as(u));
  t.equal(ok.status, 201, ok.text);
});

t.test('the issued certificate chains to the CA, names the robot, and is recorded by fingerprint', async (t) => {
  const caCert = new X509Certificate(await readFile(defaultCaFiles(dataDir).certFile));
  const u = await api.signUp(uniqueName('cert'));
  const created = await createRobot(u, 'Rover');
  const id = created.robot.id;
  t.match(created.robot, { id, name: 'Rover', ownerId: u.id, role: 'owner', online: false, lastSeenAt: null });
  const cert = new X509Certificate(created.certificatePem);
  t.ok(cert.verify(caCert.publicKey), 'signed by the CA key');
  t.ok(cert.checkIssued(caCert), 'issued by the CA');
  t.equal(cert.subject, `CN=${id}`, 'CN = robot id');
  t.ok(cert.checkPrivateKey(createPrivateKey(created.privateKeyPem)), 'the returned key belongs to the certificate');
  t.equal(created.fingerprint, cert.fingerprint256, 'fingerprint as openssl prints it');
  t.equal(new Date(created.notAfter).getTime(), new Date(cert.validTo).getTime(), 'notAfter');
  t.same(fpBuffer(created.fingerprint), createHash('sha256').update(cert.raw).digest(), 'SHA-256 of the DER');

  const rec = await store.robots.certificateByFingerprint(fpBuffer(created.fingerprint));
  t.equal(rec?.robot.id, id, 'the store knows the fingerprint, for this robot');
  t.equal(rec?.certificate.revokedAt, null);
  t.equal(rec?.certificate.serial, cert.serialNumber.toLowerCase());

  const got = await api.get(robotPath(id), as(u));
  t.equal(got.status, 200);
  t.equal(got.body.robot.certificates.length, 1);
  t.equal(got.body.robot.certificates[0].fingerprint, created.fingerprint);
  t.notOk(/PRIVATE KEY/.test(got.text), 'the private key is never returned again');
  t.notOk(JSON.stringify(await store.db.sql`SELECT * FROM robot_certificates WHERE robot_id = ${id}`).includes('PRIVATE'), 'nor stored');

  await t.test('rotation issues a new certificate and revokes the old one', async (t) => {
    const rot = await api.post(`${robotPath(id)}/certificate`, undefined, as(u));
    t.equal(rot.status, 201, rot.text);
    t.equal(rot.body.revoked, 1);
    const next = new X509Certificate(rot.body.certificatePem);
    t.ok(next.verify(caCert.publicKey));
    t.equal(next.subject, `CN=${id}`);
    t.ok(next.checkPrivateKey(createPrivateKey(rot.body.privateKeyPem)));
    t.not(rot.body.fingerprint, created.fingerprint);
    const old = await store.robots.certificateByFingerprint(fpBuffer(created.fingerprint));
    t.type(old?.certificate.revokedAt, Date, 'the old fingerprint is revoked');
    const fresh = await store.robots.certificateByFingerprint(fpBuffer(rot.body.fingerprint));
    t.equal(fresh?.certificate.revokedAt, null, 'the new one is valid');
    t.equal(fresh?.robot.id, id);

    const rev = await api.delete(`${robotPath(id)}/certificate`, as(u));
    t.equal(rev.status, 200);
    t.equal(rev.body.revoked, 1, 'only the one still valid');
    t.ok(
      (await store.robots.certificates(id)).every((c) => c.revokedAt !== null),
      'every certificate revoked',
    );
    t.equal((await api.delete(`${robotPath(id)}/certificate`, as(u))).body.revoked, 0, 'revoking again revokes nothing');
  });
});

t.test('lifecycle: create, list, read, rename, grant, revoke the grant, delete', async (t) => {
  const [owner, friend] = await Promise.all([api.signUp(uniqueName('own')), api.signUp(uniqueName('fr'))]);
  const { robot } = await createRobot(owner, 'Arm');
  const base = robotPath(robot.id);

  const listed = await api.get('/api/v1/robots', as(owner));
  t.equal(listed.status, 200);
  t.same(
    listed.body.robots.map((r: { id: string; role: string }) => [r.id, r.role]),
    [[robot.id, 'owner']],
  );
  t.equal(listed.body.nextCursor, null);
  isError(t, await api.post('/api/v1/robots', { name: 'ARM' }, as(owner)), 409, 'CONFLICT', 'name');
  t.equal((await api.post('/api/v1/robots', { name: 'Arm' }, as(friend))).status, 201, 'names are per owner');

  const renamed = await patch(base, { name: '  Arm 2  ' }, owner);
  t.equal(renamed.status, 200, renamed.text);
  t.equal(renamed.body.robot.name, 'Arm 2', 'trimmed');
  t.equal((await store.robots.byId(robot.id))?.name, 'Arm 2');
  await createRobot(owner, 'Other');
  isError(t, await patch(base, { name: 'other' }, owner), 409, 'CONFLICT', 'name');

  const g = await put(`${base}/grants/${friend.id}`, { role: 'viewer' }, owner);
  t.equal(g.status, 200, g.text);
  t.match(g.body.grant, { userId: friend.id, username: friend.username, role: 'viewer' });
  const seen = await api.get(base, as(friend));
  t.equal(seen.status, 200);
  t.equal(seen.body.robot.role, 'viewer');
  t.ok(
    (await api.get('/api/v1/robots', as(friend))).body.robots.some((r: { id: string; role: string }) => r.id === robot.id && r.role === 'viewer'),
    'granted robots are listed with the role',
  );
  t.equal((await put(`${base}/grants/${friend.id}`, { role: 'operator' }, owner)).body.grant.role, 'operator', 'a PUT changes the role');
  t.equal(await store.robots.role(robot.id, friend.id), 'operator');
  const grants = await api.get(`${base}/grants`, as(owner));
  t.same(
    grants.body.grants.map((x: { userId: string; role: string }) => [x.userId, x.role]),
    [[friend.id, 'operator']],
  );
  isError(t, await put(`${base}/grants/${owner.id}`, { role: 'viewer' }, owner), 409, 'CONFLICT');
  isError(t, await put(`${base}/grants/${randomUUID()}`, { role: 'viewer' }, owner), 404, 'NOT_FOUND');

  t.equal((await api.delete(`${base}/grants/${friend.id}`, as(owner))).status, 204);
  isError(t, await api.get(base, as(friend)), 404, 'NOT_FOUND');
  isError(t, await api.delete(`${base}/grants/${friend.id}`, as(owner)), 404, 'NOT_FOUND', undefined);

  t.equal((await api.delete(base, as(owner))).status, 204);
  isError(t, await api.get(base, as(owner)), 404, 'NOT_FOUND');
  t.equal(await store.robots.byId(robot.id), undefined);
  t.same(await store.robots.certificates(robot.id), [], 'its certificates went with it');
});

t.test('authorisation matrix', async (t) => {
  const [owner, operator, viewer, stranger, target] = await Promise.all(['mo', 'mop', 'mv', 'ms', 'mt'].map((p) => api.signUp(uniqueName(p))));
  const admin = await signUpAdmin();
  const actors = { owner, operator, viewer, stranger, admin } as Record<string, User>;

  /** A fresh robot per cell, so every allowed action starts from the same state. */
  async function fixture() {
    const c = await createRobot(owner as User);
    const id = c.robot.id;
    await store.robots.grant(id, (operator as User).id, 'operator');
    await store.robots.grant(id, (viewer as User).id, 'viewer');
    await store.robots.insertCommand({
      id: randomUUID(),
      robotId: id,
      userId: (operator as User).id,
      command: 'move',
      argsDigest: Buffer.alloc(32, 1),
      issuedAt: new Date(),
    });
    return { id, fingerprint: c.fingerprint };
  }

  type Fx = Awaited<ReturnType<typeof fixture>>;
  interface Action {
    ok: number;
    run(u: User, fx: Fx): Promise<ApiResponse>;
    /** Whether the action took effect, read from the store. */
    done(fx: Fx): Promise<boolean>;
  }
  const unchanged = async () => false;
  const actions: Record<string, Action> = {
    read: { ok: 200, run: (u, fx) => api.get(robotPath(fx.id), as(u)), done: unchanged },
    audit: { ok: 200, run: (u, fx) => api.get(`${robotPath(fx.id)}/audit`, as(u)), done: unchanged },
    rename: {
      ok: 200,
      run: (u, fx) => patch(robotPath(fx.id), { name: `renamed ${fx.id}` }, u),
      done: async (fx) => (await store.robots.byId(fx.id))?.name === `renamed ${fx.id}`,
    },
    delete: { ok: 204, run: (u, fx) => api.delete(robotPath(fx.id), as(u)), done: async (fx) => (await store.robots.byId(fx.id)) === undefined },
    rotate: {
      ok: 201,
      run: (u, fx) => api.post(`${robotPath(fx.id)}/certificate`, undefined, as(u)),
      done: async (fx) => (await store.robots.certificates(fx.id)).length === 2,
    },
    revoke: {
      ok: 200,
      run: (u, fx) => api.delete(`${robotPath(fx.id)}/certificate`, as(u)),
      done: async (fx) => (await store.robots.certificateByFingerprint(fpBuffer(fx.fingerprint)))?.certificate.revokedAt != null,
    },
    grant: {
      ok: 200,
      run: (u, fx) => put(`${robotPath(fx.id)}/grants/${(target as User).id}`, { role: 'viewer' }, u),
      done: async (fx) => (await store.robots.role(fx.id, (target as User).id)) === 'viewer',
    },
    listGrants: { ok: 200, run: (u, fx) => api.get(`${robotPath(fx.id)}/grants`, as(u)), done: unchanged },
    ungrant: {
      ok: 204,
      run: (u, fx) => api.delete(`${robotPath(fx.id)}/grants/${(viewer as User).id}`, as(u)),
      done: async (fx) => (await store.robots.role(fx.id, (viewer as User).id)) === undefined,
    },
  };
  const reads = new Set(['read', 'audit']);
  const expected = (who: string, action: string): 'ok' | 403 | 404 => {
    if (who === 'stranger') return 404;
    if (who === 'owner' || who === 'admin') return 'ok';
    return reads.has(action) ? 'ok' : 403;
  };

  for (const [action, a] of Object.entries(actions)) {
    await t.test(action, async (t) => {
      for (const [who, u] of Object.entries(actors)) {
        const fx = await fixture();
        const r = await a.run(u, fx);
        const want = expected(who, action);
        if (want === 'ok') {
          t.equal(r.status, a.ok, `${who} may ${action}: ${r.text.slice(0, 200)}`);
          if (a.done !== unchanged) t.ok(await a.done(fx), `${who}: ${action} took effect`);
          if (action === 'read') t.equal(r.body.robot.role, who === 'admin' ? null : who, `${who}: role reported`);
          if (action === 'audit') t.equal(r.body.commands.length, 1, `${who}: sees the log`);
        } else {
          isError(t, r, want, want === 404 ? 'NOT_FOUND' : 'NOT_OWNER');
          if (want === 404) t.match(r.body.error.message, /^robot not found$/, `${who}: same answer as for a robot that does not exist`);
          if (a.done !== unchanged) t.notOk(await a.done(fx), `${who}: ${action} changed nothing`);
        }
      }
    });
  }

  await t.test('a stranger cannot tell a hidden robot from a missing one', async (t) => {
    const fx = await fixture();
    const hidden = await api.get(robotPath(fx.id), as(stranger as User));
    const missing = await api.get(robotPath(randomUUID()), as(stranger as User));
    t.equal(hidden.status, missing.status);
    t.same(hidden.body.error, missing.body.error);
  });
});

t.test('pagination: my robots by id, the audit log newest first', async (t) => {
  const [u, other] = await Promise.all([api.signUp(uniqueName('pg')), api.signUp(uniqueName('pgo'))]);
  const mine = [];
  for (let i = 0; i < 4; i++) mine.push((await createRobot(u, `p${i}`)).robot.id);
  const granted = (await createRobot(other, 'shared')).robot.id;
  await store.robots.grant(granted, u.id, 'viewer');
  await createRobot(other, 'not shared');

  const seen: { id: string; role: string }[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const r = await api.get(`/api/v1/robots?limit=2${q}`, as(u));
    t.equal(r.status, 200);
    t.ok(r.body.robots.length <= 2);
    seen.push(...r.body.robots);
    cursor = r.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.equal(pages, 3, '5 robots in pages of 2');
  const ids = seen.map((r) => r.id);
  t.same(ids, [...mine, granted].sort(), 'every robot once, by id');
  t.equal(seen.find((r) => r.id === granted)?.role, 'viewer');

  const robotId = mine[0] as string;
  const t0 = Date.parse('2030-01-01T00:00:00.000Z');
  const cmds = [];
  for (let i = 0; i < 5; i++) {
    // Two commands share a timestamp: the id breaks the tie.
    const issuedAt = new Date(t0 + Math.min(i, 3) * 1000);
    cmds.push(await store.robots.insertCommand({ id: randomUUID(), robotId, userId: u.id, command: `c${i}`, argsDigest: Buffer.alloc(32, i), issuedAt }));
  }
  const newestFirst = [...cmds].sort((a, b) => b.issuedAt.getTime() - a.issuedAt.getTime() || (a.id < b.id ? 1 : -1)).map((c) => c.id);
  const got: string[] = [];
  cursor = null;
  pages = 0;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const r = await api.get(`${robotPath(robotId)}/audit?limit=2${q}`, as(u));
    t.equal(r.status, 200, r.text);
    got.push(...r.body.commands.map((c: { id: string }) => c.id));
    cursor = r.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.same(got, newestFirst, 'every command once, newest first');
  const first = (await api.get(`${robotPath(robotId)}/audit?limit=1`, as(u))).body.commands[0];
  const newest = cmds.find((c) => c.id === newestFirst[0]) as (typeof cmds)[number];
  t.match(first, {
    id: newest.id,
    robotId,
    userId: u.id,
    command: newest.command,
    argsDigest: newest.argsDigest.toString('hex'),
    deliveredAt: null,
    outcome: null,
  });
});

t.test('validation and ids', async (t) => {
  const u = await api.signUp(uniqueName('val'));
  const { robot } = await createRobot(u);
  const base = robotPath(robot.id);
  isError(t, await api.post('/api/v1/robots', {}, as(u)), 400, 'VALIDATION', 'name');
  isError(t, await api.post('/api/v1/robots', { name: '' }, as(u)), 400, 'VALIDATION', 'name');
  isError(t, await api.post('/api/v1/robots', { name: '   ' }, as(u)), 400, 'VALIDATION', 'name');
  isError(t, await api.post('/api/v1/robots', { name: 'x'.repeat(65) }, as(u)), 400, 'VALIDATION', 'name');
  isError(t, await api.post('/api/v1/robots', { name: 'ok', ownerId: u.id }, as(u)), 400, 'VALIDATION', 'ownerId');
  isError(t, await patch(base, { name: 7 }, u), 400, 'VALIDATION', 'name');
  isError(t, await put(`${base}/grants/${randomUUID()}`, { role: 'owner' }, u), 400, 'VALIDATION', 'role');
  isError(t, await api.get('/api/v1/robots?limit=0', as(u)), 400, 'VALIDATION', 'limit');
  isError(t, await api.get('/api/v1/robots?cursor=bm9wZQ', as(u)), 400, 'VALIDATION', 'cursor');
  isError(t, await api.get(`${base}/audit?cursor=bm9wZQ`, as(u)), 400, 'VALIDATION', 'cursor');
  isError(t, await api.get(`${base}/audit?limit=201`, as(u)), 400, 'VALIDATION', 'limit');

  for (const [method, path] of [
    ['GET', '/api/v1/robots/not-a-uuid'],
    ['PATCH', '/api/v1/robots/not-a-uuid'],
    ['DELETE', '/api/v1/robots/123'],
    ['POST', '/api/v1/robots/xyz/certificate'],
    ['GET', '/api/v1/robots/xyz/audit'],
    ['PUT', `${base}/grants/not-a-uuid`],
  ] as const) {
    const r = await api.request(method, path, method === 'PATCH' || method === 'PUT' ? { name: 'x', role: 'viewer' } : undefined, as(u));
    isError(t, r, 404, 'NOT_FOUND');
  }
  isError(t, await api.get('/api/v1/robots'), 401, 'UNAUTHENTICATED');
});
