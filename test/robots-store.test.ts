// The robot repository (robots, grants, certificates, command audit), run against real PostgreSQL
// and against the embedded PGlite, like test/store.test.ts.

import { createHash, randomUUID } from 'node:crypto';
import t from 'tap';
import { storeBackends, storeUser } from './helpers/stores.js';

const backends = storeBackends;
const user = storeUser;

const sha = (s: string) => createHash('sha256').update(s).digest();
const cert = (tag: string) => ({
  fingerprint: sha(tag),
  serial: sha(`serial ${tag}`).subarray(0, 16).toString('hex'),
  notAfter: new Date(Date.now() + 86_400_000),
});

for (const [name, open] of Object.entries(backends)) {
  t.test(name, async (t) => {
    const store = await open(t);
    await store.migrate();

    t.test('robots: names unique per owner without regard to case; roles from ownership and grants', async (t) => {
      const [alice, bob, carol] = [await user(store, 'alice'), await user(store, 'bob'), await user(store, 'carol')];
      const arm = await store.robots.create({ id: randomUUID(), name: 'arm-1', ownerId: alice.id });
      t.ok(arm);
      if (!arm) return;
      t.equal(await store.robots.create({ id: randomUUID(), name: 'ARM-1', ownerId: alice.id }), undefined, 'same owner, same name: refused');
      const bobs = await store.robots.create({ id: randomUUID(), name: 'arm-1', ownerId: bob.id });
      t.ok(bobs, 'another owner may use the name');
      t.equal((await store.robots.byOwnerAndName(alice.id, 'Arm-1'))?.id, arm.id);
      t.equal((await store.robots.byId(arm.id))?.ownerId, alice.id);
      t.equal(await store.robots.byId(randomUUID()), undefined);

      t.equal(await store.robots.role(arm.id, alice.id), 'owner');
      t.equal(await store.robots.role(arm.id, bob.id), undefined);
      t.equal(await store.robots.grant(arm.id, bob.id, 'viewer'), true);
      t.equal(await store.robots.role(arm.id, bob.id), 'viewer');
      t.equal(await store.robots.grant(arm.id, bob.id, 'operator'), true, 'a grant can be changed');
      t.equal(await store.robots.role(arm.id, bob.id), 'operator');
      t.equal(await store.robots.grant(arm.id, alice.id, 'viewer'), false, 'the owner needs no grant');
      t.equal(await store.robots.role(arm.id, alice.id), 'owner');
      t.equal(await store.robots.grant(randomUUID(), bob.id, 'viewer'), false, 'unknown robot');

      const mine = await store.robots.listForUser(bob.id, 10, undefined);
      t.same(
        mine.map((r) => [r.id, r.role]).sort(),
        [
          [arm.id, 'operator'],
          [bobs?.id, 'owner'],
        ].sort(),
        'owned and granted, each with its role',
      );
      const first = await store.robots.listForUser(bob.id, 1, undefined);
      const rest = await store.robots.listForUser(bob.id, 10, first[0]?.id);
      t.same(
        [...first, ...rest].map((r) => r.id),
        mine.map((r) => r.id),
        'pages are ordered and disjoint',
      );
      t.same(await store.robots.listForUser(carol.id, 10, undefined), []);

      t.equal(await store.robots.revokeGrant(arm.id, bob.id), true);
      t.equal(await store.robots.revokeGrant(arm.id, bob.id), false);
      t.equal(await store.robots.role(arm.id, bob.id), undefined);

      const seen = new Date('2030-01-01T00:00:00Z');
      await store.robots.touch(arm.id, seen);
      await store.robots.touch(arm.id, new Date('2029-01-01T00:00:00Z'));
      t.same((await store.robots.byId(arm.id))?.lastSeenAt, seen, 'last seen never moves backwards');
    });

    t.test('certificates: found by fingerprint with their robot; rotation and revocation', async (t) => {
      const owner = await user(store, 'cert-owner');
      const first = cert(`${name} first`);
      const robot = await store.robots.create({ id: randomUUID(), name: 'cam', ownerId: owner.id }, first);
      if (!robot) return t.fail('robot not created');
      const found = await store.robots.certificateByFingerprint(first.fingerprint);
      t.equal(found?.robot.id, robot.id);
      t.equal(found?.robot.name, 'cam');
      t.equal(found?.certificate.serial, first.serial);
      t.same(found?.certificate.fingerprint, first.fingerprint);
      t.equal(found?.certificate.revokedAt, null);
      t.equal(await store.robots.certificateByFingerprint(sha('nobody')), undefined);

      const second = cert(`${name} second`);
      t.equal(await store.robots.rotateCertificate(robot.id, second), 1, 'the old certificate is revoked');
      t.ok((await store.robots.certificateByFingerprint(first.fingerprint))?.certificate.revokedAt);
      t.equal((await store.robots.certificateByFingerprint(second.fingerprint))?.certificate.revokedAt, null, 'the new one is live');
      await t.rejects(store.robots.addCertificate(robot.id, { ...cert(`${name} third`), serial: second.serial }), 'serials are unique');

      t.equal(await store.robots.revokeCertificates(robot.id), 1);
      t.equal(await store.robots.revokeCertificates(robot.id), 0, 'revoking again changes nothing');
      t.ok(
        (await store.robots.certificates(robot.id)).every((c) => c.revokedAt),
        'all revoked',
      );

      t.equal(
        await store.robots.create({ id: randomUUID(), name: 'cam2', ownerId: owner.id }, second).catch(() => 'refused'),
        'refused',
        'a fingerprint belongs to one robot',
      );
      t.equal(await store.robots.byOwnerAndName(owner.id, 'cam2'), undefined, 'and the failed registration left no robot behind');
    });

    t.test('command audit: append, fill each stage once, page newest first', async (t) => {
      const owner = await user(store, 'audit-owner');
      const robot = await store.robots.create({ id: randomUUID(), name: 'rover', ownerId: owner.id });
      if (!robot) return t.fail('robot not created');
      const at = new Date('2030-06-01T12:00:00.123Z');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const id = randomUUID();
        ids.push(id);
        // Two commands share a timestamp: the id breaks the tie, so paging neither skips nor repeats.
        const issuedAt = new Date(at.getTime() + Math.min(i, 3) * 1000);
        const rec = await store.robots.insertCommand({ id, robotId: robot.id, userId: owner.id, command: 'move', argsDigest: sha(`args ${i}`), issuedAt });
        t.same(rec.issuedAt, issuedAt);
      }
      const id0 = ids[0] as string;
      t.equal(await store.robots.markCommand(id0, 'delivered', new Date(at.getTime() + 10)), true);
      t.equal(await store.robots.markCommand(id0, 'delivered', new Date(at.getTime() + 20)), false, 'first report wins');
      t.equal(await store.robots.markCommand(id0, 'accepted', new Date(at.getTime() + 30)), true);
      t.equal(await store.robots.markCommand(id0, 'completed', new Date(at.getTime() + 40), 'ok'), true);
      t.equal(await store.robots.markCommand(id0, 'completed', new Date(at.getTime() + 50), 'failed'), false);
      t.equal(await store.robots.markCommand(randomUUID(), 'delivered', at), false, 'unknown command');

      const all = await store.robots.listCommands(robot.id, 10, undefined);
      t.equal(all.length, 5);
      const rec0 = all.find((r) => r.id === id0);
      t.same(rec0?.deliveredAt, new Date(at.getTime() + 10));
      t.equal(rec0?.outcome, 'ok');
      t.same(rec0?.argsDigest, sha('args 0'));
      const order = all.map((r) => r.issuedAt.getTime());
      t.same(
        order,
        [...order].sort((a, b) => b - a),
        'newest first',
      );

      const pages: string[] = [];
      let cursor: { issuedAt: Date; id: string } | undefined;
      for (;;) {
        const page = await store.robots.listCommands(robot.id, 2, cursor);
        if (!page.length) break;
        pages.push(...page.map((r) => r.id));
        const last = page[page.length - 1] as (typeof page)[number];
        cursor = { issuedAt: last.issuedAt, id: last.id };
      }
      t.same(
        pages,
        all.map((r) => r.id),
        'pages of 2 cover the log once, in order',
      );

      await t.rejects(store.db.sql`UPDATE command_audit SET command = 'stop' WHERE id = ${id0}`, /append-only/, 'issued fields never change');
      await t.rejects(store.db.sql`UPDATE command_audit SET outcome = 'failed' WHERE id = ${id0}`, /append-only/, 'an outcome is set once');
      await t.rejects(store.db.sql`UPDATE command_audit SET delivered_at = NULL WHERE id = ${id0}`, /append-only/, 'a stage is not erased');

      await store.db.sql`DELETE FROM users WHERE id = ${owner.id}`;
      t.equal(await store.robots.byId(robot.id), undefined, 'deleting the owner deletes the robot');
    });

    t.test('a deleted account leaves its audit entries, without the user', async (t) => {
      const [owner, op] = [await user(store, 'keeper'), await user(store, 'leaver')];
      const robot = await store.robots.create({ id: randomUUID(), name: 'lift', ownerId: owner.id });
      if (!robot) return t.fail('robot not created');
      await store.robots.grant(robot.id, op.id, 'operator');
      const id = randomUUID();
      await store.robots.insertCommand({ id, robotId: robot.id, userId: op.id, command: 'raise', argsDigest: sha('{}'), issuedAt: new Date() });
      await store.db.sql`DELETE FROM users WHERE id = ${op.id}`;
      const [rec] = await store.robots.listCommands(robot.id, 1, undefined);
      t.equal(rec?.id, id);
      t.equal(rec?.userId, null);
      t.equal(await store.robots.role(robot.id, op.id), undefined, 'the grant went with the account');
    });
  });
}
