// Unit tests of a robot's home and its followers under a fake clock: each test runs one node's
// robot actor and plays the other nodes through a scripted robot cluster port. They cover what a
// cluster can do to a request that no end-to-end test can reach on cue: a home that freezes past
// the asker's patience, one that falls silent after taking a command, one whose node leaves mid-
// command, a request that reaches the home too late, and a home that hands the robot over.

import t from 'tap';
import { defaultRobotTimings, type Snapshot } from '../src/cluster/robots.js';
import { NoAnswerError } from '../src/errors.js';
import type { ServerFrame } from '../src/protocol/frames.js';
import { type Channel, Tag } from '../src/protocol/robot.js';
import { FakeLink, flush, node, OWNER, ROBOT } from './helpers/robot-actor.js';

const POSE: Channel = { id: 1, name: 'pose', encoding: 'msgpack', schema: null, delivery: 'reliable' } as Channel;

const snapshot = (o: Partial<Snapshot> = {}): Snapshot => ({
  node: 'B',
  epoch: 'b1',
  seq: 5,
  online: true,
  lastSeen: 1,
  channels: [POSE],
  latest: [[1, 10, { x: 1 }]],
  lease: { holder: OWNER, expiresAt: 2_000_000 },
  ...o,
});

/** Node A, following the robot's home B: a watcher there, and the snapshot B sent. */
async function follower(timings = {}) {
  const n = node('A', timings);
  n.cluster.homeNode = 'B';
  const u = n.user('c1');
  const watching = n.robot.ask({ type: 'watch', conn: u, by: n.by, reqId: 1, deadline: n.clock.t + 5_000 });
  const sync = await n.cluster.next('sync');
  sync.resolve(snapshot());
  await watching;
  /** B's next event, numbered after the snapshot's. */
  let seq = 5;
  const hear = (frame: ServerFrame, to?: { node: string; conn: string }) =>
    n.cluster.hear({ kind: 'event', node: 'B', epoch: 'b1', seq: ++seq, frame, ...(to ? { to } : {}) });
  /** Sends a command through B; B's answer to the forwarded request is the test's to give. */
  const command = async (reqId: number, timeoutMs: number) => {
    const done = n.robot.ask({ type: 'command', conn: u, by: n.by, reqId, name: 'go', args: null, deadline: n.clock.t + timeoutMs });
    const asked = await n.cluster.next('cmd');
    return { asked, done };
  };
  return { ...n, u, hear, command };
}

const toC1 = { node: 'A', conn: 'c1' };

t.test('a follower shows the snapshot of the home to a new watcher, then applies its events in order', async (t) => {
  const f = await follower();
  t.match(f.u.of('watching')[0], { online: true, channels: [POSE], latest: [{ ch: 1, ts: 10 }], lease: { holder: OWNER } }, 'the snapshot');
  t.ok(f.cluster.following, 'A follows B while it has a watcher');
  f.cluster.hear({ kind: 'event', node: 'B', epoch: 'b1', seq: 5, frame: { t: 'tm', robot: ROBOT, ch: 1, ts: 11, data: 'old' } });
  f.hear({ t: 'tm', robot: ROBOT, ch: 1, ts: 12, data: 'new' });
  await flush();
  t.same(
    f.u.of('tm').map((m) => m.data),
    ['new'],
    'an event the snapshot already holds is skipped',
  );
  await f.robot.ask({ type: 'unwatch', conn: f.u });
  t.notOk(f.cluster.following, 'and stops following with its last watcher');
});

t.test("a home frozen past the asker's patience: the command it then takes is reported, not refused", async (t) => {
  const f = await follower();
  const { asked, done } = await f.command(2, 20_000);
  t.equal(asked.timeoutMs, defaultRobotTimings.remoteMs, 'A waits its patience for the answer');
  t.match(asked.req, { op: 'cmd', node: 'A', conn: 'c1', reqId: 2, patienceMs: 2_000, remainingMs: 20_000 });
  asked.reject(new NoAnswerError());
  await done;
  t.same(f.u.of('error'), [], 'no answer is not a refusal: the home may still take it');
  f.clock.advance(3_000);
  f.hear({ t: 'queued', id: 2, robot: ROBOT, cmd: 'k1' }, toC1);
  f.hear({ t: 'cmd', robot: ROBOT, cmd: 'k1', stage: 'completed', ts: 1, detail: 'done' }, toC1);
  await flush();
  t.match(f.u.frames.slice(-2), [
    { t: 'queued', id: 2, cmd: 'k1' },
    { t: 'cmd', cmd: 'k1', stage: 'completed', detail: 'done' },
  ]);
  f.clock.advance(30_000);
  await flush();
  t.equal(f.u.of('cmd').length, 1, 'no second outcome after the deadline');
});

t.test('a home silent after taking a command: lost, outcome unknown, after the deadline and the grace; its late stage is not passed on', async (t) => {
  const f = await follower({ remoteGraceMs: 700 });
  const { asked, done } = await f.command(2, 500);
  asked.resolve(undefined);
  await done;
  f.hear({ t: 'queued', id: 2, robot: ROBOT, cmd: 'k1' }, toC1);
  await flush();
  f.clock.advance(1_199);
  await flush();
  t.same(f.u.of('cmd'), [], 'nothing before deadline + grace (500 + 700 ms)');
  f.clock.advance(1);
  await flush();
  t.match(f.u.of('cmd'), [{ cmd: 'k1', stage: 'lost', detail: /no outcome came from the robot's node; it is unknown/ }]);
  f.hear({ t: 'cmd', robot: ROBOT, cmd: 'k1', stage: 'timeout', ts: 1 }, toC1);
  await flush();
  t.equal(f.u.of('cmd').length, 1, 'one final stage only');
});

t.test('a home that never queues the command: the issuer is told its outcome is unknown', async (t) => {
  const f = await follower();
  const { asked, done } = await f.command(2, 1_000);
  asked.reject(new NoAnswerError());
  await done;
  f.clock.advance(1_000 + defaultRobotTimings.remoteGraceMs);
  await flush();
  t.match(f.u.of('error'), [{ id: 2, code: 'UNAVAILABLE', message: /check the audit log/ }]);
  f.hear({ t: 'queued', id: 2, robot: ROBOT, cmd: 'k1' }, toC1);
  await flush();
  t.same(f.u.of('queued'), [], 'a `queued` after that is not passed on');
});

t.test("the home's node leaves mid-command: lost at once, the robot offline, its lease gone", async (t) => {
  const f = await follower();
  const { asked, done } = await f.command(2, 60_000);
  asked.resolve(undefined);
  await done;
  f.hear({ t: 'queued', id: 2, robot: ROBOT, cmd: 'k1' }, toC1);
  f.cluster.hear({ kind: 'lost', node: 'C' });
  await flush();
  t.same(f.u.of('cmd'), [], 'another node leaving changes nothing');
  f.cluster.hear({ kind: 'lost', node: 'B' });
  await flush();
  t.match(f.u.of('cmd'), [{ cmd: 'k1', stage: 'lost', detail: /left the cluster/ }], 'long before the deadline');
  t.match(f.u.of('robot'), [{ kind: 'offline' }]);
  t.match(f.u.of('lease'), [{ lease: null, reason: 'node_lost' }]);
});

t.test('events of a home this node does not know make it sync again, at most once per resyncEveryMs', async (t) => {
  const f = await follower({ resyncEveryMs: 1_000 });
  const stranger = (seq: number) => f.cluster.hear({ kind: 'event', node: 'B', epoch: 'b2', seq, frame: { t: 'tm', robot: ROBOT, ch: 1, ts: seq, data: seq } });
  stranger(1);
  const again = await f.cluster.next('sync');
  again.resolve(snapshot({ epoch: 'b2', seq: 0 }));
  await flush();
  stranger(2);
  await flush();
  t.same(f.cluster.asked, [], 'an event of the new stint right after: no second sync');
  t.same(
    f.u.of('tm').map((m) => m.data),
    [1, 2],
    'the event that revealed the new stint, and the next, reach the watcher',
  );
});

/** Node B with the robot attached: its home. */
async function home() {
  const n = node('B');
  const link = new FakeLink('l1');
  await n.robot.ask({ type: 'attach', conn: link, channels: [POSE] });
  const served = n.cluster.served;
  if (!served) throw new Error('B did not claim the robot');
  const by = n.by;
  const timed = { by, remainingMs: 10_000, patienceMs: 2_000 };
  await served.serve({ op: 'lease', lease: 'acquire', ttlMs: 60_000, force: false, reqId: 1, ...timed }, n.clock.t);
  return { ...n, link, served, timed };
}

t.test('the home claims the robot when it attaches, and numbers its events for the followers', async (t) => {
  const h = await home();
  t.equal(h.cluster.homeNode, 'B');
  t.match(h.cluster.emitted[0], { seq: 1, frame: { t: 'robot', kind: 'online' }, lease: null }, 'online, with the lease at that moment');
  t.match(h.cluster.emitted[1], { seq: 2, frame: { t: 'lease', reason: 'acquired' } });
  const s = await h.served.serve({ op: 'sync' }, h.clock.t);
  t.match(s, { node: 'B', seq: 2, online: true, lease: { holder: OWNER } }, 'a snapshot its events continue from');
  await h.robot.ask({ type: 'telemetry', conn: h.link, channel: 1, ts: 5, payload: 'p' });
  t.match(h.cluster.emitted.at(-1), { seq: 3, frame: { t: 'tm', ch: 1 } });
});

t.test("a request that reached the home after the asker's patience is refused, and its issuer hears it; a stop is not", async (t) => {
  const h = await home();
  const margin = defaultRobotTimings.patienceMarginMs;
  const cmd = (reqId: number) => ({ op: 'cmd' as const, node: 'A', conn: 'c1', reqId, name: 'go', args: null, ...h.timed });
  await t.rejects(h.served.serve(cmd(2), h.clock.t - (2_000 - margin) - 1), { code: 'TIMEOUT' }, 'too late: refused');
  t.match(h.cluster.emitted.at(-1), { to: { node: 'A', conn: 'c1' }, frame: { t: 'error', id: 2, code: 'TIMEOUT' } }, 'the refusal goes to the issuer too');
  t.same(h.link.sent, [], 'and nothing reached the robot');

  await h.served.serve(cmd(3), h.clock.t - (2_000 - margin));
  await flush();
  t.match(h.link.sent, [{ tag: Tag.COMMAND, name: 'go' }], 'just in time: sent');
  t.match(
    h.cluster.emitted.filter((e) => e.to).map((e) => e.frame.t),
    ['error', 'queued', 'cmd'],
    'queued and delivered go to the issuer',
  );

  await h.served.serve({ op: 'estop', node: 'A', conn: 'c1', reqId: 4, ...h.timed }, h.clock.t - 5_000);
  t.match(h.link.sent.at(-1), { tag: Tag.ESTOP }, 'a stop that waited long is sent all the same');
  t.match(
    h.audit.map((a) => a.command),
    ['go', 'estop'],
  );
});

t.test('handoff: the lease goes to the new home, the link here is replaced and its commands end lost', async (t) => {
  const h = await home();
  const u = h.user('c9');
  await h.robot.ask({ type: 'command', conn: u, by: h.by, reqId: 7, name: 'go', args: null, deadline: h.clock.t + 10_000 });
  await flush();
  t.match(u.of('queued'), [{ id: 7 }]);
  const handed = await h.served.serve({ op: 'handoff' }, h.clock.t);
  t.match(handed, { lease: { holder: OWNER, admin: false, expiresAt: h.clock.t + 60_000 } });
  t.equal(h.link.closedWith, 'REPLACED');
  t.match(u.of('cmd').at(-1), { stage: 'lost', detail: /another node/ });
  t.equal(h.cluster.served, undefined, 'B serves the robot no more');
  await t.rejects(h.served.serve({ op: 'sync' }, h.clock.t), { code: 'ROBOT_OFFLINE' }, 'and answers that it is not home');
});

t.test('a home another node took over lets go of the lease and the link', async (t) => {
  const h = await home();
  h.served.moved('C');
  await flush();
  t.equal(h.link.closedWith, 'REPLACED');
  t.equal(h.cluster.served, undefined);
});

t.test('timings come from the deps: a stop waits estopTimeoutMs for the robot', async (t) => {
  const n = node('B', { estopTimeoutMs: 300 });
  const link = new FakeLink('l1');
  await n.robot.ask({ type: 'attach', conn: link, channels: [POSE] });
  const u = n.user('c1');
  await n.robot.ask({ type: 'estop', conn: u, by: n.by, reqId: 1, deadline: n.clock.t + 5_000 });
  n.clock.advance(299);
  await flush();
  t.same(
    u.of('cmd').map((c) => c.stage),
    ['delivered'],
  );
  n.clock.advance(1);
  await flush();
  t.same(
    u.of('cmd').map((c) => c.stage),
    ['delivered', 'timeout'],
  );
});
