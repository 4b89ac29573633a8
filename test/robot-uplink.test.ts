// The reliable uplink against a real hub and PostgreSQL: numbered samples of a reliable channel are
// stored, then acknowledged (cumulative ACK); watchers get them with their `seq`; a duplicate is
// dropped (and acknowledged again), whether sent twice on one link or replayed after a reconnect,
// whose WELCOME says what was stored; REST reads the history after a seq; the history keeps at
// most SB_ROBOT_HISTORY_MAX_SAMPLES per channel; a seq on a `latest` channel is refused.

import t from 'tap';
import type { Channel } from '../src/protocol/robot.js';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { startRobotHub, waitUntil } from './helpers/robots.js';

const MAX_SAMPLES = 30;
const h = await startRobotHub(t, { env: { SB_ROBOT_TELEMETRY_PER_SECOND: '100000' } });

const EVENTS: Channel = { id: 5, name: 'events', encoding: 'msgpack', schema: null, delivery: 'reliable' };
const POSE: Channel = { id: 1, name: 'pose', encoding: 'msgpack', schema: null, delivery: 'latest' };

/** Resolves with the first ACK of `channel` at or above `seq`. */
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

t.test('numbered samples are stored, acknowledged, delivered with their seq, and never doubled', async (t) => {
  const owner = await h.signUp('up');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [POSE, EVENTS]);
  t.same([...robot.lastStored], [], 'WELCOME: nothing stored yet');
  const w = await h.user(owner);
  await w.request({ t: 'watch', robot: r.id });

  const acks: [number, number][] = [];
  robot.on('ack', (ch, s) => acks.push([ch, s]));
  const all = acked(robot, EVENTS.id, 9);
  for (let seq = 0; seq < 10; seq++) robot.reliable(EVENTS.id, seq, { n: seq, bytes: Buffer.from([seq]) }, 1_000 + seq);
  t.equal(await all, 9, 'the ACK of the last sample');
  t.ok(
    acks.every(([ch, s], i) => ch === EVENTS.id && (i === 0 || s > (acks[i - 1] as [number, number])[1])),
    `cumulative ACKs, increasing: ${JSON.stringify(acks)}`,
  );
  const got = await w.take((f) => f.t === 'tm' && f.ch === EVENTS.id, 10, 'ten samples');
  t.same(
    got.map((f) => f.seq),
    [...Array(10).keys()],
    'watchers get each sample once, in order, with its seq',
  );

  // Sent again on the same link: dropped, and acknowledged again.
  const again = acked(robot, EVENTS.id, 9);
  robot.reliable(EVENTS.id, 4, { n: 4, dup: true });
  t.equal(await again, 9, 'a duplicate is acknowledged again with what is stored');
  robot.reliable(EVENTS.id, 10, { n: 10 });
  await w.next((f) => f.t === 'tm' && f.seq === 10, 'the next sample');
  t.equal(w.all('tm').filter((f) => f.data?.dup).length, 0, 'the duplicate reached no watcher');

  // Unnumbered samples of a reliable channel still flow, unstored; a seq on a latest channel is refused.
  robot.telemetry(EVENTS.id, { plain: true });
  await w.next((f) => f.t === 'tm' && f.data?.plain === true && f.seq === undefined, 'an unnumbered sample, without seq');
  const refused = new Promise<{ code: string; message: string }>((resolve) => robot.once('hubError', resolve));
  robot.reliable(POSE.id, 1, { x: 1 });
  t.match(await refused, { code: 'VALIDATION', message: /latest channel/ }, 'a seq on a latest channel is a violation');

  // What is stored, over REST: binary as base64, paged with `since`.
  const rest = await h.api.get(`/api/v1/robots/${r.id}/telemetry/events?since=5&limit=3`, { token: owner.token });
  t.equal(rest.status, 200);
  t.same(rest.body.samples, [
    { seq: 6, ts: 1_006, data: { n: 6, bytes: Buffer.from([6]).toString('base64') } },
    { seq: 7, ts: 1_007, data: { n: 7, bytes: Buffer.from([7]).toString('base64') } },
    { seq: 8, ts: 1_008, data: { n: 8, bytes: Buffer.from([8]).toString('base64') } },
  ]);
  const stranger = await h.signUp('nosy');
  t.equal((await h.api.get(`/api/v1/robots/${r.id}/telemetry/events`, { token: stranger.token })).status, 404, 'only those who may watch it');

  // A reconnect: WELCOME says what was stored; a replay of the overlap is dropped.
  await robot.close();
  const back = await h.connectRobot(r, [POSE, EVENTS]);
  t.same([...back.lastStored], [[EVENTS.id, 10]], 'WELCOME: the last stored seq of the reliable channel');
  const replayed = acked(back, EVENTS.id, 12);
  for (let seq = 8; seq <= 12; seq++) back.reliable(EVENTS.id, seq, { n: seq, replay: true });
  await replayed;
  const history = await h.api.get(`/api/v1/robots/${r.id}/telemetry/events?limit=100`, { token: owner.token });
  t.same(
    history.body.samples.map((s: { seq: number }) => s.seq),
    [...Array(13).keys()],
    'the store holds each seq once',
  );
  t.same(
    history.body.samples.filter((s: { data: { replay?: boolean } }) => s.data.replay).map((s: { seq: number }) => s.seq),
    [11, 12],
    'only the samples it did not have came from the replay',
  );
});

t.test('a watch with `since` replays the stored samples, then the live ones: no gap, no repeat', async (t) => {
  const owner = await h.signUp('since');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [POSE, EVENTS]);
  const first = acked(robot, EVENTS.id, 19);
  for (let seq = 0; seq < 20; seq++) robot.reliable(EVENTS.id, seq, { seq });
  robot.telemetry(POSE.id, { x: 1 });
  await first;

  const w = await h.user(owner, 'json');
  const watching = await w.request({ t: 'watch', robot: r.id, since: { events: 14, pose: 0, nosuch: 3 } });
  t.equal(watching.t, 'watching');
  const replayed = await w.take((f) => f.t === 'tm' && f.ch === EVENTS.id, 5, 'the replay');
  t.same(
    replayed.map((f) => f.seq),
    [15, 16, 17, 18, 19],
    'the samples after `since`, in order, right after `watching`',
  );
  t.ok(w.frames.indexOf(watching) < w.frames.indexOf(replayed[0] as (typeof w.frames)[number]), 'after the snapshot');

  // While the robot sends as fast as it can, a watcher joins from the start: it gets every seq once
  // (all of them fit in one replay: at most MAX_REPLAY, 1,000, are replayed per channel).
  const N = 900;
  const last = acked(robot, EVENTS.id, 20 + N - 1, 30_000);
  let sent = 20;
  const pump = (async () => {
    for (; sent < 20 + N; sent++) if (!robot.reliable(EVENTS.id, sent, { seq: sent })) await robot.drained();
  })();
  while (sent < 20 + N / 2) await new Promise((r) => setImmediate(r));
  const late = await h.user(owner);
  await late.request({ t: 'watch', robot: r.id, since: { events: -1 } });
  await pump;
  await last;
  const all = await late.take((f) => f.t === 'tm' && f.ch === EVENTS.id && f.seq === 20 + N - 1, 1, 'the last sample at the late watcher', 30_000);
  t.ok(all.length === 1);
  const seqs = late
    .all('tm')
    .filter((f) => f.ch === EVENTS.id)
    .map((f) => f.seq as number);
  t.same(seqs, [...Array(20 + N).keys()], `every seq from 0 to ${20 + N - 1} exactly once, in order (replay then live)`);
  t.match(await w.request({ t: 'watch', robot: r.id, since: { events: 'x' } }), { t: 'error', code: 'VALIDATION' }, 'since: integers only');
  const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, 0]));
  t.equal((await w.request({ t: 'watch', robot: r.id, since: many(64) })).t, 'watching', 'since: 64 channels');
  t.match(await w.request({ t: 'watch', robot: r.id, since: many(65) }), { t: 'error', code: 'VALIDATION' }, 'since: not 65');
  t.match(await w.request({ t: 'watch', robot: r.id, since: { events: -2 } }), { t: 'error', code: 'VALIDATION' }, 'since: -1 at least');
});

t.test(`the history keeps at most ${MAX_SAMPLES} samples per channel, the newest`, async (t) => {
  const h = await startRobotHub(t, { env: { SB_ROBOT_HISTORY_MAX_SAMPLES: String(MAX_SAMPLES) } });
  const owner = await h.signUp('cap');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [EVENTS]);
  const n = 3 * MAX_SAMPLES;
  const done = acked(robot, EVENTS.id, n - 1);
  for (let seq = 0; seq < n; seq++) robot.reliable(EVENTS.id, seq, seq);
  await done;
  const kept = await waitUntil(
    async () => (await h.api.get(`/api/v1/robots/${r.id}/telemetry/events?limit=1000`, { token: owner.token })).body.samples as { seq: number }[],
    (s) => s.length <= MAX_SAMPLES,
    `pruned to ${MAX_SAMPLES}`,
  );
  t.ok(kept.length > 0, `${kept.length} samples kept`);
  t.equal(kept.at(-1)?.seq, n - 1, 'the newest is kept');
  t.ok((kept[0]?.seq ?? 0) >= n - MAX_SAMPLES, 'the oldest went');
});
