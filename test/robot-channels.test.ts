// Per-channel watching and dynamic channels on one node. A watcher that chose light channels gets
// no byte of a heavy one (reliable or latest) while a watcher of every channel gets both; its
// `watching` snapshot carries only its channels' latest samples, and a later `watch` replaces the
// choice. A robot advertises a channel after WELCOME (with a schema, text or binary): watchers get
// `channels` and then its samples, a watcher that chose it before it existed included; a withdrawn
// channel's samples are refused at the link and reach nobody.

import t from 'tap';
import type { Channel } from '../src/protocol/robot.js';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { startRobotHub } from './helpers/robots.js';
import type { Frame, RawClient } from './helpers/ws.js';

const h = await startRobotHub(t, { env: { SB_ROBOT_TELEMETRY_PER_SECOND: '100000' } });

const HEAVY_RELIABLE: Channel = { id: 1, name: 'camera', encoding: 'raw', schema: null, delivery: 'reliable' };
const HEAVY_LATEST: Channel = { id: 2, name: 'lidar', encoding: 'raw', schema: null, delivery: 'latest' };
const LIGHT_RELIABLE: Channel = { id: 3, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' };
const LIGHT_LATEST: Channel = { id: 4, name: 'battery', encoding: 'msgpack', schema: null, delivery: 'latest' };
const HEAVY = 16_384;
const FRAMES = 200;

/** Counts the bytes of every WebSocket message the client receives from now on. */
function countBytes(c: RawClient): { bytes: number } {
  const n = { bytes: 0 };
  c.ws.on('message', (data: Buffer) => {
    n.bytes += data.length;
  });
  return n;
}

const tm =
  (ch: number, pred: (f: Frame) => boolean = () => true) =>
  (f: Frame) =>
    f.t === 'tm' && f.ch === ch && pred(f);

/** Sends `n` samples numbered 0.. on `ch`, waiting for the TLS socket to drain when it must. */
async function send(robot: RobotClient, ch: number, n: number, pad: Buffer | null): Promise<void> {
  for (let i = 0; i < n; i++) if (!robot.telemetry(ch, { i, pad })) await robot.drained();
}

t.test('a watcher of light channels gets no frame of a heavy one; a watcher of every channel gets both', async (t) => {
  const owner = await h.signUp('chan');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [HEAVY_RELIABLE, HEAVY_LATEST, LIGHT_RELIABLE, LIGHT_LATEST]);
  const light = await h.user(owner);
  const all = await h.user(owner, 'json');
  const lightBytes = countBytes(light);
  const allBytes = countBytes(all);
  const w = await light.request({ t: 'watch', robot: r.id, channels: ['log', 'battery'] });
  t.equal(w.t, 'watching');
  t.equal(w.channels.length, 4, 'the snapshot lists every channel, chosen or not: the watcher needs them to choose');
  t.equal((await all.request({ t: 'watch', robot: r.id })).t, 'watching');

  const pad = Buffer.alloc(HEAVY, 7);
  await send(robot, HEAVY_RELIABLE.id, FRAMES, pad);
  await send(robot, HEAVY_LATEST.id, FRAMES, pad);
  robot.telemetry(LIGHT_RELIABLE.id, { i: 'last' });
  robot.telemetry(LIGHT_LATEST.id, { i: 'last' });

  // The light samples were sent after every heavy one: once they arrive (and a ping round trip
  // after them), whatever heavy frame was ever going to reach the light watcher has.
  await light.next(
    tm(LIGHT_RELIABLE.id, (f) => f.data.i === 'last'),
    'the light reliable sample',
  );
  await light.next(
    tm(LIGHT_LATEST.id, (f) => f.data.i === 'last'),
    'the light latest sample',
  );
  await light.barrier();
  await all.next(
    tm(HEAVY_RELIABLE.id, (f) => f.data.i === FRAMES - 1),
    'the last heavy reliable sample at the watcher of all',
    30_000,
  );
  await all.next(
    tm(HEAVY_LATEST.id, (f) => f.data.i === FRAMES - 1),
    'the newest heavy latest sample at the watcher of all',
    30_000,
  );
  await all.next(
    tm(LIGHT_RELIABLE.id, (f) => f.data.i === 'last'),
    'the light sample at the watcher of all',
  );

  const heavyAtLight = light.all('tm').filter((f) => f.ch === HEAVY_RELIABLE.id || f.ch === HEAVY_LATEST.id);
  t.equal(heavyAtLight.length, 0, 'not one heavy frame reached the light watcher');
  t.ok(lightBytes.bytes < 4_096, `the light watcher received ${lightBytes.bytes} bytes in all`);
  t.equal(all.all('tm').filter((f) => f.ch === HEAVY_RELIABLE.id).length, FRAMES, 'the watcher of all got every reliable heavy sample');
  t.ok(allBytes.bytes > FRAMES * HEAVY, `the watcher of all received ${allBytes.bytes} bytes (base64 heavy payloads)`);

  // A later watch replaces the choice: the snapshot now carries the heavy latest channel's newest
  // sample, and its samples flow; the light ones stop.
  const again = await light.request({ t: 'watch', robot: r.id, channels: ['lidar'] });
  t.same(
    again.latest.map((s: Frame) => s.ch),
    [HEAVY_LATEST.id],
    "the snapshot's latest holds only the chosen channels' samples",
  );
  robot.telemetry(LIGHT_RELIABLE.id, { i: 'after' });
  robot.telemetry(HEAVY_LATEST.id, { i: 'after', pad: null });
  await light.next(
    tm(HEAVY_LATEST.id, (f) => f.data.i === 'after'),
    'the newly chosen channel',
  );
  await all.next(
    tm(LIGHT_RELIABLE.id, (f) => f.data.i === 'after'),
    'the light sample at the watcher of all',
  );
  await light.barrier();
  t.equal(light.all('tm').filter((f) => f.data.i === 'after' && f.ch === LIGHT_RELIABLE.id).length, 0, 'a channel no longer chosen stops');

  // Watching every channel again (no `channels`) brings back all of them.
  await light.request({ t: 'watch', robot: r.id });
  robot.telemetry(HEAVY_RELIABLE.id, { i: 'whole', pad: null });
  await light.next(
    tm(HEAVY_RELIABLE.id, (f) => f.data.i === 'whole'),
    'a heavy sample once every channel is watched again',
  );
});

t.test('watch: at most 64 channel names, each 1 to 64 characters', async (t) => {
  const owner = await h.signUp('chanv');
  const r = await h.enroll(owner);
  const c = await h.user(owner);
  const names = (n: number, len = 4) => Array.from({ length: n }, (_, i) => `${i}`.padStart(len, 'c'));
  t.equal((await c.request({ t: 'watch', robot: r.id, channels: names(64, 64) })).t, 'watching', '64 names of 64 characters');
  t.match(await c.request({ t: 'watch', robot: r.id, channels: names(65) }), { t: 'error', code: 'VALIDATION' }, '65 names');
  t.match(await c.request({ t: 'watch', robot: r.id, channels: ['x'.repeat(65)] }), { t: 'error', code: 'VALIDATION' }, 'a 65-character name');
  t.match(await c.request({ t: 'watch', robot: r.id, channels: [''] }), { t: 'error', code: 'VALIDATION' }, 'an empty name');
  t.match(await c.request({ t: 'watch', robot: r.id, channels: 'camera' }), { t: 'error', code: 'VALIDATION' }, 'a string, not an array');
  t.equal((await c.request({ t: 'watch', robot: r.id, channels: [] })).t, 'watching', 'no channel at all: state and events only');
});

t.test('channels advertised after WELCOME reach watchers (with their schema) before their samples; withdrawn ones stop', async (t) => {
  const owner = await h.signUp('adv');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [LIGHT_LATEST]);
  const every = await h.user(owner);
  const chooser = await h.user(owner, 'json');
  await every.request({ t: 'watch', robot: r.id });
  // Chosen before the robot has it: allowed, and its samples flow once it is advertised.
  await chooser.request({ t: 'watch', robot: r.id, channels: ['pose'] });

  const schema = Buffer.from([0x0a, 0x0b, 0x66, 0x6f, 0x78, 0x67, 0x6c, 0x6f, 0x76, 0x65, 0x2e, 0x50, 0x6f]);
  const pose: Channel = {
    id: 9,
    name: 'pose',
    encoding: 'protobuf',
    schema: 'foxglove.Pose',
    delivery: 'reliable',
    schemaEncoding: 'protobuf',
    schemaData: schema,
  };
  const note: Channel = {
    id: 10,
    name: 'note',
    encoding: 'json',
    schema: 'Note',
    delivery: 'latest',
    schemaEncoding: 'jsonschema',
    schemaData: '{"type":"string"}',
  };
  robot.advertise([pose, note]);
  robot.telemetry(9, { i: 1 });
  robot.telemetry(10, 'hello');

  const seen = await every.next((f) => f.t === 'channels', 'channels at the watcher of all');
  t.same(
    seen.channels.map((c: Frame) => c.name),
    ['battery', 'pose', 'note'],
    'the whole list',
  );
  t.same(Buffer.from(seen.channels[1].schemaData), schema, 'a binary schema arrives as bytes over MessagePack');
  t.match(seen.channels[1], { schemaEncoding: 'protobuf', schema: 'foxglove.Pose', delivery: 'reliable' });
  t.match(seen.channels[2], { schemaEncoding: 'jsonschema', schemaData: '{"type":"string"}' }, 'a text schema as text');
  t.notOk('schemaEncoding' in seen.channels[0], 'a channel without a schema has no schema fields');
  const jsonSeen = await chooser.next((f) => f.t === 'channels', 'channels at the chooser');
  t.equal(jsonSeen.channels[1].schemaData, schema.toString('base64'), 'and as base64 over JSON, as binary `tm` data');

  await every.next(tm(9), 'the new reliable channel at the watcher of all');
  await every.next(tm(10), 'the new latest channel at the watcher of all');
  const got = await chooser.next(tm(9), 'the chosen channel, advertised after the watch');
  t.ok(chooser.frames.indexOf(jsonSeen) < chooser.frames.indexOf(got), '`channels` came before the first sample');
  const status = await h.api.get(`/api/v1/robots/${r.id}/status`, { token: owner.token });
  t.match(
    status.body.status.channels[1],
    { name: 'pose', schemaEncoding: 'protobuf', schemaData: schema.toString('base64') },
    'REST: base64 for a binary schema',
  );
  t.match(status.body.status.channels[2], { name: 'note', schemaData: '{"type":"string"}' }, 'REST: text as text');

  // Re-advertising an id replaces its channel.
  robot.advertise([{ ...note, name: 'memo', schemaEncoding: null, schemaData: null }]);
  const replaced = await every.next((f) => f.t === 'channels', 'the replaced channel');
  t.same(
    replaced.channels.map((c: Frame) => c.name),
    ['battery', 'pose', 'memo'],
    'same id, new name',
  );

  robot.withdraw([9]);
  const after = await every.next((f) => f.t === 'channels', 'channels after the withdraw');
  t.same(
    after.channels.map((c: Frame) => c.id),
    [4, 10],
  );
  await chooser.next((f) => f.t === 'channels', 'the chooser hears of it too');
  const refused = new Promise<{ code: string; message: string }>((resolve) => robot.once('hubError', resolve));
  robot.telemetry(9, { i: 2 });
  t.match(await refused, { code: 'VALIDATION', message: /channel 9 is not advertised/ }, 'telemetry on a withdrawn channel is a violation');
  robot.telemetry(4, { i: 'marker' });
  await every.next(
    tm(4, (f) => f.data.i === 'marker'),
    'a later sample of a channel still there',
  );
  t.equal(every.all('tm').filter((f) => f.ch === 9).length, 1, 'nothing of the withdrawn channel after it went');
  const rewatch = await every.request({ t: 'watch', robot: r.id });
  t.notOk(
    rewatch.latest.some((s: Frame) => s.ch === 9),
    "a withdrawn channel's newest sample is gone from the snapshot",
  );

  // Bad ADVERTISE / WITHDRAW frames are violations that change nothing; the link stays up.
  const errors: string[] = [];
  robot.on('hubError', (e) => errors.push(e.message));
  robot.withdraw([77]);
  robot.advertise([{ ...LIGHT_LATEST, id: 11 }]); // the name `battery` is held by channel 4
  robot.telemetry(4, { i: 'still up' });
  await every.next(
    tm(4, (f) => f.data.i === 'still up'),
    'the link is still up',
  );
  t.match(errors, [/channel 77 is not advertised/, /already named "battery"/]);
  await every.barrier();
  t.equal(every.all('channels').length, 3, 'no `channels` frame for refused changes');
});
