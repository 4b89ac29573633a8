// A robot's certificates changed by two hands at once, against real PostgreSQL: a renewal racing
// the owner's revocation or rotation, a renewal racing the first use of the previous one; what a
// store failure during RENEW tells the robot; refused renewals (revoked link, link past expiry);
// the bounds on certificate rows (unused renewals deleted, renewals per day, pruning); and token
// creation not waiting on transactions that merely reference its owner.
// The races are made deterministic by a trigger that parks one transaction on an advisory lock the
// test holds, until the other is seen waiting for a row lock: no sleeps.

import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { Tag } from '../src/protocol/robot.js';
import { CERT_KEEP_DAYS, RENEW_PER_ROBOT_PER_DAY } from '../src/robots/robot-enroller.js';
import { deviceCsr } from './helpers/csr.js';
import { RawRobotLink } from './helpers/robot-link.js';
import { CHANNELS, startRobotHub } from './helpers/robots.js';

const h = await startRobotHub(t);
const owner = await h.signUp('races');
const store = h.hub.store;
const sql = store.db.sql;
const GATE = 815_015; // the advisory lock key the triggers wait on

const newCert = () => ({ fingerprint: randomBytes(32), serial: randomBytes(8).toString('hex'), notAfter: new Date(Date.now() + 86_400_000) });
const fpOf = (pem: string) => Buffer.from(new X509Certificate(pem).fingerprint256.replaceAll(':', ''), 'hex');

async function robotWithCert() {
  const id = randomUUID();
  const a = newCert();
  await store.robots.create({ id, name: `r-${id.slice(0, 8)}`, ownerId: owner.id }, a);
  return { id, a };
}

/** Holds the gate on a connection of its own; `open()` lets parked transactions go on. */
async function gate() {
  const conn = await sql.reserve();
  await conn`SELECT pg_advisory_lock(${GATE})`;
  let opened = false;
  const open = async () => {
    if (opened) return;
    opened = true;
    await conn`SELECT pg_advisory_unlock(${GATE})`;
    conn.release();
  };
  t.teardown(open);
  return open;
}

/** Resolves once `n` backends of this database wait on the gate and one more waits on a row lock (or `what` throws). */
async function waiting(what: string, rowLockWaiters: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [r] = await sql<{ gate: number; rows: number }[]>`
      SELECT count(*) FILTER (WHERE wait_event = 'advisory')::int AS gate,
             count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory')::int AS rows
      FROM pg_stat_activity WHERE datname = current_database()`;
    if (r && r.gate >= 1 && r.rows >= rowLockWaiters) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function trigger(t: Test, name: string, when: string, condition: string) {
  await sql.unsafe(`
    CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF ${condition} THEN PERFORM pg_advisory_xact_lock(${GATE}); END IF; RETURN NEW; END $$;
    CREATE TRIGGER ${name} ${when} ON robot_certificates FOR EACH ROW EXECUTE FUNCTION ${name}();`);
  t.teardown(() => sql.unsafe(`DROP TRIGGER IF EXISTS ${name} ON robot_certificates; DROP FUNCTION IF EXISTS ${name}()`));
}

t.test('a revocation or rotation during a renewal also revokes the renewed certificate', async (t) => {
  await trigger(t, 'park_renewal', 'BEFORE INSERT', 'NEW.renews IS NOT NULL');
  for (const what of ['revoke', 'rotate'] as const) {
    const { id, a } = await robotWithCert();
    const b = newCert();
    const open = await gate();
    const renewing = store.robotEnrollment.renew(id, a.fingerprint, b);
    await waiting('the renewal to park', 0);
    const owner = what === 'revoke' ? store.robots.revokeCertificates(id) : store.robots.rotateCertificate(id, newCert());
    await waiting(`the ${what} to wait for the renewal`, 1);
    await open();
    t.equal(await renewing, true, `${what}: the renewal went through first`);
    const n = await owner;
    const certs = await store.robots.certificates(id);
    const renewed = certs.find((c) => c.fingerprint.equals(b.fingerprint));
    t.ok(renewed?.revokedAt, `${what}: the renewed certificate is revoked too`);
    t.equal(n, 2, `${what}: both certificates counted`);
  }
});

t.test('a renewal while the previous renewal is first used: no deadlock', async (t) => {
  const { id, a } = await robotWithCert();
  const b = newCert();
  t.equal(await store.robotEnrollment.renew(id, a.fingerprint, b), true);
  // The first use parks holding B's row (a BEFORE trigger runs on the locked row), before it revokes A.
  await trigger(t, 'park_first_use', 'BEFORE UPDATE', 'OLD.first_used_at IS NULL AND NEW.first_used_at IS NOT NULL');
  const open = await gate();
  const first = store.robotEnrollment.firstUse(b.fingerprint);
  await waiting('the first use to park', 0);
  const renewing = store.robotEnrollment.renew(id, a.fingerprint, newCert());
  await waiting('the renewal to wait for the first use', 1);
  await open();
  t.equal(await first, id, 'the first use revoked the renewed certificate');
  t.equal(await renewing, false, 'then the renewal found its link certificate revoked: refused, not a deadlock');
  const certs = await store.robots.certificates(id);
  t.equal(certs.find((c) => c.fingerprint.equals(b.fingerprint))?.revokedAt, null, 'the used renewal stays valid');
});

/** A robot registered with its own key, connected on a raw link and welcomed. */
async function linkedRobot(t: Test) {
  const device = await deviceCsr('P-256');
  const r = await h.api.post('/api/v1/robots', { name: `l-${randomUUID().slice(0, 8)}`, csr: device.csrPem }, { token: owner.token });
  if (r.status !== 201) throw new Error(`create: ${r.status} ${r.text}`);
  const link = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: r.body.certificatePem, key: device.keyPem });
  t.teardown(() => link.destroy());
  await link.hello(CHANNELS);
  return { id: r.body.robot.id as string, cert: r.body.certificatePem as string, link };
}

t.test("a store failure during RENEW reaches the robot as UNAVAILABLE, never the driver's code", async (t) => {
  const { id, link } = await linkedRobot(t);
  await sql.unsafe(`
    CREATE FUNCTION fail_renewal() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.robot_id = '${id}' AND NEW.renews IS NOT NULL THEN RAISE EXCEPTION 'test deadlock' USING ERRCODE = '40P01'; END IF; RETURN NEW; END $$;
    CREATE TRIGGER fail_renewal BEFORE INSERT ON robot_certificates FOR EACH ROW EXECUTE FUNCTION fail_renewal();`);
  t.teardown(() => sql.unsafe('DROP TRIGGER IF EXISTS fail_renewal ON robot_certificates; DROP FUNCTION IF EXISTS fail_renewal()'));
  link.send({ tag: Tag.RENEW, csr: (await deviceCsr()).csrDer });
  const e = await link.nextError('the refusal');
  t.match(e, { code: 'UNAVAILABLE', ref: 'renew' });
  t.notMatch(e.message, /deadlock|40P01/, 'nothing of the store in the message');
  t.notOk(link.endInfo, 'the link stays up');
});

t.test('FORBIDDEN renewals: a link whose certificate was revoked, a link open past its expiry', async (t) => {
  const revoked = await linkedRobot(t);
  await store.robots.revokeCertificates(revoked.id); // the store alone: the link is not closed
  revoked.link.send({ tag: Tag.RENEW, csr: (await deviceCsr()).csrDer });
  t.match(await revoked.link.nextError('revoked'), { code: 'FORBIDDEN', ref: 'renew' });

  const expired = await linkedRobot(t);
  await sql`UPDATE robot_certificates SET not_after = now() - interval '1 second' WHERE fingerprint = ${fpOf(expired.cert)}`;
  expired.link.send({ tag: Tag.RENEW, csr: (await deviceCsr()).csrDer });
  t.match(await expired.link.nextError('expired'), { code: 'FORBIDDEN', ref: 'renew' });
  for (const r of [revoked, expired]) t.equal((await store.robots.certificates(r.id)).length, 1, 'nothing issued');
});

t.test('bounded rows: an unused renewal is deleted by the next, renewals per day are capped, ended certificates pruned', async (t) => {
  const { id, a } = await robotWithCert();
  const b = newCert();
  const c = newCert();
  t.ok(await store.robotEnrollment.renew(id, a.fingerprint, b));
  t.ok(await store.robotEnrollment.renew(id, a.fingerprint, c));
  const fps = (await store.robots.certificates(id)).map((x) => x.fingerprint.toString('hex')).sort();
  t.same(fps, [a.fingerprint, c.fingerprint].map((f) => f.toString('hex')).sort(), 'the never-used renewal is gone, not kept revoked');

  // Renewals per day: the daily counter is full (as after RENEW_PER_ROBOT_PER_DAY renewals a minute apart).
  const l = await linkedRobot(t);
  const daily = store.rateLimits.limiter('robot_renew_day', RENEW_PER_ROBOT_PER_DAY, 86_400);
  for (let i = 0; i < RENEW_PER_ROBOT_PER_DAY; i++) await daily(l.id);
  l.link.send({ tag: Tag.RENEW, csr: (await deviceCsr()).csrDer });
  const e = await l.link.nextError('the daily limit');
  t.match(e, { code: 'RATE_LIMITED', ref: 'renew' });
  t.match(e.message, /per day/);
  t.equal((await store.robots.certificates(l.id)).length, 1, 'nothing issued');

  // Pruning: ended (expired or revoked) more than 30 days ago goes; anything more recent stays.
  const p = await robotWithCert();
  const old = [newCert(), newCert()];
  const recent = newCert();
  for (const x of [...old, recent]) await store.robots.addCertificate(p.id, x);
  await sql`UPDATE robot_certificates SET not_after = now() - interval '31 days' WHERE fingerprint = ${old[0]?.fingerprint ?? null}`;
  await sql`UPDATE robot_certificates SET revoked_at = now() - interval '31 days' WHERE fingerprint = ${old[1]?.fingerprint ?? null}`;
  await sql`UPDATE robot_certificates SET revoked_at = now() - interval '29 days' WHERE fingerprint = ${recent.fingerprint}`;
  t.ok((await store.robotEnrollment.pruneCertificates(CERT_KEEP_DAYS)) >= 2);
  const left = (await store.robots.certificates(p.id)).map((x) => x.fingerprint.toString('hex')).sort();
  t.same(left, [p.a.fingerprint, recent.fingerprint].map((f) => f.toString('hex')).sort(), 'the two ended 31 days ago are gone');
});

t.test("creating a bootstrap token does not wait for a transaction that references its owner's row", async (t) => {
  // An open transaction inserting a row that references the owner holds a KEY SHARE lock on the
  // owner's row (the foreign key check): FOR UPDATE would wait for it, FOR NO KEY UPDATE does not.
  const held = await sql.reserve();
  t.teardown(() => held.release());
  await held`BEGIN`;
  await held`INSERT INTO robots (id, name, owner_id) VALUES (${randomUUID()}, ${`held-${randomUUID().slice(0, 8)}`}, ${owner.id})`;
  let settled = false;
  const creating = store.robotEnrollment
    .createToken(
      {
        id: randomUUID(),
        ownerId: owner.id,
        name: null,
        secretHash: randomBytes(32),
        prefix: 'sbb_test1234',
        uses: 1,
        expiresAt: new Date(Date.now() + 60_000),
      },
      { maxPerOwner: 100, keepEndedS: 60 },
    )
    .finally(() => {
      settled = true;
    });
  const deadline = Date.now() + 10_000;
  let blocked = false;
  while (!settled && Date.now() < deadline) {
    const [r] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM users WHERE id%'`;
    if ((r?.n ?? 0) > 0) blocked = true;
    if (blocked) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.notOk(blocked, 'the token creation did not wait on the owner row');
  await held`ROLLBACK`;
  t.ok(await creating, 'and it was created');
});
