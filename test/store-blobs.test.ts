// The blob store on both backends: quota reservations (two at once cannot both take the last of
// it), chunks written and read back, who may read a blob, the trigger that deletes a blob with its
// last reference, and the sweep of what uploads and deletions leave behind.

import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { Store } from '../src/store/store.js';
import { storeBackends, storeUser } from './helpers/stores.js';

for (const [name, open] of Object.entries(storeBackends)) {
  t.test(name, async (t) => {
    const store = await open(t);
    await store.migrate();
    const blob = (ownerId: string, size: number) => ({ id: randomUUID(), ownerId, kind: 'attachment' as const, name: 'f.bin', type: 'application/pdf', size });
    const ready = async (s: Store, ownerId: string, size = 3) => {
      const b = blob(ownerId, size);
      t.same(await s.blobs.reserve(b, 1_000_000), { ok: true });
      await s.chunks.put(b.id, 0, Buffer.alloc(size, 7));
      t.ok(await s.blobs.finish(b.id, undefined));
      return b.id;
    };
    const exists = async (id: string) => (await store.db.sql`SELECT 1 FROM blobs WHERE id = ${id}`).length === 1;

    t.test('reservations against the quota, one at a time', async (t) => {
      const u = await storeUser(store, `q${randomUUID().slice(0, 8)}`);
      const results = await Promise.all([store.blobs.reserve(blob(u.id, 600), 1000), store.blobs.reserve(blob(u.id, 600), 1000)]);
      t.same(results.map((r) => r.ok).sort(), [false, true], 'two at once: one fits, not both');
      t.same(
        results.find((r) => !r.ok),
        { ok: false, usedBytes: 600 },
      );
      t.same(await store.blobs.reserve(blob(u.id, 400), 1000), { ok: true }, 'exactly what is left');
      t.same(await store.blobs.usage(u.id), { bytes: 1000, blobs: 2 });
    });

    t.test('chunks, readiness, and who may read', async (t) => {
      const [a, b] = [await storeUser(store, `r${randomUUID().slice(0, 8)}`), await storeUser(store, `r${randomUUID().slice(0, 8)}`)];
      const x = blob(a.id, 5);
      await store.blobs.reserve(x, 1_000_000);
      await store.chunks.put(x.id, 0, Buffer.from('hello'));
      t.equal(await store.blobs.readable(x.id, a.id), undefined, 'not readable before it is finished');
      t.ok(await store.blobs.finish(x.id, { width: 2, height: 1 }));
      t.notOk(await store.blobs.finish(x.id, undefined), 'finished once');
      t.match(await store.blobs.readable(x.id, a.id), { allowed: true, blob: { size: 5, width: 2, height: 1 } }, 'its owner');
      t.match(await store.blobs.readable(x.id, b.id), { allowed: false }, 'anyone else, until a message of a room of theirs carries it');
      t.same(await store.chunks.get(x.id, 0), Buffer.from('hello'));
      t.equal(await store.chunks.get(x.id, 1), undefined);
      t.same(await store.blobs.owned(b.id, [x.id]), [], 'only its owner may attach it');
    });

    t.test('the last reference takes the blob; the sweep takes what is left over', async (t) => {
      const a = await storeUser(store, `s${randomUUID().slice(0, 8)}`);
      const room = await store.rooms.createGroup(randomUUID(), 'files', a.id);
      const shared = await ready(store, a.id);
      const [att] = await store.blobs.owned(a.id, [shared]);
      const post = (seq: number) =>
        store.messages.insertSequenced(room.id, [
          { id: randomUUID(), roomId: room.id, seq, senderId: a.id, cid: `c${seq}`, body: '', createdAt: new Date(), attachments: [att as never] },
        ]);
      await post(1);
      await post(2);
      t.match(await store.messages.range(room.id, 0, 2), [{ attachments: [{ id: shared }] }, { attachments: [{ id: shared }] }]);
      await store.rooms.deleteMessage(room.id, 1, a.id);
      t.ok(await exists(shared), 'one message still carries it');
      await store.rooms.deleteMessage(room.id, 2, a.id);
      t.notOk(await exists(shared), 'gone with the last');

      if (name === 'postgres') {
        // A post adding a reference to X (holding X as a commit does) while the last other message
        // carrying X is deleted: the deletion waits, then sees the new reference and keeps X.
        const x = await ready(store, a.id);
        const [xa] = await store.blobs.owned(a.id, [x]);
        const message = (body: string, attachments?: unknown[]) =>
          store.messages.insertSequenced(room.id, [
            {
              id: randomUUID(),
              roomId: room.id,
              seq: 1,
              senderId: a.id,
              cid: randomUUID(),
              body,
              createdAt: new Date(),
              ...(attachments ? { attachments: attachments as never } : {}),
            },
          ]);
        const carrying = (await message('', [xa]))[0] as { seq: number };
        const plain = (await message('plain'))[0] as { seq: number };
        let deleting: Promise<unknown> | undefined;
        await store.db.sql.begin(async (tx) => {
          await tx`SELECT 1 FROM blobs WHERE id = ${x} FOR KEY SHARE`;
          await tx`INSERT INTO attachment_refs (blob_id, room_id, seq) VALUES (${x}, ${room.id}, ${plain.seq})`;
          deleting = store.rooms.deleteMessage(room.id, carrying.seq, a.id);
          let waiting = false;
          for (let i = 0; i < 500 && !waiting; i++) {
            const [w] = await store.db.sql<{ n: number }[]>`
              SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
            waiting = (w?.n ?? 0) > 0;
          }
          t.ok(waiting, 'the deletion waits for the commit holding the file');
        });
        await deleting;
        t.ok(await exists(x), 'the file stays: the new reference was seen');
      }

      const unfinished = blob(a.id, 9);
      await store.blobs.reserve(unfinished, 1_000_000);
      const fresh = await ready(store, a.id);
      const old = await ready(store, a.id);
      const orphan = await ready(store, a.id);
      await store.db.sql`UPDATE blobs SET created_at = now() - interval '25 hours' WHERE id IN (${unfinished.id}, ${old})`;
      await store.db.sql`UPDATE blobs SET used = true WHERE id = ${orphan}`;
      t.equal(await store.blobs.sweep(24), 3, 'an unfinished upload, an old unused file, a used one no message carries');
      t.same([await exists(unfinished.id), await exists(fresh), await exists(old), await exists(orphan)], [false, true, false, false]);
    });
  });
}
