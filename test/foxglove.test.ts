// The /foxglove endpoint, driven by Foxglove's own protocol client (`@foxglove/ws-protocol`) as an
// outside client: a robot's channels are advertised, subscribed channels stream their samples (and
// only those), a changed channel gets a new id, and the endpoint holds the hub's limits: the same
// authentication as /ws, per-robot authorisation, refusals with reasons, bad messages counted.

import t, { type Test } from 'tap';
import WebSocket from 'ws';
import type { Channel } from '../src/protocol/robot.js';
import { foxgloveChannel, foxglovePayload, messageData } from '../src/transport/foxglove.js';
import { type Ev, FoxgloveClient, json, openFoxglove } from './helpers/foxglove.js';
import { CHANNELS, startRobotHub, type User } from './helpers/robots.js';

const h = await startRobotHub(t, { env: { SB_WS_MAX_VIOLATIONS: '3' } });

const open = (t: Test, u: User, robot: string) => openFoxglove(t, h.hub.url, u.token, robot);

/** An upgrade expected to be refused: its HTTP status and JSON error code. */
function refused(target: string, protocols: string[], headers: Record<string, string> = {}): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target, protocols, { headers });
    ws.on('error', () => {});
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d;
      });
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, code: JSON.parse(text).error.code });
      });
    });
  });
}

t.test('the owner opens a robot: channels advertised, subscribed channels stream, others stay silent', async (t) => {
  const owner = await h.signUp('fox');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r);
  const fox = await open(t, owner, r.id);
  t.match(fox.frames[0], { kind: 'serverInfo', metadata: { robot: r.id } }, 'serverInfo comes first and names the robot');
  const ad = (await fox.next((e) => e.kind === 'advertise' && e.channels.length > 0, 'advertise')) as Extract<Ev, { kind: 'advertise' }>;
  t.match(
    ad.channels.map((c) => [c.topic, c.encoding, c.schemaName]).sort(),
    [
      ['/log', 'json', ''],
      ['/pose', 'json', 'geometry_msgs/Pose2D'],
    ],
    'both channels, as JSON (the hub decodes MessagePack payloads)',
  );

  const sub = fox.client.subscribe(fox.channel('/pose'));
  // The subscription reaches the robot's actor as a new watch: a sample sent after it arrives.
  // Until then, samples may not; so send until the first one lands, each numbered.
  let i = 0;
  const first = fox.next((e) => e.kind === 'message', 'the first pose sample');
  const pump = setInterval(() => robot.telemetry(1, { x: i++, y: 0, theta: 0 }, 1_795_317_766_000 + i), 20);
  const m = (await first.finally(() => clearInterval(pump))) as Extract<Ev, { kind: 'message' }>;
  t.equal(m.sub, sub, 'the message carries our subscription id');
  t.match(json(m), { y: 0, theta: 0 }, 'the payload is the sample as JSON');
  t.equal(m.ts % 1_000_000n, 0n, 'the timestamp is the robot ms timestamp in ns');

  // Log samples (not subscribed) and then a marker pose sample: the marker arrives, no log before it.
  for (let n = 0; n < 20; n++) robot.telemetry(2, { line: `log ${n}` });
  robot.telemetry(1, { x: -1, y: 0, theta: 0 });
  await fox.next((e) => e.kind === 'message' && json(e).x === -1, 'the marker pose sample');
  t.notOk(
    fox.frames.some((e) => e.kind === 'message' && 'line' in json(e)),
    'no sample of the unsubscribed channel arrived',
  );

  fox.client.unsubscribe(sub);
  const logSub = fox.client.subscribe(fox.channel('/log'));
  const newest = await fox.next((e) => e.kind === 'message' && e.sub === logSub, "the channel's newest sample");
  t.match(json(newest), { line: 'log 19' }, 'a new subscription gets the newest sample at once (the state now)');
  const pumpLog = setInterval(() => robot.telemetry(2, { line: 'after' }), 20);
  await fox.next((e) => e.kind === 'message' && e.sub === logSub && json(e).line === 'after', 'a live log sample').finally(() => clearInterval(pumpLog));
  robot.telemetry(1, { x: -2, y: 0, theta: 0 });
  robot.telemetry(2, { line: 'marker' });
  await fox.next((e) => e.kind === 'message' && json(e).line === 'marker', 'the log marker');
  t.notOk(
    fox.frames.some((e) => e.kind === 'message' && json(e).x === -2),
    'after unsubscribe, pose samples stop',
  );
});

t.test('binary encodings pass through with their schema; a changed channel gets a new id', async (t) => {
  const owner = await h.signUp('foxbin');
  const r = await h.enroll(owner);
  const cdr = {
    id: 3,
    name: 'odom',
    encoding: 'cdr',
    schema: 'nav_msgs/msg/Odometry',
    delivery: 'latest',
    schemaEncoding: 'ros2msg',
    schemaData: 'std_msgs/Header header\nstring child_frame_id',
  } as Channel;
  let robot = await h.connectRobot(r, [cdr]);
  const fox = await open(t, owner, r.id);
  await fox.next((e) => e.kind === 'advertise' && e.channels.length > 0, 'advertise');
  const ch = fox.frames.flatMap((e) => (e.kind === 'advertise' ? e.channels : [])).find((c) => c.topic === '/odom');
  t.match(ch, { encoding: 'cdr', schemaName: 'nav_msgs/msg/Odometry', schemaEncoding: 'ros2msg', schema: /child_frame_id/ }, 'CDR with its ROS 2 schema');
  const sub = fox.client.subscribe(fox.channel('/odom'));
  const bytes = Buffer.from([0, 1, 0, 0, 9, 8, 7, 6]);
  const got = fox.next((e) => e.kind === 'message' && e.sub === sub, 'a CDR sample');
  const pump = setInterval(() => robot.telemetry(3, bytes), 20);
  const m = (await got.finally(() => clearInterval(pump))) as Extract<Ev, { kind: 'message' }>;
  t.same(m.bytes, bytes, 'the payload bytes arrive as the robot sent them');

  // The robot reconnects with channel 3 now JSON: Foxglove must not reuse the id for it.
  robot.destroy();
  await fox.next((e) => e.kind === 'status' && /offline/.test(e.message), 'the robot offline');
  robot = await h.connectRobot(r, [{ id: 3, name: 'odom', encoding: 'json', schema: null, delivery: 'latest' }]);
  const gone = (await fox.next((e) => e.kind === 'unadvertise', 'unadvertise')) as Extract<Ev, { kind: 'unadvertise' }>;
  t.same(gone.ids, [ch?.id], 'the old channel is unadvertised');
  const again = (await fox.next((e) => e.kind === 'advertise' && e.channels.length > 0, 'advertise again')) as Extract<Ev, { kind: 'advertise' }>;
  t.not(again.channels[0]?.id, ch?.id, 'the changed channel has a new id');
  t.equal(again.channels[0]?.encoding, 'json');
});

t.test('authorisation: a stranger is told and closed; a viewer may watch; the upgrade refuses what /ws refuses', async (t) => {
  const owner = await h.signUp('foxown');
  const stranger = await h.signUp('foxstr');
  const viewer = await h.signUp('foxview');
  const r = await h.enroll(owner);
  await h.grant(owner, r.id, viewer, 'viewer');

  const s = await open(t, stranger, r.id);
  const status = await s.next((e) => e.kind === 'status' && e.level === 2, 'an error status');
  t.match(status, { message: /no such robot, or you may not watch it/ });
  const closed = await s.next((e) => e.kind === 'close', 'the close');
  t.match(closed, { code: 1008 }, 'closed with policy violation');

  const v = await open(t, viewer, r.id);
  await v.next((e) => e.kind === 'advertise', 'an advertise for the viewer');

  const base = `${h.hub.url.replace(/^http/, 'ws')}/foxglove`;
  t.match(await refused(`${base}?robot=${r.id}`, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]), { status: 401, code: 'UNAUTHENTICATED' }, 'no token');
  t.match(await refused(`${base}?robot=${r.id}&token=nonsense`, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]), { status: 401, code: 'TOKEN_INVALID' });
  t.match(
    await refused(`${base}?robot=nope&token=${owner.token}`, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]),
    { status: 400, code: 'VALIDATION' },
    'a robot id that is no UUID',
  );
  t.match(await refused(`${base}?robot=${r.id}&token=${owner.token}`, ['sb.v1.json']), { status: 400, code: 'VALIDATION' }, 'no Foxglove subprotocol offered');
  const cookie = await refused(`${base}?robot=${r.id}`, [FoxgloveClient.SUPPORTED_SUBPROTOCOL], {
    cookie: `sb_access=${owner.token}`,
    origin: 'https://evil.example',
  });
  t.match(cookie, { status: 403, code: 'FORBIDDEN' }, 'a cookie from a foreign origin');
  const plain = await fetch(`${h.hub.url}/foxglove`);
  t.equal(plain.status, 426, 'a GET that is no upgrade is told to upgrade');

  // Access revoked while open: the watch ends, the socket is told and closed.
  const revoke = await h.api.request('DELETE', `/api/v1/robots/${r.id}/grants/${viewer.id}`, undefined, { token: owner.token });
  t.equal(revoke.status, 204);
  await v.next((e) => e.kind === 'status' && e.level === 2 && /no longer/.test(e.message), 'told access was revoked');
  await v.next((e) => e.kind === 'close', 'closed after revocation');
});

t.test('bad messages get an error status and count as violations until the socket is closed', async (t) => {
  const owner = await h.signUp('foxbad');
  const r = await h.enroll(owner);
  await h.connectRobot(r, CHANNELS);
  const fox = await open(t, owner, r.id);
  await fox.next((e) => e.kind === 'advertise', 'advertise');
  fox.ws.send('{not json');
  await fox.next((e) => e.kind === 'status' && e.message === 'not JSON', 'not JSON');
  fox.ws.send(JSON.stringify({ op: 'getParameters', parameterNames: [] }));
  await fox.next((e) => e.kind === 'status' && /unsupported op/.test(e.message), 'unsupported op');
  fox.ws.send(JSON.stringify({ op: 'subscribe', subscriptions: [{ id: -1, channelId: 1 }] }));
  await fox.next((e) => e.kind === 'status' && /unsigned 32-bit/.test(e.message), 'bad subscription');
  // A subscription to a channel that does not exist is a warning, not a violation.
  fox.ws.send(JSON.stringify({ op: 'subscribe', subscriptions: [{ id: 7, channelId: 9999 }] }));
  await fox.next((e) => e.kind === 'status' && e.level === 1 && /no channel 9999/.test(e.message), 'unknown channel warning');
  fox.ws.send(Buffer.from([1, 0, 0, 0, 0]));
  await fox.next((e) => e.kind === 'status' && /binary/.test(e.message), 'binary refused');
  const closed = await fox.next((e) => e.kind === 'close', 'the close after the fourth violation');
  t.match(closed, { code: 4101 }, 'closed as a protocol violation past SB_WS_MAX_VIOLATIONS (3)');
});

t.test('channel mapping and message framing (units)', async (t) => {
  const base = { id: 1, name: 'x', schema: null, delivery: 'latest' } as const;
  t.same(
    foxgloveChannel({ ...base, encoding: 'msgpack' }),
    { topic: '/x', encoding: 'json', schemaName: '', schema: '' },
    'MessagePack reads as schemaless JSON',
  );
  t.same(
    foxgloveChannel({ ...base, name: '/a/b', encoding: 'json', schemaEncoding: 'jsonschema', schemaData: '{"type":"object"}' } as Channel),
    { topic: '/a/b', encoding: 'json', schemaName: '', schema: '{"type":"object"}', schemaEncoding: 'jsonschema' },
    'a JSON Schema goes along; a topic that starts with / is kept',
  );
  t.same(
    foxgloveChannel({ ...base, encoding: 'protobuf', schema: 'pkg.Msg', schemaEncoding: 'protobuf', schemaData: new Uint8Array([1, 2, 3]) } as Channel),
    { topic: '/x', encoding: 'protobuf', schemaName: 'pkg.Msg', schema: 'AQID', schemaEncoding: 'protobuf' },
    'a binary schema (a FileDescriptorSet) goes as base64',
  );
  t.equal(
    foxgloveChannel({ ...base, encoding: 'raw', schemaEncoding: 'ros2msg', schemaData: 'int32 a' } as Channel).schema,
    '',
    'a non-JSON schema is not offered for a JSON channel',
  );
  t.same(foxglovePayload('json', { a: new Uint8Array([255]) }), Buffer.from('{"a":"/w=="}'), 'bytes inside a JSON payload become base64');
  t.equal(foxglovePayload('json', { big: 1n }), undefined, 'a value JSON cannot carry is skipped');
  const sample = { x: 1 };
  t.equal(foxglovePayload('json', sample), foxglovePayload('json', sample), 'a sample is encoded once for every Foxglove watcher (the same bytes)');
  t.equal(foxglovePayload('cdr', { not: 'bytes' }), undefined, 'a binary channel needs bytes');
  const m = messageData(0xfffffffe, 1_795_317_766_218, new Uint8Array([42]));
  t.equal(m[0], 1, 'opcode 1');
  t.equal(m.readUInt32LE(1), 0xfffffffe, 'subscription id, little-endian');
  t.equal(m.readBigUInt64LE(5), 1_795_317_766_218_000_000n, 'timestamp in ns, little-endian');
  t.same([...m.subarray(13)], [42], 'then the payload');
});

t.test('a channel the robot advertises while connected appears in Foxglove; a withdrawn one goes', async (t) => {
  const owner = await h.signUp('foxdyn');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, CHANNELS);
  const fox = await open(t, owner, r.id);
  await fox.next((e) => e.kind === 'advertise' && e.channels.length === 2, 'the first two channels');
  const schema = '{"type":"object","properties":{"pct":{"type":"number"}}}';
  robot.advertise([{ id: 5, name: 'battery', encoding: 'msgpack', schema: 'Battery', delivery: 'latest', schemaEncoding: 'jsonschema', schemaData: schema }]);
  const ad = (await fox.next((e) => e.kind === 'advertise' && e.channels.some((c) => c.topic === '/battery'), 'the new channel')) as Extract<
    Ev,
    { kind: 'advertise' }
  >;
  t.match(
    ad.channels,
    [{ topic: '/battery', encoding: 'json', schemaName: 'Battery', schemaEncoding: 'jsonschema', schema }],
    'only the new channel, with its JSON Schema',
  );
  const sub = fox.client.subscribe(fox.channel('/battery'));
  const got = fox.next((e) => e.kind === 'message' && e.sub === sub, 'a battery sample');
  const pump = setInterval(() => robot.telemetry(5, { pct: 81.5 }), 20);
  t.match(json(await got.finally(() => clearInterval(pump))), { pct: 81.5 });
  robot.withdraw([5]);
  const gone = (await fox.next((e) => e.kind === 'unadvertise', 'the withdrawal')) as Extract<Ev, { kind: 'unadvertise' }>;
  t.same(gone.ids, [ad.channels[0]?.id], 'the battery channel is unadvertised');
});

t.test('two subscriptions in a row each get their channel newest sample at once', async (t) => {
  const owner = await h.signUp('foxfresh');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, CHANNELS);
  const fox = await open(t, owner, r.id);
  await fox.next((e) => e.kind === 'advertise' && e.channels.length === 2, 'advertise');
  // A /ws watcher sees the log line after the pose sample: by then the hub holds both as newest.
  const watcher = await h.user(owner);
  await watcher.request({ t: 'watch', robot: r.id });
  robot.telemetry(1, { x: 7, y: 0, theta: 0 });
  robot.telemetry(2, { line: 'newest' });
  await watcher.next((f) => f.t === 'tm' && f.data?.line === 'newest', 'the log line at the /ws watcher');
  // The second subscribe is sent before the first one's watch is answered.
  const pose = fox.client.subscribe(fox.channel('/pose'));
  const log = fox.client.subscribe(fox.channel('/log'));
  const [a, b] = await Promise.all([
    fox.next((e) => e.kind === 'message' && e.sub === pose, 'the newest pose'),
    fox.next((e) => e.kind === 'message' && e.sub === log, 'the newest log line'),
  ]);
  t.match(json(a), { x: 7 });
  t.match(json(b), { line: 'newest' });
});
