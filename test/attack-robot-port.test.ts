// The robot port as an attacker meets it, with no certificate or with one: connections that never
// start TLS, floods of them from one address and from several, a frame trickled a byte at a time,
// a first frame that is not a frame, a HELLO with control characters. Each test asserts the bound
// (sockets the node holds) and that the node keeps serving HTTP, logins and real robots during
// and after. Limits are lowered through configuration so the bounds are reached in seconds.

import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import { encodeRobotFrame, frameBytes, ROBOT_PROTOCOL_VERSION, Tag } from '../src/protocol/robot.js';
import { RawRobotLink } from './helpers/robot-link.js';
import { CHANNELS, type RobotHub, startRobotHub, waitUntil } from './helpers/robots.js';

/** Plain TCP connections to the robot port from `localAddress` that send nothing; each resolves `closed` when the hub closes it. */
async function idleSockets(t: Test, port: number, n: number, localAddress: string) {
  const sockets = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress });
      s.on('error', () => {}); // a refused one may see ECONNRESET; its close is what counts
      t.teardown(() => s.destroy());
      const closed = once(s, 'close').then(() => true);
      await Promise.race([once(s, 'connect'), closed]);
      return { s, closed };
    }),
  );
  let closedCount = 0;
  for (const x of sockets) x.closed.then(() => closedCount++);
  return { sockets, closed: () => closedCount };
}

async function healthyServes(t: Test, h: RobotHub, label: string) {
  const health = await h.api.get('/healthz');
  t.equal(health.status, 200, `${label}: /healthz answers`);
  const u = await h.signUp('calm');
  t.ok(u.token, `${label}: a login succeeds`);
  const r = await h.enroll(u);
  const robot = await h.connectRobot(r);
  t.equal(robot.robotId, r.id, `${label}: a real robot is welcomed`);
  robot.destroy();
}

t.test('#5 robot port: connections that never start TLS are closed at the handshake deadline', async (t) => {
  const h = await startRobotHub(t, { env: { SB_ROBOT_HANDSHAKE_TIMEOUT_MS: '300' } });
  const port = h.hub.robots?.port ?? 0;
  const idle = await idleSockets(t, port, 20, '127.0.0.1');
  await Promise.all(idle.sockets.map((x) => x.closed));
  t.equal(idle.closed(), 20, 'every one was closed by the hub');
  await waitUntil(
    async () => h.hub.robots?.pendingConnections.open,
    (n) => n === 0,
    'released',
  );
  t.equal(h.hub.robots?.connections, 0, 'no socket is left on the hub');
  await healthyServes(t, h, 'after');
});

t.test('#5 robot port: connections not yet welcomed are capped per client IP and in all; the node keeps serving', async (t) => {
  const perIp = 20;
  const total = 30;
  const h = await startRobotHub(t, {
    env: { SB_ROBOT_MAX_PENDING_PER_IP: String(perIp), SB_ROBOT_MAX_PENDING: String(total), SB_ROBOT_HANDSHAKE_TIMEOUT_MS: '60000' },
  });
  const listener = h.hub.robots;
  if (!listener) throw new Error('no robot endpoint');
  const attempts = 100;

  const a = await idleSockets(t, listener.port, attempts, '127.0.0.2');
  await waitUntil(
    async () => a.closed(),
    (n) => n === attempts - perIp,
    `the ${attempts - perIp} over the per-IP cap closed`,
  );
  t.equal(listener.pendingConnections.open, perIp, `one address holds at most ${perIp} pending connections of ${attempts} tried`);
  await healthyServes(t, h, 'during a flood from one address');

  const b = await idleSockets(t, listener.port, attempts, '127.0.0.3');
  await waitUntil(
    async () => b.closed(),
    (n) => n === attempts - (total - perIp),
    'the ones over the total cap closed',
  );
  t.equal(listener.pendingConnections.open, total, `all addresses together hold at most ${total}`);
  t.equal(listener.pendingConnections.refused, 2 * attempts - total, 'every refusal counted');
  t.comment(
    `held ${listener.pendingConnections.open} pending robot connections of ${2 * attempts} tried from two addresses (caps ${perIp} per IP, ${total} in all)`,
  );

  // The total cap is full: a robot waits until the flood's handshake deadline frees slots.
  // Closing the flood (as the deadline would) frees them at once.
  for (const x of [...a.sockets, ...b.sockets]) x.s.destroy();
  await waitUntil(
    async () => listener.pendingConnections.open,
    (n) => n === 0,
    'every pending slot released',
  );
  await healthyServes(t, h, 'after');
});

t.test('#13 robot port: a frame trickled a byte at a time cannot hold a link open', async (t) => {
  const heartbeatMs = 200;
  const h = await startRobotHub(t, { env: { SB_ROBOT_HEARTBEAT_MS: String(heartbeatMs) } });
  const u = await h.signUp('own');
  const r = await h.enroll(u);
  const link = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: r.cert, key: r.key });
  t.teardown(() => link.destroy());
  await link.hello(CHANNELS);
  // A telemetry frame of 200 bytes, sent one byte every heartbeat/4: it would take 50 heartbeats.
  const frame = encodeRobotFrame({ tag: Tag.TELEMETRY, channel: 1, ts: Date.now(), payload: { pad: 'x'.repeat(180) } });
  let sent = 0;
  const trickle = setInterval(() => {
    if (sent < frame.length && !link.socket.destroyed) link.write(frame.subarray(sent, ++sent));
  }, heartbeatMs / 4);
  t.teardown(() => clearInterval(trickle));
  const e = await link.nextError('the link closed for silence', 20 * heartbeatMs);
  clearInterval(trickle);
  t.equal(e.code, 'TIMEOUT', 'closed as silent: bytes of an unfinished frame are not a sign of life');
  await link.waitClose();
  t.ok(sent < frame.length, `closed after ${sent} of ${frame.length} bytes`);
});

t.test('#13 robot port: a first frame that is not a frame closes the link', async (t) => {
  const h = await startRobotHub(t);
  const u = await h.signUp('own');
  const r = await h.enroll(u);
  const link = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: r.cert, key: r.key });
  t.teardown(() => link.destroy());
  const body = Buffer.from([0xc1]); // a byte MessagePack never uses
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  link.write(Buffer.concat([header, body]));
  const e = await link.nextError();
  t.equal(e.code, 'BAD_FRAME');
  await link.waitClose();
  t.notOk(
    link.frames.some((f) => f.tag === Tag.WELCOME),
    'never welcomed',
  );
});

t.test('#11 robot HELLO: a control character in a channel name is refused, and a corrected HELLO is welcomed', async (t) => {
  const h = await startRobotHub(t);
  const u = await h.signUp('own');
  const r = await h.enroll(u);
  const link = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: r.cert, key: r.key });
  t.teardown(() => link.destroy());
  for (const bad of ['pose\u0000x', 'pose\nx', 'pose\u007f', 'pose\u0085']) {
    link.write(frameBytes([Tag.HELLO, ROBOT_PROTOCOL_VERSION, [[1, bad, 'msgpack', null, 0]]]));
    const e = await link.nextError(`the refusal of ${JSON.stringify(bad)}`);
    t.equal(e.code, 'VALIDATION', `${JSON.stringify(bad)} refused`);
    t.match(e.message, /control characters/);
  }
  const w = await link.hello(CHANNELS);
  t.equal(w.robotId, r.id, 'the corrected HELLO is welcomed');
});
