// A restarted robot that brings a reliable channel up with ADVERTISE (not HELLO), against a real
// hub and PostgreSQL: the hub reads where the channel's numbering stands and sends
// `ACK [channelId, lastStored]` at once, so the robot numbers above it; its new samples are then
// stored and reach the watcher, not dropped as duplicates of the old ones.

import t from 'tap';
import type { Channel } from '../src/protocol/robot.js';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { startRobotHub } from './helpers/robots.js';

const h = await startRobotHub(t);

const POSE: Channel = { id: 1, name: 'pose', encoding: 'msgpack', schema: null, delivery: 'latest' };
const LOG: Channel = { id: 7, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' };

function acked(robot: RobotClient, channel: number, seq: number, ms = 10_000): Promise<number> {
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

t.test('ADVERTISE of a reliable channel with stored samples: ACK of the last stored, then new numbers are taken', async (t) => {
  const owner = await h.signUp('advack');
  const r = await h.enroll(owner);
  const first = await h.connectRobot(r, [POSE]);
  first.advertise([LOG]);
  t.same([...first.lastStored], []);
  const stored = acked(first, LOG.id, 5);
  for (let seq = 1; seq <= 5; seq++) first.reliable(LOG.id, seq, `old ${seq}`);
  t.equal(await stored, 5);
  await first.close();

  // Restarted: its memory is gone; HELLO without the channel, then ADVERTISE.
  const robot = await h.connectRobot(r, [POSE]);
  t.same([...robot.lastStored], [], 'WELCOME says nothing of a channel the HELLO did not have');
  const w = await h.user(owner);
  await w.request({ t: 'watch', robot: r.id });
  const told = acked(robot, LOG.id, 5);
  robot.advertise([LOG]);
  t.equal(await told, 5, 'the ACK of where the numbering stands, before any sample');
  const next = acked(robot, LOG.id, 6);
  robot.reliable(LOG.id, 6, 'new 6');
  t.equal(await next, 6, 'a sample numbered above it is stored');
  const got = await w.next((f) => f.t === 'tm' && f.ch === LOG.id, 'the new sample at the watcher');
  t.match(got, { seq: 6, data: 'new 6' });
  await robot.close();
});

t.test('ADVERTISE of a reliable channel never stored: no ACK before its samples', async (t) => {
  const owner = await h.signUp('advack2');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [POSE]);
  const acks: number[] = [];
  robot.on('ack', (_ch, s) => acks.push(s));
  robot.advertise([LOG]);
  const stored = acked(robot, LOG.id, 1);
  robot.reliable(LOG.id, 1, 'first');
  await stored;
  t.same(acks, [1], 'only the sample’s own ACK');
  await robot.close();
});
