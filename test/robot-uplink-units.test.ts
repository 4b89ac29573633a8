// RobotUplink alone, with a scripted store and link: cumulative ACKs only after the write, one
// batch at a time; duplicates dropped and acknowledged again; a failed write closes the link and
// forgets what waited (so a replay is taken again); at 10,000 samples waiting the link is closed
// rather than one sample skipped; nothing is taken from a link it gave up on.

import { pino } from 'pino';
import t from 'tap';
import type { RobotConnection } from '../src/actors/ports.js';
import { RobotUplink, type UplinkMsg } from '../src/actors/robot-uplink.js';
import type { Channel, HubFrame } from '../src/protocol/robot.js';
import type { Store } from '../src/store/store.js';
import { FakeClock } from './helpers/fake-clock.js';

const LOG: Channel = { id: 2, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' };

function rig(stored: Map<string, number> = new Map()) {
  const writes: { samples: { seq: number }[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  const store = {
    robotTelemetry: {
      lastSeqs: async () => stored,
      insert: (_robot: string, samples: { seq: number }[]) =>
        new Promise<void>((resolve, reject) => {
          writes.push({ samples, resolve, reject });
        }),
      prune: async () => 0,
    },
  } as unknown as Store;
  const mailbox: UplinkMsg[] = [];
  const link = { sent: [] as HubFrame[], closed: false, closedWith: '' as string };
  const conn = {
    get closed() {
      return link.closed;
    },
    send: (f: HubFrame) => {
      link.sent.push(f);
      return true;
    },
    close: (code: string) => {
      link.closed = true;
      link.closedWith = code;
    },
  } as unknown as RobotConnection;
  const current: RobotConnection = conn;
  const ctx = { self: { tell: (m: UplinkMsg) => mailbox.push(m) > 0 }, log: pino({ level: 'silent' }), clock: new FakeClock() };
  const uplink = new RobotUplink(
    'r1',
    ctx,
    store,
    { ms: 60_000, maxSamples: 1_000 },
    () => current,
    () => {},
  );
  /** Lets the pending write settle and hands its outcome to the uplink, as the actor's mailbox would. */
  const settle = async (ok = true) => {
    const w = writes.shift();
    if (!w) throw new Error('no write in flight');
    ok ? w.resolve() : w.reject(new Error('disk full'));
    await new Promise((r) => setImmediate(r));
    for (const m of mailbox.splice(0)) uplink.handle(m);
  };
  const acks = () => link.sent.filter((f) => f.tag === 6).map((f) => (f as { seq: number }).seq);
  return { uplink, writes, link, settle, acks };
}

t.test('ACKs come after the write, cumulative, one batch at a time', async (t) => {
  const { uplink, writes, settle, acks } = rig();
  t.same(await uplink.load([LOG]), [], 'nothing stored');
  for (let seq = 0; seq < 3; seq++) t.ok(uplink.accept(LOG, seq, seq, null));
  t.equal(writes.length, 1, 'one write in flight');
  t.same(
    writes[0]?.samples.map((s) => s.seq),
    [0],
    'the first sample went at once; the others wait',
  );
  t.same(acks(), [], 'no ACK before the write');
  await settle();
  t.same(acks(), [0]);
  t.same(
    writes[0]?.samples.map((s) => s.seq),
    [1, 2],
    'then the waiting ones, as one batch',
  );
  await settle();
  t.same(acks(), [0, 2], 'cumulative');
  t.notOk(uplink.accept(LOG, 1, 0, null), 'a duplicate is dropped');
  t.same(acks(), [0, 2, 2], 'and acknowledged again');
  t.ok(uplink.idle());
});

t.test('a failed write closes the link and forgets what waited: the replay is taken again', async (t) => {
  const { uplink, settle, acks, link } = rig(new Map([['log', 4]]));
  t.same(await uplink.load([LOG]), [[2, 4]], 'WELCOME: what the store has');
  t.notOk(uplink.accept(LOG, 4, 0, null), 'a stored seq is a duplicate');
  uplink.accept(LOG, 5, 0, null);
  uplink.accept(LOG, 6, 0, null);
  await settle(false);
  t.equal(link.closedWith, 'UNAVAILABLE', 'the link is closed');
  t.same(acks(), [4], 'nothing acknowledged past what is stored');
  t.notOk(uplink.accept(LOG, 7, 0, null), 'nothing is taken from the closed link');
  link.closed = false; // the robot reconnected: a new, open link
  t.ok(uplink.accept(LOG, 5, 0, null), 'on a new link the replayed sample is taken again');
});

t.test('at 10,000 samples waiting the link is closed rather than one skipped', async (t) => {
  const { uplink, writes, link, acks } = rig();
  await uplink.load([LOG]);
  let taken = 0;
  for (let seq = 0; seq < 10_002; seq++) if (uplink.accept(LOG, seq, 0, null)) taken++;
  t.equal(writes.length, 1, 'the store never answered the first write');
  t.equal(taken, 10_001, 'one in flight and 10,000 waiting were taken');
  t.equal(link.closedWith, 'UNAVAILABLE', 'the next one closed the link');
  t.same(acks(), []);
});

t.test('quiesce: what waits is forgotten, and the write in flight is waited for before the numbering is read', async (t) => {
  const { uplink, writes, link } = rig();
  await uplink.load([LOG]);
  for (let seq = 1; seq <= 3; seq++) uplink.accept(LOG, seq, 0, null);
  t.equal(writes.length, 1, 'seq 1 in flight, 2 and 3 waiting');
  let done = false;
  const q = uplink.quiesce(5_000).then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  t.notOk(done, 'waits for the write in flight');
  writes[0]?.resolve();
  await q;
  t.ok(done, 'done once it settled');
  t.equal(link.closedWith, 'REPLACED', 'the link what waited came on is closed: nothing later on it may be acknowledged');
  t.same(
    uplink.unstored().map((s) => s.seq),
    [1],
    'the waiting ones are forgotten',
  );
  link.closed = false;
  t.notOk(uplink.accept(LOG, 1, 0, null), 'the one written is still a duplicate');
  t.ok(uplink.accept(LOG, 2, 0, null), 'a forgotten one is taken again when replayed');
});
