// RobotView's side of a `since` replay, alone, with a recording connection: a watcher replaying a
// channel is not in its topic and its live frames are held; `caughtUp` sends the held frames
// above what the replay covered (none twice), in order, then subscribes; a watcher that falls
// MAX_HELD frames behind while replaying is cut off as a slow consumer; a replaced watch's held
// frames are dropped; other channels go live at once.

import t from 'tap';
import type { Connection } from '../src/actors/ports.js';
import { MAX_HELD, RobotView, type Watcher } from '../src/actors/robot-view.js';
import type { ServerFrame } from '../src/protocol/frames.js';
import { CloseCode } from '../src/protocol/frames.js';
import type { Channel } from '../src/protocol/robot.js';

const LOG: Channel = { id: 1, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' };
const EV: Channel = { id: 2, name: 'ev', encoding: 'json', schema: null, delivery: 'reliable' };

function recorder(id = 'c1') {
  const sent: ServerFrame[] = [];
  const topics = new Set<string>();
  const closes: number[] = [];
  const conn = {
    id,
    user: { id: 'u1', username: 'u' },
    closed: false,
    send: (f: ServerFrame) => sent.push(f),
    writable: () => Promise.resolve(),
    subscribe: (topic: string) => topics.add(topic),
    unsubscribe: (topic: string) => topics.delete(topic),
    close(code: number) {
      closes.push(code);
      this.closed = true;
    },
  };
  return { conn: conn as unknown as Connection, sent, topics, closes };
}

/** Publishes to the recorded connections subscribed to a topic, as uWS does. */
function fanoutOf(conns: ReturnType<typeof recorder>[]) {
  return {
    publish: (topic: string, f: ServerFrame) => {
      for (const c of conns) if (c.topics.has(topic)) c.sent.push(f);
    },
    conflate() {},
  } as unknown as ConstructorParameters<typeof RobotView>[1];
}

const tm = (ch: number, seq: number) => ({ t: 'tm' as const, robot: 'r1', ch, ts: seq, data: seq, seq });
const seqsOf = (sent: ServerFrame[], ch: number) => sent.flatMap((f) => (f.t === 'tm' && f.ch === ch ? [f.seq] : []));
const WATCHING = { t: 'watching' as const, id: 1, name: 'r', role: 'owner' as const, online: true, lease: null };

t.test('held while replaying, released above the fence, in order, then live', async (t) => {
  const c = recorder();
  const v = new RobotView('r1', fanoutOf([c]));
  v.setChannels([LOG, EV]);
  const w: Watcher = { conn: c.conn, userId: 'u1', admin: false };
  v.addWatcher(w, WATCHING, ['log']);
  t.notOk(c.topics.has('robot:r1/ch:log'), 'not in the replayed channel topic');
  t.ok(c.topics.has('robot:r1/ch:ev'), 'in the other channel topic');
  // Live while the replay runs; 10 is a repeat of what the replay covers (fence 10).
  for (const seq of [10, 11, 12]) v.sample(1, seq, seq, tm(1, seq));
  v.sample(2, 1, 1, tm(2, 1));
  t.same(seqsOf(c.sent, 1), [], 'the replayed channel is held');
  t.same(seqsOf(c.sent, 2), [1], 'the other channel is live at once');
  c.sent.push(tm(1, 9), tm(1, 10)); // what the replay sent
  t.ok(v.current(w));
  v.caughtUp(w, new Map([['log', 10]]));
  t.same(seqsOf(c.sent, 1), [9, 10, 11, 12], 'held frames above the fence, after the replay, none twice');
  t.ok(c.topics.has('robot:r1/ch:log'), 'then in the topic');
  v.sample(1, 13, 13, tm(1, 13));
  t.same(seqsOf(c.sent, 1), [9, 10, 11, 12, 13], 'then live');
  v.caughtUp(w, new Map());
  t.same(seqsOf(c.sent, 1), [9, 10, 11, 12, 13], 'a second release does nothing');
});

t.test(`a watcher ${MAX_HELD} frames behind while replaying is cut off`, async (t) => {
  const c = recorder();
  const other = recorder('c2');
  const v = new RobotView('r1', fanoutOf([c, other]));
  v.setChannels([LOG]);
  const w: Watcher = { conn: c.conn, userId: 'u1', admin: false };
  v.addWatcher(w, WATCHING, ['log']);
  v.addWatcher({ conn: other.conn, userId: 'u2', admin: false }, WATCHING);
  for (let seq = 1; seq <= MAX_HELD; seq++) v.sample(1, seq, seq, tm(1, seq));
  t.same(c.closes, [], `${MAX_HELD} held: still there`);
  v.sample(1, MAX_HELD + 1, 0, tm(1, MAX_HELD + 1));
  t.same(c.closes, [CloseCode.SLOW_CONSUMER], 'one more: closed as a slow consumer');
  t.notOk(v.watchers.has('c1'), 'and no longer a watcher');
  t.notOk(v.current(w), 'its replay stops');
  t.equal(seqsOf(other.sent, 1).length, MAX_HELD + 1, 'the other watcher got every frame');
});

t.test('a later watch replaces a replaying one: its held frames go', async (t) => {
  const c = recorder();
  const v = new RobotView('r1', fanoutOf([c]));
  v.setChannels([LOG]);
  const first: Watcher = { conn: c.conn, userId: 'u1', admin: false };
  v.addWatcher(first, WATCHING, ['log']);
  v.sample(1, 1, 1, tm(1, 1));
  const second: Watcher = { conn: c.conn, userId: 'u1', admin: false };
  v.addWatcher(second, WATCHING);
  t.notOk(v.current(first), 'the first replay is no longer wanted');
  v.caughtUp(first, new Map());
  v.sample(1, 2, 2, tm(1, 2));
  t.same(seqsOf(c.sent, 1), [2], 'only live frames after the second watch, each once');
});
