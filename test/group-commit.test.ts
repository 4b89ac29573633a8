// Group commits across rooms, with a scripted store: what goes in which call, and how a unique
// violation in a multi-room call is pinned on its room.

import t from 'tap';
import { UniqueViolationError } from '../src/store/errors.js';
import { GroupCommit, type RoomBatch, type RoomVerdict } from '../src/store/group-commit.js';

type Call = { batches: RoomBatch<string>[]; settle(v?: Map<string, RoomVerdict> | Error): void };

function rig(maxInFlight = 1, maxWeight = 100) {
  const calls: Call[] = [];
  const waiting: (() => void)[] = [];
  const gc = new GroupCommit<string>(
    (batches) =>
      new Promise((resolve, reject) => {
        calls.push({
          batches,
          settle: (v) => {
            if (v instanceof Error) reject(v);
            else resolve(v ?? new Map(batches.map((b, i) => [b.roomId, { kind: 'committed', firstSeq: i + 1 }])));
          },
        });
        for (const w of waiting.splice(0)) w();
      }),
    { maxInFlight, weigh: (b) => b.messages.length, maxWeight },
  );
  /** Resolves once `n` calls have been made. */
  const made = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (calls.length >= n ? resolve() : waiting.push(check));
      check();
    });
  return { gc, calls, made };
}

const batch = (roomId: string, n = 1): RoomBatch<string> => ({ roomId, messages: Array.from({ length: n }, (_, i) => `${roomId}${i}`) });

t.test('batches handed in together go in one call; what comes while a call is out waits for the next', async (t) => {
  const { gc, calls, made } = rig();
  const a = gc.submit(batch('a'));
  const b = gc.submit(batch('b', 2));
  await made(1);
  t.same(
    calls[0]?.batches.map((x) => x.roomId),
    ['a', 'b'],
  );
  const c = gc.submit(batch('c'));
  const d = gc.submit(batch('d'));
  await Promise.resolve();
  t.equal(calls.length, 1, 'nothing more goes out while the one call allowed is on its way');
  calls[0]?.settle();
  t.same(await a, { kind: 'committed', firstSeq: 1 });
  t.same(await b, { kind: 'committed', firstSeq: 2 });
  await made(2);
  t.same(
    calls[1]?.batches.map((x) => x.roomId),
    ['c', 'd'],
    'the waiting batches go together',
  );
  calls[1]?.settle();
  await Promise.all([c, d]);
  t.same(gc.stats, { calls: 2, rooms: 4 });
});

t.test('one call holds a room once and stays under its weight; a heavy batch goes alone', async (t) => {
  const { gc, calls, made } = rig(1, 5);
  const done = [gc.submit(batch('a', 3)), gc.submit(batch('b', 2)), gc.submit(batch('c', 1)), gc.submit(batch('big', 9))];
  await made(1);
  t.same(
    calls[0]?.batches.map((x) => x.roomId),
    ['a', 'b'],
    'up to the weight',
  );
  calls[0]?.settle();
  await made(2);
  t.same(
    calls[1]?.batches.map((x) => x.roomId),
    ['c'],
    'the heavy batch does not fit beside another',
  );
  calls[1]?.settle();
  await made(3);
  t.same(
    calls[2]?.batches.map((x) => x.roomId),
    ['big'],
  );
  calls[2]?.settle();
  await Promise.all(done);
  // The same room twice (another node's actor cannot do this here; one actor per room has one commit at a time).
  const { gc: gc2, calls: calls2, made: made2 } = rig(1, 100);
  const twice = [gc2.submit(batch('r')), gc2.submit(batch('r'))];
  await made2(1);
  t.same(
    calls2[0]?.batches.map((x) => x.roomId),
    ['r'],
    'a room is in a call once',
  );
  calls2[0]?.settle();
  await made2(2);
  calls2[1]?.settle();
  await Promise.all(twice);
});

t.test('with more calls allowed, batches go out at once', async (t) => {
  const { gc, calls, made } = rig(2);
  const a = gc.submit(batch('a'));
  await made(1);
  const b = gc.submit(batch('b'));
  await made(2);
  t.same(
    calls.map((c) => c.batches.map((x) => x.roomId)),
    [['a'], ['b']],
  );
  for (const c of calls) c.settle();
  await Promise.all([a, b]);
});

t.test('a unique violation in a multi-room call is tried again room by room; only its room fails', async (t) => {
  const { gc, calls, made } = rig(1);
  const results = ['a', 'b', 'c'].map((r) =>
    gc.submit(batch(r)).then(
      (v) => v,
      (e: unknown) => e,
    ),
  );
  await made(1);
  calls[0]?.settle(new UniqueViolationError('messages_sender_cid', { cause: undefined }));
  await made(4);
  t.same(
    calls.slice(1).map((c) => c.batches.map((x) => x.roomId)),
    [['a'], ['b'], ['c']],
  );
  calls[1]?.settle();
  calls[2]?.settle(new UniqueViolationError('messages_sender_cid', { cause: undefined }));
  calls[3]?.settle();
  const [a, b, c] = await Promise.all(results);
  t.same(a, { kind: 'committed', firstSeq: 1 });
  t.type(b, UniqueViolationError);
  t.same(c, { kind: 'committed', firstSeq: 1 });
});

t.test('any other failure fails every batch of the call; a missing verdict fails its batch', async (t) => {
  const { gc, calls, made } = rig(1);
  const failing = [gc.submit(batch('a')), gc.submit(batch('b'))];
  await made(1);
  calls[0]?.settle(new Error('connection lost'));
  for (const p of failing) await t.rejects(p, { message: 'connection lost' });
  const partial = [gc.submit(batch('c')), gc.submit(batch('d'))];
  await made(2);
  calls[1]?.settle(new Map([['c', { kind: 'gone' }]]));
  t.same(await partial[0], { kind: 'gone' });
  await t.rejects(partial[1] as Promise<RoomVerdict>, /no verdict for room d/);
});
