// The robot endpoint over real mutual TLS against a real hub: who gets in (and who is refused in the
// handshake or right after it, before any of their frames is read), what the hub does with each bad
// frame, the telemetry rate limit, heartbeats both ways, a reconnect replacing the old link, a
// certificate revoked while connected, and shutdown. The hub must keep serving after all of it.

import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import { defaultCaFiles, initCa, issueRobotCert, loadCa } from '../src/auth/pki.js';
import { type Channel, encodeRobotFrame, frameBytes, ROBOT_PROTOCOL_VERSION, Tag } from '../src/protocol/robot.js';
import { RobotClient, RobotConnectError } from '../src/robot-kit/robot-client.js';
import { tempDir } from './helpers/hub.js';
import { nextHandshakeRefusal, nextServerLink, RawRobotLink } from './helpers/robot-link.js';
import { CHANNELS, type RobotHub, startRobotHub, type User } from './helpers/robots.js';
import type { Frame } from './helpers/ws.js';

const h = await startRobotHub(t);
const owner = await h.signUp('own');

/** The codes the hub puts in an ERROR frame when it refuses a link after the handshake. */
const LINK_CODES = ['BAD_FRAME', 'UNKNOWN_TYPE', 'VALIDATION'];

const refusals = (rh: RobotHub = h) => ({ ...(rh.hub.robots?.refusals ?? { handshake: -1, certificate: -1 }) });

/** A raw link to `rh`'s robot endpoint (no HELLO sent), destroyed at teardown. */
async function rawLink(t: Test, creds: { cert?: string; key?: string } = {}, rh: RobotHub = h): Promise<RawRobotLink> {
  const link = await RawRobotLink.open({ port: rh.hub.robots?.port ?? 0, ca: rh.caPem, ...creds });
  t.teardown(() => link.destroy());
  return link;
}

/** An enrolled robot on a raw link after HELLO/WELCOME, and its owner watching it. */
async function watchedLink(t: Test, rh: RobotHub = h, who: User = owner) {
  const r = await rh.enroll(who);
  const link = await rawLink(t, r, rh);
  const welcome = await link.hello(CHANNELS);
  t.equal(welcome.robotId, r.id, 'WELCOME names the robot');
  const u = await rh.user(who);
  const w = await u.request({ t: 'watch', robot: r.id });
  t.equal(w.online, true, 'the watcher sees it online');
  return { r, link, u };
}

const telemetry = (channel: number, payload: unknown, ts = Date.now()) => encodeRobotFrame({ tag: Tag.TELEMETRY, channel, ts, payload });
const tmOf = (robot: string, ch: number) => (f: Frame) => f.t === 'tm' && f.robot === robot && f.ch === ch;

/** Connects with RobotClient expecting a refusal; returns the error. */
async function refusedClient(t: Test, creds: { cert: string; key: string }, rh: RobotHub = h): Promise<RobotConnectError> {
  const port = rh.hub.robots?.port ?? 0;
  const outcome = await RobotClient.connect({ host: '127.0.0.1', port, cert: creds.cert, key: creds.key, ca: rh.caPem, channels: CHANNELS }).then(
    (c) => c,
    (e: unknown) => e,
  );
  if (outcome instanceof RobotClient) {
    outcome.destroy();
    t.fail(`connected as ${outcome.robotId}: expected a refusal`);
    return new RobotConnectError('CONNECTED', 'not refused');
  }
  t.type(outcome, RobotConnectError, `refused: ${(outcome as Error).message}`);
  return outcome as RobotConnectError;
}

t.test('a valid certificate connects and is welcomed with its robot id', async (t) => {
  const before = refusals();
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r);
  t.equal(robot.robotId, r.id);
  t.equal(robot.heartbeatMs, 5_000, 'the default heartbeat interval');
  const link = await rawLink(t, r);
  await link.hello(CHANNELS);
  t.equal(link.frames[0]?.tag, Tag.WELCOME, 'WELCOME is the first frame the hub sends');
  t.same(refusals(), before, 'nothing refused');
});

t.test('#19 a certificate the TLS layer cannot verify: an ERROR frame with a terminal code, under TLS 1.2 and 1.3', async (t) => {
  const r = await h.enroll(owner);

  /**
   * Expects `creds` to be refused with an ERROR frame carrying `code` and nothing else, before any
   * frame is read, over both TLS versions, by RobotClient and by a raw link that sends HELLO at
   * once; each counted as a refused handshake, none as a refused registered certificate. A bare
   * close or a TLS alert would read as a network failure, and a robot would retry it forever.
   */
  async function refusedWith(t: Test, creds: { cert?: string; key?: string }, code: string): Promise<void> {
    const before = refusals();
    if (creds.cert && creds.key) {
      const e = await refusedClient(t, { cert: creds.cert, key: creds.key });
      t.equal(e.code, code, `RobotClient.connect rejects with ${code}`);
      t.equal(e.terminal, true, 'and says the refusal is terminal: retrying as is cannot succeed');
    }
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const link = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, ...creds, maxVersion });
      t.teardown(() => link.destroy());
      link.write(Buffer.concat([encodeRobotFrame({ tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels: CHANNELS }), telemetry(1, { x: 1 })]));
      await link.waitClose();
      t.same(
        link.frames.map((f) => (f.tag === Tag.ERROR ? f.code : f.tag)),
        [code],
        `${maxVersion}: exactly one frame, the ERROR`,
      );
    }
    const after = refusals();
    const links = creds.cert ? 3 : 2;
    t.equal(after.handshake, before.handshake + links, 'counted as refused handshakes');
    t.equal(after.certificate, before.certificate, 'not as refused registered certificates: they never got that far');
  }

  t.test('no client certificate: CERTIFICATE_REQUIRED', async (t) => {
    await refusedWith(t, {}, 'CERTIFICATE_REQUIRED');
  });

  t.test('a certificate from another CA (its fingerprint registered, so only TLS can refuse it): CERTIFICATE_UNTRUSTED', async (t) => {
    const dir = await tempDir(t);
    const foreign = await initCa({ certFile: `${dir}/ca.crt`, keyFile: `${dir}/ca.key` }, { commonName: 'Someone else' });
    const cert = await issueRobotCert(foreign, r.id);
    await h.hub.store.robots.addCertificate(r.id, cert);
    await refusedWith(t, { cert: cert.certPem, key: cert.keyPem }, 'CERTIFICATE_UNTRUSTED');
  });

  t.test('a certificate from a look-alike CA (same name as the robot CA, another key): CERTIFICATE_UNTRUSTED', async (t) => {
    const dir = await tempDir(t);
    const lookAlike = await initCa({ certFile: `${dir}/ca.crt`, keyFile: `${dir}/ca.key` });
    t.equal(lookAlike.cert.subject, (await loadCa(defaultCaFiles(h.dataDir))).cert.subject, 'the same subject as the robot CA');
    const cert = await issueRobotCert(lookAlike, r.id);
    await h.hub.store.robots.addCertificate(r.id, cert);
    await refusedWith(t, { cert: cert.certPem, key: cert.keyPem }, 'CERTIFICATE_UNTRUSTED');
  });

  t.test('an expired certificate (registered, signed by the robot CA): CERTIFICATE_EXPIRED', async (t) => {
    const ca = await loadCa(defaultCaFiles(h.dataDir));
    const cert = await issueRobotCert(ca, r.id, { notBefore: new Date(Date.now() - 3 * 86_400_000), validDays: 1 });
    t.ok(cert.notAfter.getTime() < Date.now() - 86_400_000, `expired at ${cert.notAfter.toISOString()}`);
    await h.hub.store.robots.addCertificate(r.id, cert);
    await refusedWith(t, { cert: cert.certPem, key: cert.keyPem }, 'CERTIFICATE_EXPIRED');
  });

  t.test('a certificate not yet valid (registered, signed by the robot CA): CERTIFICATE_NOT_YET_VALID', async (t) => {
    const ca = await loadCa(defaultCaFiles(h.dataDir));
    const cert = await issueRobotCert(ca, r.id, { notBefore: new Date(Date.now() + 86_400_000), validDays: 30 });
    await h.hub.store.robots.addCertificate(r.id, cert);
    await refusedWith(t, { cert: cert.certPem, key: cert.keyPem }, 'CERTIFICATE_NOT_YET_VALID');
  });

  t.test('a handshake that is not TLS at all is counted and closed', async (t) => {
    const before = refusals();
    const failed = nextHandshakeRefusal(h.hub);
    const sock = net.connect(h.hub.robots?.port ?? 0, '127.0.0.1');
    t.teardown(() => sock.destroy());
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await failed;
    await once(sock, 'close');
    t.equal(refusals().handshake, before.handshake + 1);
  });

  t.test('the robot itself still connects', async (t) => {
    const robot = await h.connectRobot(r);
    t.equal(robot.robotId, r.id);
  });
});

t.test('refused after the handshake with an ERROR frame, before any frame is read', async (t) => {
  /** Expects `creds` to pass TLS and be refused by the hub with `code`, counted as a certificate refusal. */
  async function refusedByHub(t: Test, creds: { cert: string; key: string }, code: string) {
    const before = refusals();
    const e = await refusedClient(t, creds);
    t.equal(e.code, code, 'RobotClient.connect rejects with the code of the ERROR frame');
    // A raw link that sends HELLO and telemetry at once gets the one ERROR frame and nothing else.
    const link = await rawLink(t, creds);
    link.write(Buffer.concat([encodeRobotFrame({ tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels: CHANNELS }), telemetry(1, { x: 1 })]));
    await link.waitClose();
    t.same(
      link.frames.map((f) => (f.tag === Tag.ERROR ? f.code : f.tag)),
      [code],
      'exactly one frame: the ERROR',
    );
    const after = refusals();
    t.equal(after.certificate, before.certificate + 2, 'both counted as refused certificates');
    t.equal(after.handshake, before.handshake, 'the handshakes themselves succeeded');
  }

  t.test('a revoked certificate: CERTIFICATE_REVOKED', async (t) => {
    const r = await h.enroll(owner);
    const res = await h.api.delete(`/api/v1/robots/${r.id}/certificate`, { token: owner.token });
    t.equal(res.status, 200, res.text);
    t.equal(res.body.revoked, 1);
    await refusedByHub(t, r, 'CERTIFICATE_REVOKED');
  });

  t.test('the certificate of a deleted robot: UNKNOWN_CERTIFICATE', async (t) => {
    const r = await h.enroll(owner);
    const res = await h.api.delete(`/api/v1/robots/${r.id}`, { token: owner.token });
    t.equal(res.status, 204, res.text);
    await refusedByHub(t, r, 'UNKNOWN_CERTIFICATE');
  });

  t.test('a validly signed certificate that is not registered: UNKNOWN_CERTIFICATE', async (t) => {
    const r = await h.enroll(owner);
    const ca = await loadCa(defaultCaFiles(h.dataDir));
    const cert = await issueRobotCert(ca, r.id);
    await refusedByHub(t, { cert: cert.certPem, key: cert.keyPem }, 'UNKNOWN_CERTIFICATE');
    const robot = await h.connectRobot(r);
    t.equal(robot.robotId, r.id, 'the registered certificate of the same robot still connects');
  });

  t.test('a registered certificate whose CN names another robot: UNKNOWN_CERTIFICATE', async (t) => {
    const a = await h.enroll(owner);
    const b = await h.enroll(owner);
    const ca = await loadCa(defaultCaFiles(h.dataDir));
    const cert = await issueRobotCert(ca, b.id);
    await h.hub.store.robots.addCertificate(a.id, cert);
    await refusedByHub(t, { cert: cert.certPem, key: cert.keyPem }, 'UNKNOWN_CERTIFICATE');
  });
});

t.test('the first frame must be HELLO', async (t) => {
  const r = await h.enroll(owner);
  const link = await rawLink(t, r);
  link.write(telemetry(1, { x: 1 }));
  const e = await link.nextError();
  t.equal(e.code, 'BAD_FRAME');
  await link.waitClose();
  t.notOk(
    link.frames.some((f) => f.tag === Tag.WELCOME),
    'never welcomed',
  );
});

t.test('before HELLO: heartbeats are fine, and a HELLO that fails validation may be corrected', async (t) => {
  const r = await h.enroll(owner);
  const link = await rawLink(t, r);
  link.send({ tag: Tag.HEARTBEAT });
  link.write(frameBytes([Tag.HELLO, 2, []]));
  const e = await link.nextError('the refused HELLO');
  t.equal(e.code, 'VALIDATION', e.message);
  const welcome = await link.hello(CHANNELS);
  t.equal(welcome.robotId, r.id, 'the corrected HELLO is welcomed');
  t.same(
    link.frames.map((f) => f.tag),
    [Tag.ERROR, Tag.WELCOME],
    'nothing else was sent',
  );
});

t.test('bad frames after HELLO: an ERROR frame each, and the link stays up', async (t) => {
  const { r, link, u } = await watchedLink(t);
  const cases: [string, Buffer, string][] = [
    ['not MessagePack', Buffer.from([0, 0, 0, 1, 0xc1]), 'BAD_FRAME'],
    ['truncated MessagePack', Buffer.from([0, 0, 0, 2, 0x93, 0x03]), 'BAD_FRAME'],
    ['not an array', Buffer.from([0, 0, 0, 1, 0x03]), 'BAD_FRAME'],
    ['an empty frame', Buffer.from([0, 0, 0, 0]), 'BAD_FRAME'],
    ['an unknown tag', frameBytes([99, 'x']), 'UNKNOWN_TYPE'],
    ['a hub frame (WELCOME) from the robot', frameBytes([Tag.WELCOME, r.id, 5_000]), 'UNKNOWN_TYPE'],
    ['telemetry on a channel HELLO did not advertise', telemetry(9, { x: 1 }), 'VALIDATION'],
    ['a second HELLO', encodeRobotFrame({ tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels: CHANNELS }), 'VALIDATION'],
    ['a STATUS with a bad stage', frameBytes([Tag.STATUS, 'c1', 9, null]), 'VALIDATION'],
  ];
  for (const [what, bytes, code] of cases) {
    link.write(bytes);
    const e = await link.nextError(what);
    t.equal(e.code, code, `${what}: ${e.message}`);
    t.equal(e.ref, null);
  }
  link.write(telemetry(2, 'still here'));
  const tm = await u.next(tmOf(r.id, 2), 'telemetry after the bad frames');
  t.equal(tm.data, 'still here', 'the link is up and its telemetry delivered');
  t.equal(link.endInfo, undefined, 'not closed');
});

t.test('the 11th bad frame closes the link with PROTOCOL_VIOLATION', async (t) => {
  const { r, link, u } = await watchedLink(t);
  const bad = frameBytes([99]);
  // Ten violations, each followed by a STATUS for a command not in flight: UNKNOWN_COMMAND is not one.
  link.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => Buffer.concat([bad, frameBytes([Tag.STATUS, `none-${i}`, 3, null])]))));
  const errors = await link.take((f) => f.tag === Tag.ERROR, 20, '20 ERROR frames');
  t.same(errors.map((e) => (e.tag === Tag.ERROR ? e.code : '')).sort(), [...Array(10).fill('UNKNOWN_COMMAND'), ...Array(10).fill('UNKNOWN_TYPE')]);
  link.write(telemetry(2, 'after ten'));
  t.equal((await u.next(tmOf(r.id, 2), 'telemetry after ten bad frames')).data, 'after ten', 'ten bad frames are tolerated');
  link.write(bad);
  const last = await link.take((f) => f.tag === Tag.ERROR, 2, 'the 11th ERROR and the closing one');
  t.same(
    last.map((e) => (e.tag === Tag.ERROR ? e.code : '')),
    ['UNKNOWN_TYPE', 'PROTOCOL_VIOLATION'],
  );
  await link.waitClose();
  const off = await u.next((f) => f.t === 'robot' && f.robot === r.id && f.kind === 'offline', 'offline');
  t.type(off.lastSeen, 'number', 'watchers see it go offline');
});

t.test('a frame declared larger than SB_ROBOT_MAX_FRAME_BYTES closes the link with FRAME_TOO_LARGE', async (t) => {
  const { r, link, u } = await watchedLink(t);
  // Exactly the limit (65,536 bytes of body): [fixarray, tag, channel, int64 ts, bin16 header + 65,521 bytes].
  const atLimit = frameBytes([Tag.TELEMETRY, 2, Date.now(), Buffer.alloc(65_521, 7)]);
  t.equal(atLimit.length, 4 + 65_536);
  link.write(atLimit);
  const tm = await u.next(tmOf(r.id, 2), 'the frame at the limit');
  t.equal(Buffer.from(tm.data).length, 65_521, 'a frame of exactly the limit is delivered');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(65_537, 0);
  link.write(header); // no body: the header alone decides
  const e = await link.nextError();
  t.equal(e.code, 'FRAME_TOO_LARGE', e.message);
  await link.waitClose();
  t.pass('closed');
  await u.next((f) => f.t === 'robot' && f.robot === r.id && f.kind === 'offline', 'offline');
});

t.test('a second connection of the same robot replaces the first', async (t) => {
  const r = await h.enroll(owner);
  const firstLink = nextServerLink(h.hub);
  const first = await h.connectRobot(r);
  const oldSide = await firstLink;
  const commands: string[] = [];
  first.on('command', (c) => commands.push(c.command));
  const u = await h.user(owner);
  t.equal((await u.request({ t: 'watch', robot: r.id })).online, true);
  t.equal((await u.request({ t: 'lease', robot: r.id, op: 'acquire' })).t, 'leased');
  first.telemetry(1, { x: 1, y: 1 });
  await u.next(tmOf(r.id, 1), 'a pose from the first link');
  const q = await u.request({ t: 'cmd', robot: r.id, name: 'move', args: { x: 1 } });
  t.equal(q.t, 'queued');
  const delivered = await u.next((f) => f.t === 'cmd' && f.cmd === q.cmd, 'delivered');
  t.equal(delivered.stage, 'delivered');

  const replaced = new Promise<{ code: string }>((resolve) => first.once('hubError', resolve));
  const firstClosed = new Promise<void>((resolve) => first.once('close', resolve));
  // The new link advertises other channels: 2 as before, 3 new, 1 gone.
  const channels: Channel[] = [CHANNELS[1] as Channel, { id: 3, name: 'battery', encoding: 'msgpack', schema: null, delivery: 'latest' }];
  const second = await h.connectRobot(r, channels);
  t.equal(second.robotId, r.id, 'the second link is welcomed');
  t.equal((await replaced).code, 'REPLACED', 'the first link gets ERROR REPLACED');
  await firstClosed;
  t.ok(first.closed, 'and is closed');
  t.same(commands, [q.cmd], 'the command had reached the first link');
  const lost = await u.next((f) => f.t === 'cmd' && f.cmd === q.cmd, 'the command in flight ends');
  t.equal(lost.stage, 'lost', `the command in flight is lost: ${lost.detail}`);
  const online = await u.next((f) => f.t === 'robot' && f.robot === r.id, 'the new link announced');
  t.equal(online.kind, 'online', 'watchers see the new link come online');
  t.same(online.channels, channels, 'with the new channels');

  await oldSide.closed; // the hub has handled the old link's close: its detach is queued
  second.telemetry(2, 'from the new link');
  const tm = await u.next(tmOf(r.id, 2), 'telemetry from the new link');
  t.equal(tm.data, 'from the new link');
  t.same(
    u.all('robot').map((f) => f.kind),
    ['online'],
    'the robot never went offline',
  );
  const status = await h.api.get(`/api/v1/robots/${r.id}/status`, { token: owner.token });
  t.equal(status.body.status.online, true, 'REST agrees: online');
  t.same(status.body.status.channels, channels);
  const late = await h.user(owner);
  const w = await late.request({ t: 'watch', robot: r.id });
  t.same(
    w.latest.map((s: { ch: number }) => s.ch),
    [2],
    'the newest sample of the dropped channel 1 is gone',
  );
  t.same(w.lease?.holder?.id, owner.id, 'the control lease is not affected');
});

t.test('revoking the certificate closes a connected link with CERTIFICATE_REVOKED', async (t) => {
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r);
  const u = await h.user(owner);
  t.equal((await u.request({ t: 'watch', robot: r.id })).online, true);
  const err = new Promise<{ code: string }>((resolve) => robot.once('hubError', resolve));
  const closed = new Promise<void>((resolve) => robot.once('close', resolve));
  const res = await h.api.delete(`/api/v1/robots/${r.id}/certificate`, { token: owner.token });
  t.equal(res.status, 200, res.text);
  t.equal((await err).code, 'CERTIFICATE_REVOKED');
  await closed;
  const off = await u.next((f) => f.t === 'robot' && f.robot === r.id, 'a robot event');
  t.equal(off.kind, 'offline', 'watchers see it go offline');
  const again = await refusedClient(t, r);
  t.equal(again.code, 'CERTIFICATE_REVOKED', 'and it cannot come back with that certificate');
});

t.test('deleting a connected robot closes its link with UNKNOWN_CERTIFICATE', async (t) => {
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r);
  const u = await h.user(owner);
  t.equal((await u.request({ t: 'watch', robot: r.id })).online, true);
  const err = new Promise<{ code: string }>((resolve) => robot.once('hubError', resolve));
  const closed = new Promise<void>((resolve) => robot.once('close', resolve));
  const res = await h.api.delete(`/api/v1/robots/${r.id}`, { token: owner.token });
  t.equal(res.status, 204, res.text);
  t.equal((await err).code, 'UNKNOWN_CERTIFICATE');
  await closed;
  const kinds = await u.take((f) => f.t === 'robot' && f.robot === r.id, 2, 'offline, deleted');
  t.same(
    kinds.map((f) => f.kind),
    ['offline', 'deleted'],
  );
});

t.test('the telemetry rate limit drops excess frames with one RATE_LIMITED error', async (t) => {
  const rh = await startRobotHub(t, { env: { SB_ROBOT_TELEMETRY_PER_SECOND: '5' } });
  const who = await rh.signUp('rate');
  const { r, link, u } = await watchedLink(t, rh, who);
  // 20 samples on the reliable channel in one write (one TLS record, read at once), then a STATUS
  // for a command that does not exist: its UNKNOWN_COMMAND answer comes after the robot's actor
  // handled every sample before it.
  link.write(Buffer.concat([...Array.from({ length: 20 }, (_, i) => telemetry(2, i)), frameBytes([Tag.STATUS, 'barrier', 3, null])]));
  const barrier = await link.next((f) => f.tag === Tag.ERROR && f.code === 'UNKNOWN_COMMAND', 'the barrier');
  t.equal(barrier.tag === Tag.ERROR && barrier.ref, 'barrier');
  const errors = link.frames.filter((f) => f.tag === Tag.ERROR && f.code !== 'UNKNOWN_COMMAND');
  t.same(
    errors.map((f) => (f.tag === Tag.ERROR ? f.code : '')),
    ['RATE_LIMITED'],
    'one RATE_LIMITED error for the whole burst',
  );
  await u.barrier(); // every sample published before the barrier has reached the watcher
  t.same(
    u.frames.filter(tmOf(r.id, 2)).map((f) => f.data),
    [0, 1, 2, 3, 4],
    'the burst (one second of the rate) is delivered, the excess is not',
  );
  t.equal(link.endInfo, undefined, 'the link stays up: 15 dropped frames are not violations');
  const late = await rh.user(who);
  const w = await late.request({ t: 'watch', robot: r.id });
  t.same(
    w.latest.map((s: { ch: number; data: unknown }) => [s.ch, s.data]),
    [[2, 4]],
    'a dropped frame is not kept as the newest sample',
  );
});

t.test('heartbeats', async (t) => {
  const rh = await startRobotHub(t, { env: { SB_ROBOT_HEARTBEAT_MS: '200' } });
  const who = await rh.signUp('beat');
  // A robot that answers every hub heartbeat, and a RobotClient (which sends its own), both
  // connected before the quiet one: when the quiet one times out, they have been up longer.
  const answering = await watchedLink(t, rh, who);
  answering.link.answerHeartbeats = true;
  t.equal((answering.link.frames[0] as { heartbeatMs?: number }).heartbeatMs, 200, 'WELCOME carries the interval');
  const rc = await rh.enroll(who);
  const client = await rh.connectRobot(rc);
  t.equal(client.heartbeatMs, 200);

  const rq = await rh.enroll(who);
  const quiet = await rawLink(t, rq, rh);
  await quiet.hello(CHANNELS);
  const beat = await quiet.next((f) => f.tag === Tag.HEARTBEAT, 'a hub heartbeat');
  t.equal(beat.tag, Tag.HEARTBEAT, 'the hub sends HEARTBEAT [4] to a quiet robot');
  const e = await quiet.nextError('the timeout');
  t.equal(e.code, 'TIMEOUT', e.message);
  await quiet.waitClose();

  const beats = answering.link.frames.filter((f) => f.tag === Tag.HEARTBEAT).length;
  t.ok(beats >= 1, `the answering robot got ${beats} heartbeats`);
  t.equal(answering.link.endInfo, undefined, 'a robot answering heartbeats stays connected');
  t.notOk(
    answering.link.frames.some((f) => f.tag === Tag.ERROR),
    'and got no ERROR',
  );
  answering.link.write(telemetry(2, 'alive'));
  t.equal((await answering.u.next(tmOf(answering.r.id, 2), 'telemetry')).data, 'alive', 'and still delivers telemetry');
  t.notOk(client.closed, 'RobotClient (heartbeating on its own) stays connected');
  t.equal(client.lastError, undefined);
});

t.test('shutdown closes robot links with ERROR SHUTDOWN', async (t) => {
  const rh = await startRobotHub(t);
  const who = await rh.signUp('down');
  const r = await rh.enroll(who);
  const robot = await rh.connectRobot(r);
  const err = new Promise<{ code: string }>((resolve) => robot.once('hubError', resolve));
  const closed = new Promise<void>((resolve) => robot.once('close', resolve));
  await rh.hub.close();
  t.equal((await err).code, 'SHUTDOWN');
  await closed;
  t.ok(robot.closed, 'the link is closed');
});

t.test('malformed input never takes the hub down', async (t) => {
  t.test('random bodies after HELLO: an ERROR with a protocol code each, never INTERNAL', async (t) => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 6; round++) {
      const { link } = await watchedLink(t);
      for (let i = 0; i < 9; i++) {
        const n = 1 + Math.floor(random() * 40);
        const b = Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
        b[0] = 0x91 + Math.floor(random() * 4); // an array of 1–4 elements...
        b[1] = [1, 3, 4, 12, 0xd4, 0xc7][Math.floor(random() * 6)] as number; // ...whose tag is plausible
        link.write(lengthPrefixed(b));
        const ref = `b${round}-${i}`;
        link.write(frameBytes([Tag.STATUS, ref, 3, null]));
        await link.next((f) => f.tag === Tag.ERROR && f.ref === ref, `the barrier after body ${b.toString('hex')}`);
        const codes = link.frames.filter((f) => f.tag === Tag.ERROR && f.code !== 'UNKNOWN_COMMAND').map((f) => (f.tag === Tag.ERROR ? f.code : ''));
        for (const c of codes) if (!LINK_CODES.includes(c)) t.fail(`body ${b.toString('hex')}: ${c}`);
      }
      t.equal(link.endInfo, undefined, `round ${round}: still connected`);
    }
  });

  t.test('deeply nested MessagePack', async (t) => {
    const { r, link, u } = await watchedLink(t);
    link.write(lengthPrefixed(Buffer.alloc(60_000, 0x91)));
    t.equal((await link.nextError()).code, 'BAD_FRAME', '60,000 nested arrays');
    const nested = Buffer.concat([Buffer.from([0x94, 0x03, 0x02, 0x05]), Buffer.alloc(50_000, 0x91), Buffer.from([0xc0])]);
    link.write(lengthPrefixed(nested));
    link.write(telemetry(2, 'after the nesting'));
    const tm = await u.next((f) => tmOf(r.id, 2)(f) && f.data === 'after the nesting', 'telemetry after');
    t.ok(tm, 'the link and the hub survive a deeply nested payload');
    t.notOk(
      link.frames.some((f) => f.tag === Tag.ERROR && !LINK_CODES.includes(f.code)),
      'no INTERNAL error',
    );
  });

  t.test('a tag msgpackr decodes to a BigInt is refused like any unknown tag, and the link stays up', async (t) => {
    const { r, link, u } = await watchedLink(t);
    link.write(lengthPrefixed(Buffer.from([0x91, 0xd4, 0x42, 0x05]))); // [5n]: msgpackr's BigInt extension
    const e = await link.nextError();
    t.ok(LINK_CODES.includes(e.code), `a protocol error, not ${e.code}: ${e.message}`);
    link.write(Buffer.concat([telemetry(2, 'after'), frameBytes([Tag.STATUS, 'barrier', 3, null])]));
    await link.next((f) => f.tag === Tag.ERROR && f.ref === 'barrier', 'the link to stay up');
    t.equal((await u.next(tmOf(r.id, 2), 'telemetry after')).data, 'after');
  });

  t.test('a BigInt in a telemetry payload is refused, or reaches msgpack and JSON watchers alike', async (t) => {
    const { r, link, u } = await watchedLink(t);
    const j = await h.user(owner, 'json');
    t.equal((await j.request({ t: 'watch', robot: r.id })).online, true);
    // [3, 2, 5, 5n] (msgpackr's BigInt extension as the payload), a plain sample, a barrier.
    link.write(Buffer.concat([lengthPrefixed(Buffer.from([0x94, 0x03, 0x02, 0x05, 0xd4, 0x42, 0x05])), telemetry(2, 'plain')]));
    link.write(frameBytes([Tag.STATUS, 'barrier', 3, null]));
    await link.next((f) => f.tag === Tag.ERROR && f.ref === 'barrier', 'the barrier');
    const refused = link.frames.some((f) => f.tag === Tag.ERROR && f.code === 'BAD_FRAME');
    const expected = refused ? ['plain'] : [5, 'plain'];
    await u.next((f) => tmOf(r.id, 2)(f) && f.data === 'plain', 'the plain sample (msgpack)');
    await j.next((f) => tmOf(r.id, 2)(f) && f.data === 'plain', 'the plain sample (JSON)');
    t.same(
      u.frames.filter(tmOf(r.id, 2)).map((f) => f.data),
      expected,
      `msgpack watcher (the frame was ${refused ? 'refused' : 'accepted'})`,
    );
    t.same(
      j.frames.filter(tmOf(r.id, 2)).map((f) => f.data),
      expected,
      'JSON watcher: the same samples',
    );
    // The latest sample of each channel is part of `watching`: the BigInt must not break it.
    link.write(lengthPrefixed(Buffer.from([0x94, 0x03, 0x01, 0x05, 0xd4, 0x42, 0x07]))); // on channel 1 ('latest'), last
    link.write(frameBytes([Tag.STATUS, 'barrier2', 3, null]));
    await link.next((f) => f.tag === Tag.ERROR && f.ref === 'barrier2', 'the second barrier');
    const late = await h.user(owner, 'json');
    const w = await late.request({ t: 'watch', robot: r.id });
    t.equal(w.t, 'watching', `a JSON user can still start watching: ${JSON.stringify(w).slice(0, 200)}`);
  });

  t.test('after all of it the hub still welcomes robots and delivers their telemetry', async (t) => {
    const r = await h.enroll(owner);
    const robot = await h.connectRobot(r);
    const u = await h.user(owner);
    t.equal((await u.request({ t: 'watch', robot: r.id })).online, true);
    robot.telemetry(1, { x: 3, y: 4 });
    t.same((await u.next(tmOf(r.id, 1), 'pose')).data, { x: 3, y: 4 });
    const ready = await h.api.get('/readyz');
    t.equal(ready.status, 200, 'and reports ready');
  });
});

function lengthPrefixed(b: Buffer): Buffer {
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  b.copy(out, 4);
  return out;
}
