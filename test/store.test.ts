// One conformance suite for the store, run against real PostgreSQL and against the embedded PGlite.

import { randomUUID } from 'node:crypto';
import t from 'tap';
import { UniqueViolationError } from '../src/store/errors.js';
import { latestVersion, migrations } from '../src/store/migrations.js';
import { Store } from '../src/store/store.js';
import { freshDatabase } from './helpers/db.js';
import { tempDir } from './helpers/hub.js';
import { silentLog, storeBackends, storeUser } from './helpers/stores.js';

const log = silentLog;
const backends = storeBackends;
const user = storeUser;

for (const [name, open] of Object.entries(backends)) {
  t.test(name, async (t) => {
    const store = await open(t);

    t.test('migrations apply once and the schema reports ready', async (t) => {
      t.same(await store.ready(), { ok: false, schema: 0, expected: latestVersion });
      t.same(
        await store.migrate(),
        migrations.map((m) => m.version),
      );
      t.same(await store.migrate(), [], 'second run applies nothing');
      t.same(await store.ready(), { ok: true, schema: latestVersion, expected: latestVersion });
    });

    t.test('users: unique regardless of case, found regardless of case, searched literally', async (t) => {
      const ada = await user(store, 'Ada');
      t.equal(await store.users.create({ id: randomUUID(), username: 'ADA', displayName: null, passwordHash: 'x', isAdmin: false }), undefined);
      t.equal((await store.users.byUsername('aDa'))?.id, ada.id);
      t.equal((await store.users.byId(ada.id))?.username, 'Ada');
      for (const n of ['ab_c', 'abxc', 'ab%d', 'abe']) await user(store, n);
      t.same(
        (await store.users.search('ab_', 10, undefined)).map((u) => u.username),
        ['ab_c'],
        '_ is literal',
      );
      t.same(
        (await store.users.search('ab%', 10, undefined)).map((u) => u.username),
        ['ab%d'],
        '% is literal',
      );
      const first = await store.users.search('ab', 2, undefined);
      const rest = await store.users.search('ab', 10, first[first.length - 1]?.username);
      t.same(
        [...first, ...rest].map((u) => u.username.toLowerCase()),
        ['ab%d', 'ab_c', 'abe', 'abxc'],
        'pages are ordered and disjoint',
      );
    });

    t.test('refresh tokens are consumed once; reuse is visible; sessions end with their tokens', async (t) => {
      const u = await user(store, 'tok-user');
      const family = randomUUID();
      const later = new Date(Date.now() + 60_000);
      await store.sessions.start({ id: family, userId: u.id, expiresAt: later, userAgent: 'x'.repeat(1000), ip: '127.0.0.1' });
      const a = Buffer.alloc(32, 1);
      const b = Buffer.alloc(32, 2);
      await store.refreshTokens.insert({ hash: a, familyId: family, userId: u.id, expiresAt: later });
      await store.refreshTokens.insert({ hash: b, familyId: family, userId: u.id, expiresAt: later });
      const [one, two] = await Promise.all([store.refreshTokens.consume(a), store.refreshTokens.consume(a)]);
      const results = [one, two].map((r) => (r && 'ok' in r ? 'ok' : r && 'stale' in r ? 'stale' : 'none')).sort();
      t.same(results, ['ok', 'stale'], 'two racing consumes: exactly one wins');
      t.equal(await store.refreshTokens.consume(Buffer.alloc(32, 9)), undefined, 'unknown token');
      t.same(await store.refreshTokens.sessionOf(b), { sessionId: family, userId: u.id }, 'sessionOf finds the session without consuming');
      const [listed] = await store.sessions.list(u.id);
      t.equal(listed?.userAgent?.length, 256, 'a long User-Agent is cut, not refused');
      t.equal(await store.sessions.live(u.id, family), 'ok');
      t.equal(await store.sessions.live(u.id, undefined), 'ok', 'a token that names no session: the account is enough');
      t.equal(await store.sessions.live(u.id, randomUUID()), 'ended', 'a session that never existed');
      t.equal(await store.sessions.live(randomUUID(), family), 'no-account', "someone else's session");
      t.same(await store.sessions.end(u.id, { only: family }, 'logout'), [family]);
      t.same(await store.sessions.end(u.id, { only: family }, 'logout'), [], 'ending twice ends nothing');
      t.equal(await store.sessions.live(u.id, family), 'ended');
      t.same(await store.sessions.list(u.id), [], 'an ended session is not listed');
      const revoked = await store.refreshTokens.consume(b);
      t.ok(revoked && 'stale' in revoked && revoked.stale.revoked_at, 'revoked with its session');
      t.equal(revoked && 'stale' in revoked && revoked.stale.revoked_reason, 'logout', 'and the reason is kept');
      const old = randomUUID();
      await store.sessions.start({ id: old, userId: u.id, expiresAt: new Date(Date.now() - 1000), userAgent: undefined, ip: '::1' });
      const c = Buffer.alloc(32, 3);
      await store.refreshTokens.insert({ hash: c, familyId: old, userId: u.id, expiresAt: new Date(Date.now() - 1000) });
      const expired = await store.refreshTokens.consume(c);
      t.ok(expired && 'stale' in expired && !expired.stale.used_at, 'expired: stale but never used');
      t.same(await store.sessions.list(u.id), [], 'an expired session is not listed');
    });

    t.test('rooms: groups, direct pairs, membership', async (t) => {
      const [o, p, q] = [await user(store, 'owner1'), await user(store, 'peer1'), await user(store, 'other1')];
      const g = await store.rooms.createGroup(randomUUID(), 'General', o.id);
      t.equal(await store.rooms.role(g.id, o.id), 'owner');
      t.match(await store.rooms.join(g.id, p), { seq: 1, event: { kind: 'member_joined', user: { id: p.id, username: p.username } } }, 'a join is an event');
      t.equal(await store.rooms.join(g.id, p), undefined, 'joining twice is a no-op');
      t.same((await store.rooms.members(g.id, 10, undefined)).map((m) => m.role).sort(), ['member', 'owner']);
      const d1 = await store.rooms.openDirect(randomUUID(), o.id, p.id);
      const d2 = await store.rooms.openDirect(randomUUID(), p.id, o.id);
      t.equal(d1.created, true);
      t.equal(d2.created, false);
      t.equal(d2.room.id, d1.room.id, 'one direct room per pair, whoever opens it');
      t.same((await store.rooms.listForUser(p.id, 10, undefined)).map((r) => r.id).sort(), [g.id, d1.room.id].sort());
      t.same(await store.rooms.listForUser(q.id, 10, undefined), []);
      t.same(
        (await store.rooms.listGroups('%gen%', 10, undefined)).map((r) => r.id),
        [g.id],
      );
      t.match(await store.rooms.remove(g.id, p, p.id), { seq: 2, event: { kind: 'member_left' } });
      t.equal(await store.rooms.role(g.id, p.id), undefined);
      t.ok(await store.rooms.delete(g.id));
      t.equal(await store.rooms.byId(g.id), undefined);
      t.equal(await store.rooms.delete(g.id), undefined);
    });

    t.test('messages: sequenced batches behind a fence, lookup by cid, ranges and paging', async (t) => {
      const [a, b] = [await user(store, 'msg-a'), await user(store, 'msg-b')];
      const room = await store.rooms.createGroup(randomUUID(), 'busy', a.id);
      const seqd = (from: number, n: number, sender = a.id) =>
        Array.from({ length: n }, (_, i) => ({
          id: randomUUID(),
          roomId: room.id,
          seq: from + i,
          senderId: sender,
          cid: `c${from + i}`,
          body: `m-${from + i}`,
          createdAt: new Date(),
        }));
      await t.rejects(
        store.messages.insertSequenced(room.id, seqd(1, 1, b.id)),
        { name: 'CommitRefusedError', roomGone: false, notMembers: [b.id] },
        'a sender who is not a member is refused',
      );
      // A member without a join event, so the messages' seqs start at 1.
      await store.db.sql`INSERT INTO room_members (room_id, user_id) VALUES (${room.id}, ${b.id})`;
      await store.messages.insertSequenced(room.id, seqd(1, 20));
      await store.messages.insertSequenced(room.id, seqd(21, 20, b.id));
      t.same(await store.messages.insertSequenced(room.id, []), []);
      t.equal((await store.rooms.byId(room.id))?.lastSeq, 40, 'last_seq follows the batches');
      await t.rejects(store.messages.insertSequenced(room.id, [{ ...seqd(41, 1)[0]!, cid: 'c1' }]), UniqueViolationError, 'a cid is unique per sender');
      t.equal((await store.rooms.byId(room.id))?.lastSeq, 40, 'a failed batch changes nothing');
      await t.rejects(
        store.messages.insertSequenced(randomUUID(), seqd(41, 1)),
        { name: 'CommitRefusedError', roomGone: true },
        'a commit to a room that does not exist is refused',
      );
      const found = await store.messages.byCids([
        { senderId: a.id, cid: 'c3' },
        { senderId: b.id, cid: 'c25' },
        { senderId: b.id, cid: 'c3' },
      ]);
      t.same(
        found.map((m) => m.seq).sort((x, y) => x - y),
        [3, 25],
        'only the pairs that exist',
      );
      t.same(await store.messages.byCids([]), []);
      t.same(
        (await store.messages.range(room.id, 35, 38)).map((m) => m.seq),
        [36, 37, 38],
      );
      t.same((await store.rooms.memberIds(room.id)).sort(), [a.id, b.id].sort());
      const latest = await store.messages.page(room.id, { limit: 10 });
      t.same(
        latest.map((m) => m.seq),
        [31, 32, 33, 34, 35, 36, 37, 38, 39, 40],
      );
      const before = await store.messages.page(room.id, { before: 31, limit: 5 });
      t.same(
        before.map((m) => m.seq),
        [26, 27, 28, 29, 30],
      );
      const after = await store.messages.page(room.id, { after: 38, limit: 5 });
      t.same(
        after.map((m) => m.seq),
        [39, 40],
      );
      const between = await store.messages.page(room.id, { after: 10, before: 14, limit: 50 });
      t.same(
        between.map((m) => m.seq),
        [11, 12, 13],
      );
      const body = "'; DROP TABLE messages; -- \u{1F600} \\ % _";
      await store.messages.insertSequenced(room.id, [{ ...seqd(41, 1)[0]!, cid: 'meta', body }]);
      t.equal((await store.messages.range(room.id, 40, 41))[0]?.body, body, 'stored verbatim');
      const stale = await store.messages.insertSequenced(room.id, seqd(40, 2));
      t.same(
        stale.map((m) => m.seq),
        [42, 43],
        'a batch numbered from a stale last seq (another sequencer wrote) is committed right after the last message',
      );
      t.same(
        (await store.messages.range(room.id, 41, 43)).map((m) => m.cid),
        ['c40', 'c41'],
      );
    });

    t.test('messages: batches of several rooms handed in together are one call, each room with its own verdict', async (t) => {
      const [a, b] = [await user(store, 'multi-a'), await user(store, 'multi-b')];
      const rooms = await Promise.all(['one', 'two', 'three'].map((n) => store.rooms.createGroup(randomUUID(), n, a.id)));
      const [one, two, three] = rooms.map((r) => r.id) as [string, string, string];
      let clock = 1_700_000_000_000;
      const tick = () => {
        clock += 1000;
        return new Date(clock);
      };
      const seqd = (roomId: string, from: number, n: number, sender = a.id, cid = (i: number) => `${roomId}-${i}`) =>
        Array.from({ length: n }, (_, i) => ({
          id: randomUUID(),
          roomId,
          seq: from + i,
          senderId: sender,
          cid: cid(from + i),
          body: `m${i}`,
          createdAt: tick(), // a time of its own for every message
        }));
      const calls = store.messages.commitStats.calls;
      const [oneBatch, threeBatch] = [seqd(one, 1, 3), seqd(three, 5, 2)];
      const outcome = (p: Promise<unknown>) =>
        p.then(
          (v) => v,
          (e: unknown) => e,
        );
      const [ok, refused, gone, alsoOk] = await Promise.all([
        outcome(store.messages.insertSequenced(one, oneBatch)),
        outcome(store.messages.insertSequenced(two, seqd(two, 1, 2, b.id))),
        outcome(store.messages.insertSequenced(randomUUID(), seqd(one, 1, 1))),
        outcome(store.messages.insertSequenced(three, threeBatch)),
      ]);
      t.equal(store.messages.commitStats.calls, calls + 1, 'one call for the four rooms');
      t.same(
        (ok as { seq: number }[]).map((m) => m.seq),
        [1, 2, 3],
      );
      t.match(refused, { name: 'CommitRefusedError', roomGone: false, notMembers: [b.id] }, 'a non-member refuses only its room');
      t.match(gone, { name: 'CommitRefusedError', roomGone: true });
      t.same(
        (alsoOk as { seq: number }[]).map((m) => m.seq),
        [1, 2],
        "numbered after the room's last seq, not the batch's",
      );
      t.same(await Promise.all(rooms.map(async (r) => (await store.rooms.byId(r.id))?.lastSeq)), [3, 0, 2]);
      for (const [room, batch] of [
        [one, oneBatch],
        [three, threeBatch],
      ] as const) {
        t.same(
          (await store.messages.range(room, 0, 10)).map((m) => m.createdAt.getTime()),
          batch.map((m) => m.createdAt.getTime()),
          'each message is stored with the time it was handed in with, whichever room went first in the call',
        );
      }

      // A cid already stored fails the whole call; the rooms are tried again alone and only its room fails.
      const [fine, dup] = await Promise.all([
        outcome(store.messages.insertSequenced(two, seqd(two, 1, 1))),
        outcome(
          store.messages.insertSequenced(
            three,
            seqd(three, 3, 1, a.id, () => `${one}-1`),
          ),
        ),
      ]);
      t.same(
        (fine as { seq: number }[]).map((m) => m.seq),
        [1],
      );
      t.type(dup, UniqueViolationError);
      t.same(
        (await store.messages.range(three, 0, 10)).map((m) => m.seq),
        [1, 2],
        'nothing of the refused batch was written',
      );
      t.ok(await store.rooms.delete(one));
      t.same(await store.messages.range(one, 0, 10), [], 'deleting a room deletes its messages');
    });
  });
}

t.test('PostgreSQL: nodes migrating at once apply each migration exactly once', async (t) => {
  const url = await freshDatabase(t);
  const stores = await Promise.all([1, 2, 3].map(() => Store.open({ databaseUrl: url, dataDir: '/nonexistent', poolSize: 2, log })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const applied = await Promise.all(stores.map((s) => s.migrate()));
  const all = migrations.map((m) => m.version);
  t.same(applied.map((a) => a.length).sort(), [0, 0, all.length], 'one node applied every migration, the others nothing');
  t.same(applied.flat(), all);
  const rows = await stores[0]!.db.sql`SELECT version FROM schema_migrations`;
  t.equal(rows.length, all.length);
});

t.test('embedded: data survives closing and reopening the data dir', async (t) => {
  const dataDir = await tempDir(t);
  const first = await Store.open({ databaseUrl: undefined, dataDir, poolSize: 1, log });
  await first.migrate();
  const u = await user(first, 'persist');
  const room = await first.rooms.createGroup(randomUUID(), 'kept', u.id);
  await first.messages.insertSequenced(room.id, [
    { id: randomUUID(), roomId: room.id, seq: 1, senderId: u.id, cid: 'k1', body: 'still here', createdAt: new Date() },
  ]);
  await first.close();
  await first.close(); // idempotent
  const second = await Store.open({ databaseUrl: undefined, dataDir, poolSize: 1, log });
  t.teardown(() => second.close());
  t.same(await second.migrate(), []);
  t.equal((await second.users.byUsername('persist'))?.id, u.id);
  t.same(
    (await second.messages.page(room.id, { limit: 5 })).map((m) => m.body),
    ['still here'],
  );
});

for (const [name, open] of Object.entries(backends)) {
  t.test(`${name}: migration 5 gives the tokens of an older schema their sessions; a login from an older node gets one at its first refresh`, async (t) => {
    const store = await open(t);
    await store.db.sql.begin(async (tx) => {
      await tx`CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
      for (const m of migrations.filter((x) => x.version < 5)) {
        await tx.unsafe(m.sql);
        await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      }
    });
    const u = randomUUID();
    await store.db.sql`INSERT INTO users (id, username, password_hash) VALUES (${u}, 'old-timer', 'x')`;
    const [live, loggedOut] = [randomUUID(), randomUUID()];
    const later = new Date(Date.now() + 3_600_000);
    await store.db
      .sql`INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, used_at) VALUES (${Buffer.alloc(32, 1)}, ${live}, ${u}, ${later}, now())`;
    await store.db.sql`INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES (${Buffer.alloc(32, 2)}, ${live}, ${u}, ${later})`;
    await store.db
      .sql`INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, revoked_at, revoked_reason) VALUES (${Buffer.alloc(32, 3)}, ${loggedOut}, ${u}, ${later}, now(), 'logout')`;
    t.same(
      await store.migrate(),
      migrations.filter((m) => m.version >= 5).map((m) => m.version),
    );
    t.same(
      (await store.sessions.list(u)).map((s) => s.id),
      [live],
      'the family with a live token is a live session; the logged-out one ended',
    );
    t.equal(await store.sessions.live(u, loggedOut), 'ended');

    // A node of the previous version still logs people in during a rolling upgrade: tokens, no session row.
    const fromOldNode = randomUUID();
    await store.refreshTokens.insert({ hash: Buffer.alloc(32, 4), familyId: fromOldNode, userId: u, expiresAt: later });
    t.equal(await store.sessions.refreshed(fromOldNode, u, later), true, 'its first refresh on a new node adds the session');
    t.equal(await store.sessions.live(u, fromOldNode), 'ok');
    t.same(await store.sessions.end(u, { only: fromOldNode }, 'revoked'), [fromOldNode]);
    t.equal(await store.sessions.refreshed(fromOldNode, u, later), false, 'an ended session is not revived by a racing refresh');
    t.equal(await store.sessions.refreshed(live, randomUUID(), later), false, "nor is a session taken over by another user's token");
  });
}
