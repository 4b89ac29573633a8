// Dynamic channels and per-channel watching across the nodes of a cluster, over real NATS,
// PostgreSQL and TLS: a robot on node A advertises a channel after WELCOME; watchers on node B get
// `channels` (with its schema) and then its samples, a watcher that chose only that channel gets
// nothing of the others, a watch begun on B afterwards sees it in its snapshot, and a withdraw
// stops its samples on B too. Numbered samples sent to A are replayed to a watch with `since` on B.

import t from 'tap';
import type { Hub } from '../src/hub.js';
import type { Channel } from '../src/protocol/robot.js';
import type { Api } from './helpers/api.js';
import { listed, robotCluster } from './helpers/cluster-robots.js';
import type { Frame } from './helpers/ws.js';

t.test('a channel advertised on one node reaches the watchers of another, chosen or not; withdrawn, it stops', async (t) => {
  const { nodes, apis, signUp, enroll, attach, user } = await robotCluster(t, 2);
  const [a, b] = nodes as [Hub, Hub];
  const [, apiB] = apis as [Api, Api];
  const owner = await signUp('own');
  const r = await enroll(owner);
  const robot = await attach(a, r); // channels 1 (pose, latest) and 2 (log, reliable)
  await listed(apiB, r, owner);

  const every = await user(b, owner);
  const chooser = await user(b, owner);
  await every.request({ t: 'watch', robot: r.id });
  t.match(
    await chooser.request({ t: 'watch', robot: r.id, channels: ['scan'] }),
    { t: 'watching', online: true },
    'a channel not advertised yet may be chosen',
  );

  const scan: Channel = {
    id: 5,
    name: 'scan',
    encoding: 'cdr',
    schema: 'sensor_msgs/msg/LaserScan',
    delivery: 'reliable',
    schemaEncoding: 'ros2msg',
    schemaData: 'float32 angle_min\nfloat32 angle_max\nfloat32[] ranges\n',
  };
  robot.advertise([scan]);
  for (let i = 0; i < 5; i++) robot.telemetry(5, { i });
  robot.telemetry(2, { line: 'log' });
  robot.telemetry(1, { x: 1, y: 2, theta: 0 });

  for (const [w, who] of [
    [every, 'the watcher of every channel'],
    [chooser, 'the watcher of `scan`'],
  ] as const) {
    const ch = await w.next((f) => f.t === 'channels', `channels at ${who} on B`);
    t.same(
      ch.channels.map((c: Frame) => c.name),
      ['pose', 'log', 'scan'],
      `${who}: the whole list`,
    );
    t.match(ch.channels[2], { schemaEncoding: 'ros2msg', schemaData: scan.schemaData as string }, `${who}: with its schema`);
    const samples = await w.take((f) => f.t === 'tm' && f.ch === 5, 5, `the samples of scan at ${who}`);
    t.same(
      samples.map((f) => f.data.i),
      [0, 1, 2, 3, 4],
      `${who}: every sample, in order`,
    );
    t.ok(w.frames.indexOf(ch) < w.frames.indexOf(samples[0] as Frame), `${who}: \`channels\` first`);
  }
  await every.next((f) => f.t === 'tm' && f.ch === 1, 'the pose at the watcher of all');
  await every.next((f) => f.t === 'tm' && f.ch === 2, 'the log at the watcher of all');
  await chooser.barrier();
  t.equal(chooser.all('tm').filter((f) => f.ch !== 5).length, 0, 'the watcher of `scan` got no sample of another channel');

  const late = await user(b, owner);
  const snap = await late.request({ t: 'watch', robot: r.id, channels: ['scan'] });
  t.match(snap.channels[2], { name: 'scan', schemaEncoding: 'ros2msg' }, 'a watch begun on B later has the channel in its snapshot');
  t.same(
    snap.latest.map((s: Frame) => s.ch),
    [5],
    "and only its chosen channel's newest sample",
  );
  const status = await apiB.get(`/api/v1/robots/${r.id}/status`, { token: owner.token });
  t.match(status.body.status.channels[2], { name: 'scan', schemaData: scan.schemaData as string }, 'REST status on B');

  robot.withdraw([5]);
  for (const w of [every, chooser, late]) {
    const ch = await w.next((f) => f.t === 'channels', 'channels after the withdraw');
    t.same(
      ch.channels.map((c: Frame) => c.name),
      ['pose', 'log'],
      'the channel is gone from the list on B',
    );
  }
  robot.telemetry(5, { i: 99 });
  robot.telemetry(2, { line: 'marker' });
  await every.next((f) => f.t === 'tm' && f.ch === 2 && f.data.line === 'marker', 'a later log line');
  t.equal(every.all('tm').filter((f) => f.ch === 5 && f.data.i === 99).length, 0, 'a sample on the withdrawn channel reached nobody');

  // The reliable uplink through node A, replayed to a watch with `since` on node B, then live.
  const stored = new Promise<void>((resolve) => {
    const off = robot.on('ack', (ch, seq) => {
      if (ch === 2 && seq === 49) {
        off();
        resolve();
      }
    });
  });
  for (let seq = 0; seq < 50; seq++) robot.reliable(2, seq, { seq });
  await stored;
  const replayer = await user(b, owner);
  await replayer.request({ t: 'watch', robot: r.id, channels: ['log'], since: { log: 39 } });
  for (let seq = 50; seq < 60; seq++) robot.reliable(2, seq, { seq });
  const got = await replayer.take((f) => f.t === 'tm' && f.ch === 2, 20, 'replay then live on B');
  t.same(
    got.map((f) => f.seq),
    [...Array(20).keys()].map((i) => 40 + i),
    'on another node: the stored samples after `since`, then the live ones, each once',
  );
});
