// The hourly upkeep prunes robots' stored history by time even when nothing is being stored (a
// robot that went quiet is not pruned by its home): with a short SB_ROBOT_HISTORY_MS, samples
// older than the window go and newer ones stay, for every robot.

import t from 'tap';
import type { Channel } from '../src/protocol/robot.js';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { startRobotHub } from './helpers/robots.js';

const HISTORY_MS = 1_000;
const h = await startRobotHub(t, { env: { SB_ROBOT_HISTORY_MS: String(HISTORY_MS) } });
const LOG: Channel = { id: 2, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' };

function acked(robot: RobotClient, seq: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ACK up to ${seq}`)), 10_000);
    const off = robot.on('ack', (_ch, s) => {
      if (s < seq) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

t.test('samples of an idle robot older than the window are deleted by the upkeep; newer ones stay', async (t) => {
  const owner = await h.signUp('hist');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [LOG]);
  const stored = acked(robot, 3);
  for (let seq = 1; seq <= 3; seq++) robot.reliable(LOG.id, seq, `line ${seq}`);
  await stored;
  await robot.close(); // idle from now on: its home stores nothing, so it prunes nothing
  const read = async () => (await h.api.get(`/api/v1/robots/${r.id}/telemetry/log?limit=100`, { token: owner.token })).body;
  const count = async () => JSON.stringify(await read()).split('"seq"').length - 1;
  t.equal(await count(), 3, 'stored');

  // The upkeep as the hub runs it, now: the samples are within the window.
  const upkeep = (now: number) => h.hub.store.robotTelemetry.pruneExpired(new Date(now - HISTORY_MS));
  t.equal(await upkeep(Date.now()), 0, 'within the window: kept');
  t.equal(await count(), 3);
  // …and as it will run once the window has passed (the clock injected, not waited for).
  t.equal(await upkeep(Date.now() + HISTORY_MS + 1_000), 3, 'past the window: deleted');
  t.equal(await count(), 0, 'REST reads nothing');
});
