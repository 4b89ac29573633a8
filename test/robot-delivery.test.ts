// Delivery classes under a slow watcher. A `latest` channel never queues stale samples for a
// watcher that stopped reading: its socket buffer stays near a quarter of the backpressure limit,
// at most one held frame per channel waits, and when it reads again it gets the newest sample.
// A `reliable` channel delivers every frame in order to a watcher that keeps up, and a watcher
// that stops reading is cut off at the backpressure limit instead of growing the hub's memory.

import t from 'tap';
import type { Channel } from '../src/protocol/robot.js';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { startRobotHub } from './helpers/robots.js';
import type { Frame } from './helpers/ws.js';

const BACKPRESSURE = 262_144;
const h = await startRobotHub(t, {
  env: { SB_WS_MAX_BACKPRESSURE_BYTES: String(BACKPRESSURE), SB_ROBOT_TELEMETRY_PER_SECOND: '1000000' },
});

const LATEST: Channel[] = [{ id: 7, name: 'camera', encoding: 'raw', schema: null, delivery: 'latest' }];
const RELIABLE: Channel[] = [{ id: 8, name: 'events', encoding: 'msgpack', schema: null, delivery: 'reliable' }];
const FRAMES = 2_000;
const PAYLOAD = 'x'.repeat(4_096);

/** Sends FRAMES samples numbered 0.. on `ch`, waiting for the TLS socket to drain when it must. */
async function blast(robot: RobotClient, ch: number): Promise<void> {
  for (let i = 0; i < FRAMES; i++) {
    if (!robot.telemetry(ch, { i, pad: PAYLOAD })) await robot.drained();
  }
}

const isSample = (ch: number, i?: number) => (f: Frame) => f.t === 'tm' && f.ch === ch && (i === undefined || f.data.i === i);

t.test('latest: a slow watcher costs a bounded buffer and gets the newest sample when it reads again', async (t) => {
  const owner = await h.signUp('lat');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, LATEST);
  const slow = await h.user(owner);
  const fast = await h.user(owner);
  await slow.request({ t: 'watch', robot: r.id });
  await fast.request({ t: 'watch', robot: r.id });

  slow.ws.pause();
  let peakBuffered = 0;
  let peakHeld = 0;
  const sampler = setInterval(() => {
    const s = h.hub.ws.stats();
    peakBuffered = Math.max(peakBuffered, s.maxBufferedBytes);
    peakHeld = Math.max(peakHeld, s.heldFrames);
  }, 5);
  await blast(robot, 7);
  await fast.next(isSample(7, FRAMES - 1), 'the last sample at the fast watcher', 30_000);
  const during = h.hub.ws.stats();
  clearInterval(sampler);

  t.ok(peakHeld >= 1, `the slow watcher had samples held back (peak ${peakHeld})`);
  t.ok(peakHeld <= 2, `at most one held sample per channel per congested watcher (peak ${peakHeld})`);
  const frameBytes = PAYLOAD.length + 200;
  t.ok(
    peakBuffered <= BACKPRESSURE / 4 + frameBytes,
    `no socket buffered more than a quarter of the limit plus one frame (peak ${peakBuffered} of ${BACKPRESSURE})`,
  );
  t.ok(during.heldFrames <= 1, 'one stale sample waits for the slow watcher, not a queue');
  t.equal(slow.closeInfo, undefined, 'the slow watcher is not cut off');

  slow.ws.resume();
  await slow.next(isSample(7, FRAMES - 1), 'the newest sample at the slow watcher once it reads', 30_000);
  const got = slow.all('tm').length;
  t.ok(got < FRAMES, `the slow watcher skipped stale samples (${got} of ${FRAMES})`);
  const fastGot = fast.all('tm').map((f) => f.data.i as number);
  t.ok(
    fastGot.every((v, i) => i === 0 || v > (fastGot[i - 1] as number)),
    'what a watcher gets of a latest channel is always newer than what it had',
  );
  t.equal(h.hub.ws.stats().heldFrames, 0, 'nothing is held once everyone has drained');
});

t.test('reliable: every frame in order for a watcher that keeps up; one that stops reading is cut off', async (t) => {
  const owner = await h.signUp('rel');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, RELIABLE);
  const slow = await h.user(owner);
  const fast = await h.user(owner);
  await slow.request({ t: 'watch', robot: r.id });
  await fast.request({ t: 'watch', robot: r.id });

  slow.ws.pause();
  await blast(robot, 8);
  const frames = await fast.take(isSample(8), FRAMES, 'every reliable sample', 30_000);
  t.same(
    frames.map((f) => f.data.i),
    Array.from({ length: FRAMES }, (_, i) => i),
    'the fast watcher got all of them, in order',
  );
  slow.ws.resume();
  const closed = await slow.waitClose(30_000);
  t.equal(closed.code, 4001, 'the slow watcher was cut off with 4001 SLOW_CONSUMER');
  t.ok(slow.all('tm').length < FRAMES, 'it did not receive everything (it must re-watch)');
  t.ok(h.hub.ws.stats().maxBufferedBytes <= BACKPRESSURE, 'no socket holds more than the backpressure limit');
});
