// A watch with `since` against a real hub and PostgreSQL, with the smallest backpressure limit:
// the replay runs beside the robot's mailbox, so an e-stop sent right behind a big replay is
// answered while the replay is still going; it is paced by the socket, so a replay many times the
// backpressure limit arrives whole on an open socket; replay and live meet without a gap or a
// repeat while the robot keeps sending; and past MAX_REPLAY_BYTES only the newest samples that fit
// are replayed (a jump in seq), then live goes on.

import t from 'tap';
import { MAX_REPLAY, MAX_REPLAY_BYTES } from '../src/actors/robot-replay.js';
import { approxBytes } from '../src/actors/robot-view.js';
import type { Channel } from '../src/protocol/robot.js';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { startRobotHub } from './helpers/robots.js';

const BACKPRESSURE = 65_536;
const h = await startRobotHub(t, { env: { SB_ROBOT_TELEMETRY_PER_SECOND: '1000000', SB_WS_MAX_BACKPRESSURE_BYTES: String(BACKPRESSURE) } });

const reliable = (id: number, name: string): Channel => ({ id, name, encoding: 'msgpack', schema: null, delivery: 'reliable' });

/** Resolves with the first ACK of `channel` at or above `seq`. */
function acked(robot: RobotClient, channel: number, seq: number, ms = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ACK of ${channel} up to ${seq} within ${ms} ms`));
    }, ms);
    const off = robot.on('ack', (ch, s) => {
      if (ch !== channel || s < seq) return;
      clearTimeout(timer);
      off();
      resolve(s);
    });
  });
}

/** Sends seqs [from, to) of a channel as fast as the link takes them. */
async function pump(robot: RobotClient, ch: number, from: number, to: number, data: (seq: number) => unknown): Promise<void> {
  for (let seq = from; seq < to; seq++) if (!robot.reliable(ch, seq, data(seq), 1_000 + seq)) await robot.drained();
}

const pad = (n: number) => 'x'.repeat(n);

t.test('an e-stop sent right behind a big `since` replay is answered before the replay ends', async (t) => {
  const owner = await h.signUp('estop');
  const r = await h.enroll(owner);
  const channels = [reliable(1, 'a'), reliable(2, 'b'), reliable(3, 'c')];
  const robot = await h.connectRobot(r, channels);
  const PER = MAX_REPLAY;
  for (const c of channels) {
    const done = acked(robot, c.id, PER - 1);
    await pump(robot, c.id, 0, PER, (seq) => ({ seq, pad: pad(900) }));
    await done;
  }
  const estops: string[] = [];
  robot.on('estop', (id) => estops.push(id));

  const w = await h.user(owner);
  // Same socket, one right after the other: the frames it gets are in the order the hub sent them.
  const watching = w.request({ t: 'watch', robot: r.id, since: { a: -1, b: -1, c: -1 } });
  const queued = w.request({ t: 'estop', robot: r.id });
  t.equal((await watching).t, 'watching');
  const stop = await queued;
  t.equal(stop.t, 'queued', 'the e-stop is taken');
  const replayed = await w.take((f) => f.t === 'tm', 3 * PER, 'the whole replay', 60_000);
  const at = (f: unknown) => w.frames.indexOf(f as (typeof w.frames)[number]);
  t.ok(
    at(stop) < at(replayed[replayed.length - 1]),
    `the e-stop's answer (frame ${at(stop)}) did not wait for the replay (its last frame ${at(replayed.at(-1))})`,
  );
  t.ok(at(stop) < at(replayed[PER]), 'it came before the second channel had started');
  t.equal(estops.length, 1, 'the robot got the e-stop');
  for (const c of channels) {
    t.same(
      replayed.filter((f) => f.ch === c.id).map((f) => f.seq),
      [...Array(PER).keys()],
      `channel ${c.name}: every stored sample once, in order`,
    );
  }
  t.equal(w.closeInfo, undefined, 'the watcher is still connected');
});

t.test(`a replay many times the backpressure limit arrives whole, then live, without a gap or a repeat`, async (t) => {
  const owner = await h.signUp('paced');
  const r = await h.enroll(owner);
  const EV = reliable(5, 'events');
  const robot = await h.connectRobot(r, [EV]);
  const STORED = 1_200;
  const SINCE = 599;
  const LAST = 1_599;
  const first = acked(robot, EV.id, STORED - 1);
  await pump(robot, EV.id, 0, STORED, (seq) => ({ seq, pad: pad(1_500) }));
  await first;
  t.ok((STORED - SINCE) * 1_500 > 10 * BACKPRESSURE, 'the replay is more than ten times the backpressure limit');

  // The robot goes on sending while the watcher joins: some live samples fall during the replay.
  const last = acked(robot, EV.id, LAST);
  let sent = STORED;
  const live = (async () => {
    for (; sent <= LAST; sent++) if (!robot.reliable(EV.id, sent, { seq: sent, pad: pad(1_500) }, 1_000 + sent)) await robot.drained();
  })();
  while (sent < STORED + 100) await new Promise((r) => setImmediate(r));
  const w = await h.user(owner);
  t.equal((await w.request({ t: 'watch', robot: r.id, since: { events: SINCE } })).t, 'watching');
  await live;
  await last;
  await w.next((f) => f.t === 'tm' && f.seq === LAST, 'the last live sample', 60_000);
  const seqs = w.all('tm').map((f) => f.seq as number);
  t.same(
    seqs,
    Array.from({ length: LAST - SINCE }, (_, i) => SINCE + 1 + i),
    `every seq from ${SINCE + 1} to ${LAST} exactly once, in order`,
  );
  t.equal(w.closeInfo, undefined, 'the socket was not closed as a slow consumer');
});

t.test(`past ${MAX_REPLAY_BYTES} bytes the newest samples that fit are replayed, then live`, async (t) => {
  const owner = await h.signUp('bytes');
  const r = await h.enroll(owner);
  const EV = reliable(5, 'events');
  const robot = await h.connectRobot(r, [EV]);
  const N = MAX_REPLAY;
  const data = (seq: number) => ({ seq, pad: pad(8_192) });
  const done = acked(robot, EV.id, N - 1);
  await pump(robot, EV.id, 0, N, data);
  await done;
  const fit = Math.floor(MAX_REPLAY_BYTES / approxBytes(data(0)));
  t.ok(fit < N, `the byte cap binds: ${fit} of ${N} fit`);

  const w = await h.user(owner);
  t.equal((await w.request({ t: 'watch', robot: r.id, since: { events: -1 } })).t, 'watching');
  const replayed = await w.take((f) => f.t === 'tm', fit, 'the replay', 60_000);
  robot.reliable(EV.id, N, data(N));
  const next = await w.next((f) => f.t === 'tm', 'the next live sample');
  t.same(
    [...replayed, next].map((f) => f.seq),
    Array.from({ length: fit + 1 }, (_, i) => N - fit + i),
    'the newest that fit, in order (a jump in seq before them), then live without a gap',
  );
  t.equal(w.closeInfo, undefined, 'still connected');
});
