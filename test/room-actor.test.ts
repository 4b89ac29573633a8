// The room actor on its own, with a real store and a Bus that loses a delivery: subscribers still
// see every seq once and in order, because the next delivery repairs the gap from the store.

import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import type { Connection, Fanout } from '../src/actors/ports.js';
import { RoomActor, type RoomMsg, type RoomReplies, type RoomReply } from '../src/actors/room.js';
import { ActorSystem } from '../src/actors/runtime.js';
import type { RoomListener } from '../src/cluster/bus.js';
import { MemoryBus } from '../src/cluster/bus-memory.js';
import { MemoryPresence } from '../src/cluster/presence-memory.js';
import { createLogger } from '../src/log.js';
import type { ServerFrame } from '../src/protocol/frames.js';
import type { Message } from '../src/store/messages.js';
import { Store } from '../src/store/store.js';
import { freshDatabase } from './helpers/db.js';

/** Drops the listener call for the chosen announcements (the batch is still durable). */
class LossyBus extends MemoryBus {
  appends = 0;
  private readonly rooms = new Map<string, RoomListener>();
  constructor(private readonly lose: Set<number>) {
    super();
  }
  /** Tells the room's listener what a NATS bus tells it after a reconnect. */
  missedAll(roomId: string): void {
    this.rooms.get(roomId)?.missed();
  }
  /** Hands the room's listener a batch directly, bypassing the losses. */
  deliverAll(roomId: string, batch: Message[]): void {
    this.rooms.get(roomId)?.messages(batch);
  }
  override listen(roomId: string, listener: RoomListener): () => void {
    this.rooms.set(roomId, listener);
    return super.listen(roomId, {
      ...listener,
      messages: (batch) => {
        if (!this.lose.has(++this.appends)) listener.messages(batch);
      },
    });
  }
}

/**
 * A room on a real store whose actor announces through a LossyBus losing the appends in `lose`,
 * with the seqs it fans out recorded: `publish(i)` posts cid `c<i>`, `until(n)` waits for n seqs.
 */
async function lossyRoom(t: Test, name: string, lose: number[]) {
  const log = createLogger('silent');
  const store = await Store.open({ databaseUrl: await freshDatabase(t), dataDir: '/nonexistent', poolSize: 4, log });
  t.teardown(() => store.close());
  await store.migrate();
  const user = await store.users.create({ id: randomUUID(), username: `${name}-user`, displayName: null, passwordHash: 'x', isAdmin: false });
  const room = await store.rooms.createGroup(randomUUID(), name, user!.id);
  const seqs: number[] = [];
  let wake: (() => void) | undefined;
  const fanout: Fanout = {
    publish: (_topic, frame) => {
      if (frame.t !== 'msg') return;
      seqs.push(frame.seq);
      wake?.();
    },
  };
  const bus = new LossyBus(new Set(lose));
  const system = new ActorSystem(log);
  system.register<RoomMsg, RoomReply, RoomReplies>('room', (id, ctx) => new RoomActor(id, ctx, { store, bus, presence: new MemoryPresence(), fanout }));
  t.teardown(() => system.stopAll(5000));
  const ref = system.ref<RoomMsg, RoomReply, RoomReplies>('room', room.id);
  const sender = { id: user!.id, username: `${name}-user` };
  const publish = async (i: number) => (await ref.ask({ type: 'publish', sender, cid: `c${i}`, body: `m${i}` })).pending;
  const until = async (n: number) => {
    while (seqs.length < n) await new Promise<void>((r) => (wake = r));
  };
  return { store, room, bus, system, ref, sender, seqs, publish, until };
}

/** A connection that swallows what it is sent. */
const stubConn = (user: { id: string; username: string }, frames: ServerFrame[] = []): Connection => ({
  id: 'c1',
  user,
  closed: false,
  send: (f) => void frames.push(f),
  writable: () => Promise.resolve(),
  subscribe: () => {},
  unsubscribe: () => {},
  close: () => {},
});

t.test('a lost delivery is repaired from the store before the next one', async (t) => {
  const log = createLogger('silent');
  const store = await Store.open({ databaseUrl: await freshDatabase(t), dataDir: '/nonexistent', poolSize: 4, log });
  t.teardown(() => store.close());
  await store.migrate();
  const user = await store.users.create({ id: randomUUID(), username: 'actor-user', displayName: null, passwordHash: 'x', isAdmin: false });
  const room = await store.rooms.createGroup(randomUUID(), 'lossy', user!.id);
  const published: ServerFrame[] = [];
  const fanout: Fanout = { publish: (_topic, frame) => void published.push(frame) };
  const bus = new LossyBus(new Set([2, 3]));
  const system = new ActorSystem(log);
  system.register<RoomMsg, RoomReply, RoomReplies>('room', (id, ctx) => new RoomActor(id, ctx, { store, bus, presence: new MemoryPresence(), fanout }));
  t.teardown(() => system.stopAll(5000));
  const ref = system.ref<RoomMsg, RoomReply, RoomReplies>('room', room.id);
  const sender = { id: user!.id, username: 'actor-user' };
  // One publish at a time, so each is its own append (and appends 2 and 3 lose their delivery).
  for (let i = 1; i <= 5; i++) {
    const reply = await ref.ask({ type: 'publish', sender, cid: `c${i}`, body: `m${i}` });
    t.equal((await reply.pending).message.seq, i);
  }
  // A subscriber with a plain connection stub, to flush the mailbox and see the live state.
  const frames: ServerFrame[] = [];
  const conn = stubConn(sender, frames);
  await ref.ask({ type: 'subscribe', conn, reqId: 1, since: undefined });
  t.same(
    published.filter((f) => f.t === 'msg').map((f) => (f as { seq: number }).seq),
    [1, 2, 3, 4, 5],
    'every seq fanned out once, in order',
  );
  t.match(frames[0], { t: 'subscribed', id: 1, seq: 5 });
});

t.test('#1 a membership re-check the store cannot answer is a retryable UNAVAILABLE, and the actor keeps going', async (t) => {
  const log = createLogger('silent');
  const store = await Store.open({ databaseUrl: await freshDatabase(t), dataDir: '/nonexistent', poolSize: 2, log });
  t.teardown(() => store.close());
  await store.migrate();
  const [owner, other] = await Promise.all(
    ['re-owner', 're-other'].map((username) => store.users.create({ id: randomUUID(), username, displayName: null, passwordHash: 'x', isAdmin: false })),
  );
  const room = await store.rooms.createGroup(randomUUID(), 'recheck', owner!.id);
  const system = new ActorSystem(log);
  system.register<RoomMsg, RoomReply, RoomReplies>(
    'room',
    (id, ctx) => new RoomActor(id, ctx, { store, bus: new MemoryBus(), presence: new MemoryPresence(), fanout: { publish: () => {} } }),
  );
  t.teardown(() => system.stopAll(5000));
  const ref = system.ref<RoomMsg, RoomReply, RoomReplies>('room', room.id);
  const publish = async (u: { id: string; username: string }, cid: string) =>
    (await ref.ask({ type: 'publish', sender: { id: u.id, username: u.username }, cid, body: cid })).pending;
  t.equal((await publish(owner!, 'o1')).message.seq, 1, 'the owner (cached) publishes');
  // The store fails only for the miss's re-check (a fault injected into this one read).
  const withRole = store.rooms.withRole.bind(store.rooms);
  store.rooms.withRole = () => Promise.reject(new Error('connection lost'));
  t.teardown(() => {
    store.rooms.withRole = withRole;
  });
  await t.rejects(publish(other!, 'x1'), { code: 'UNAVAILABLE' }, 'an uncached user is answered UNAVAILABLE, not NOT_MEMBER');
  store.rooms.withRole = withRole;
  await t.rejects(publish(other!, 'x2'), { code: 'NOT_MEMBER' }, 'once the store answers: NOT_MEMBER');
  t.equal((await publish(owner!, 'o2')).message.seq, 2, 'the actor went on');
});

t.test('news the Bus missed is read from the store when the Bus says so, in order and once', async (t) => {
  // Every announcement is lost, as on a node whose NATS link was down.
  const { store, room, bus, seqs, publish, until } = await lossyRoom(t, 'missed', [1, 2, 3]);
  for (let i = 1; i <= 3; i++) await publish(i);
  t.same(seqs, [], 'nothing delivered yet');
  bus.missedAll(room.id);
  bus.missedAll(room.id);
  await until(3);
  t.same(seqs, [1, 2, 3], 'every seq once, in order');
  // A later announcement that repeats them changes nothing.
  bus.deliverAll(room.id, await store.messages.range(room.id, 0, 3));
  await publish(4);
  await until(4);
  t.same(seqs, [1, 2, 3, 4]);
});

t.test('a delivery gap the store cannot read now stays open, without a restart, until a later batch repairs it', async (t) => {
  const { store, system, ref, sender, seqs, publish, until } = await lossyRoom(t, 'gap', [2]); // seq 2's delivery is lost
  await publish(1);
  await publish(2);
  // The store fails the gap's read (an outage): seq 3 arrives after a gap it cannot fill.
  const range = store.messages.range.bind(store.messages);
  let failedReads = 0;
  store.messages.range = () => {
    failedReads++;
    return Promise.reject(new Error('connection lost'));
  };
  t.teardown(() => {
    store.messages.range = range;
  });
  await publish(3);
  await ref.ask({ type: 'typing', conn: stubConn(sender) }); // the mailbox has handled the delivery
  t.equal(failedReads, 1, 'the gap was read for');
  t.same(seqs, [1], 'nothing after the gap is delivered past it');
  t.equal(system.metrics().failed, 0, 'the actor did not fail (a restart would start from the stored head and skip the gap)');
  store.messages.range = range;
  await publish(4);
  await until(4);
  t.same(seqs, [1, 2, 3, 4], 'the next batch repairs the gap: every seq once, in order');
});
