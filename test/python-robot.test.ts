// The Python robot library (clients/python) against a real hub over real mutual TLS: its unit tests
// pass; a Python robot is welcomed, its telemetry on a latest and a reliable channel reaches a
// watcher (a frame of exactly the 64 KiB limit passes, one byte more is refused before sending), it
// advertises and withdraws a channel with a schema, its commands end completed, rejected, failed
// at the deadline (once: a late result is not sent) and by an e-stop, which reaches its callback;
// the example rover runs; it reconnects with backoff after the hub drops the link (a TIMEOUT close,
// a cut) and stops for good when replaced; the opt-in reliable uplink loses and doubles nothing
// across drops; and refusals (revoked, untrusted, expired, not yet valid, an untrusted hub) become
// the right errors and retry decisions (all but an untrusted hub terminal), an expired or not yet
// valid certificate without dialling at all. Waits on the robot's JSON events, never sleeps.

import { spawn } from 'node:child_process';
import path from 'node:path';
import t, { type Test } from 'tap';
import { defaultCaFiles, initCa, issueRobotCert, loadCa } from '../src/auth/pki.js';
import { tempDir } from './helpers/hub.js';
import { LinkProxy, PY_ENV, PY_ROOT, PYTHON, type PyRobot, robotArgs, robotFiles, startPyRobot } from './helpers/python-robot.js';
import { type Enrolled, startRobotHub } from './helpers/robots.js';
import type { Frame, RawClient } from './helpers/ws.js';

const HEARTBEAT_MS = 1_000;
const h = await startRobotHub(t, { env: { SB_ROBOT_HEARTBEAT_MS: String(HEARTBEAT_MS) } });
const robotPort = h.hub.robots?.port ?? 0;
const owner = await h.signUp('py');

/** A robot's files as the owner got them at registration. */
const filesOf = (t: Test, r: Pick<Enrolled, 'cert' | 'key'>, ca = h.caPem) => robotFiles(t, { cert: r.cert, key: r.key, ca });

/** Exactly `n` stage frames of command `id`, checked after a ping barrier. */
async function stagesOf(t: Test, u: RawClient, id: string, n: number): Promise<Frame[]> {
  const got = await u.take((f) => f.t === 'cmd' && f.cmd === id, n, `${n} stages of command ${id}`);
  await u.barrier();
  t.equal(u.frames.filter((f) => f.t === 'cmd' && f.cmd === id).length, n, `no stage of ${id} beyond ${n}`);
  return got;
}

const stages = (fs: Frame[]) => fs.map((f) => f.stage);

async function ended(t: Test, py: PyRobot, code: string, error: string) {
  const e = await py.next((f) => f.event === 'ended', `the robot ends with ${code}`);
  t.match(e, { code, error, retryable: false }, `ended: ${e.message}`);
  t.equal((await py.exited).code, 2, 'the robot process exits on the refusal');
  return e;
}

t.test('the Python unit tests pass (python3 -m unittest)', async (t) => {
  const child = spawn(PYTHON, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], { cwd: PY_ROOT, env: PY_ENV });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 0, `unittest exit code; output:\n${out.slice(-4000)}`);
  const ran = /Ran (\d+) tests?/.exec(out);
  t.ok(ran && Number(ran[1]) >= 20, `ran ${ran?.[1]} tests`);
  t.comment(out.trim().split('\n').slice(-3).join(' | '));
});

t.test('a Python robot: welcome, telemetry to a watcher, commands through their stages, e-stop', async (t) => {
  const r = await h.enroll(owner);
  const py = startPyRobot(t, robotPort, await filesOf(t, r));
  const welcome = await py.next((f) => f.event === 'welcome', 'WELCOME');
  t.match(welcome, { robotId: r.id, heartbeatMs: HEARTBEAT_MS, attempts: 1 }, 'welcomed with its id and the hub heartbeat');

  const u = await h.user(owner);
  const w = await u.request({ t: 'watch', robot: r.id });
  t.equal(w.online, true, 'the watcher sees it online');
  t.match(
    w.channels,
    [
      { id: 1, name: 'pose', encoding: 'msgpack', schema: 'geometry_msgs/Pose2D', delivery: 'latest' },
      { id: 2, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' },
    ],
    'HELLO advertised both delivery classes',
  );

  await t.test('telemetry on a latest and a reliable channel reaches the watcher', async (t) => {
    py.send({ op: 'publish', channel: 'pose', payload: { x: 1.5, y: -0.25, theta: 0.5 } });
    py.send({ op: 'publish', channel: 2, payload: 'log line 1' });
    py.send({ op: 'publish', channel: 'log', payload: { level: 'info', n: 2 } });
    const pose = await u.next((f) => f.t === 'tm' && f.robot === r.id && f.ch === 1, 'pose sample');
    t.same(pose.data, { x: 1.5, y: -0.25, theta: 0.5 });
    t.ok(Math.abs(pose.ts - Date.now()) < 60_000, 'ts is the robot clock in ms');
    const logs = await u.take((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2, 2, 'two log samples');
    t.same(
      logs.map((f) => f.data),
      ['log line 1', { level: 'info', n: 2 }],
      'reliable samples in order',
    );
    t.same(
      py.all('published').map((e) => e.sent),
      [true, true, true],
    );
  });

  await t.test("the frame size limit: a frame of exactly the hub's 64 KiB is sent, one byte more is refused before sending", async (t) => {
    // [3, 1, ts, str]: fixarray, tag, channel, uint64 ts (9 bytes), str16 header (3 bytes): 15 bytes + the string.
    const fits = 'x'.repeat(65_536 - 15);
    py.send({ op: 'publish', channel: 'log', payload: `${fits}y`, tag: 'limit' });
    py.send({ op: 'publish', channel: 'log', payload: fits, tag: 'limit' });
    const [over, ok] = await py.take((f) => f.event === 'published' && f.tag === 'limit', 2, 'both publishes');
    t.match(over, { sent: false, error: 'FrameTooLarge', size: 65_537, limit: 65_536 });
    t.match(ok, { sent: true });
    const tm = await u.next((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2, 'the largest sample');
    t.equal(tm.data, fits, 'the 64 KiB frame arrived whole');
    t.same(py.all('disconnected'), [], 'the link is still up');
  });

  await t.test('a channel with a schema advertised while connected, then withdrawn', async (t) => {
    const schemaData = '{"type":"object","properties":{"percent":{"type":"number"}}}';
    const battery = { id: 3, name: 'battery', encoding: 'json', schema: 'Battery', delivery: 'latest', schemaEncoding: 'jsonschema', schemaData };
    py.send({ op: 'advertise', channel: battery });
    t.match(await py.next((f) => f.event === 'advertised', 'advertised'), { sent: true });
    const added = await u.next((f) => f.t === 'channels' && f.robot === r.id, 'the channels frame');
    t.match(
      added.channels.map((c: Frame) => c.name),
      ['pose', 'log', 'battery'],
    );
    t.match(
      added.channels.find((c: Frame) => c.id === 3),
      { schemaEncoding: 'jsonschema', schemaData },
      'the schema reaches the watcher',
    );
    py.send({ op: 'publish', channel: 'battery', payload: { percent: 87 } });
    t.same((await u.next((f) => f.t === 'tm' && f.robot === r.id && f.ch === 3, 'a battery sample')).data, { percent: 87 });
    py.send({ op: 'withdraw', channels: ['battery'] });
    t.match(await py.next((f) => f.event === 'withdrawn', 'withdrawn'), { sent: true });
    const removed = await u.next((f) => f.t === 'channels' && f.robot === r.id, 'the channels frame after WITHDRAW');
    t.same(
      removed.channels.map((c: Frame) => c.name),
      ['pose', 'log'],
    );
    t.same(py.all('hub_error'), [], 'the hub accepted both');
  });

  const leased = await u.request({ t: 'lease', robot: r.id, op: 'acquire' });
  t.equal(leased.t, 'leased', JSON.stringify(leased));
  const cmd = async (name: string, args: unknown, timeoutMs = 5_000) => {
    const q = await u.request({ t: 'cmd', robot: r.id, name, args, timeoutMs });
    if (q.t !== 'queued') throw new Error(`cmd ${name}: ${JSON.stringify(q)}`);
    return q.cmd as string;
  };

  await t.test('a command accepted, then completed with its result', async (t) => {
    const id = await cmd('drive', { speed: 0.5 });
    const got = await stagesOf(t, u, id, 3);
    t.same(stages(got), ['delivered', 'accepted', 'completed']);
    t.same(got[2]?.detail, { drove: { speed: 0.5 } }, 'the handler result');
    const seen = await py.next((f) => f.event === 'command' && f.id === id, 'the handler ran');
    t.same(seen.args, { speed: 0.5 });
    t.ok(seen.timeoutMs > 4_000 && seen.timeoutMs <= 5_000, `the robot got the remaining timeoutMs (${seen.timeoutMs})`);
  });

  await t.test('a command rejected by its handler; an unnamed one to the generic handler', async (t) => {
    const id = await cmd('refuse', null);
    const got = await stagesOf(t, u, id, 2);
    t.same(stages(got), ['delivered', 'rejected']);
    t.equal(got[1]?.detail, 'not today');
    const other = await cmd('dance', null);
    const g = await stagesOf(t, u, other, 2);
    t.same(stages(g), ['delivered', 'completed']);
    t.same(g[1]?.detail, { generic: 'dance' });
  });

  await t.test('a command past its deadline: failed by the library, once; the late result is not sent', async (t) => {
    const id = await cmd('hang', null, 1_000);
    const got = await stagesOf(t, u, id, 3);
    t.same(stages(got), ['delivered', 'accepted', 'failed'], 'failed by the robot, not timed out by the hub');
    t.match(got[2]?.detail, /deadline passed \(\d+ ms\)/);
    t.match(await py.next((f) => f.event === 'cancelled' && f.id === id, 'the handler cancelled'), { state: 'failed' });
    // A barrier through the robot's link: a COMMAND sent now reaches the robot after any ERROR the
    // hub would have sent about a second STATUS (UNKNOWN_COMMAND).
    const next = await cmd('drive', { after: id });
    await py.next((f) => f.event === 'command' && f.id === next, 'the next command');
    t.same(
      py.all('hub_error').filter((e) => e.ref === id),
      [],
      'no second STATUS reached the hub',
    );
    await stagesOf(t, u, next, 3);
  });

  await t.test('an e-stop reaches the callback, is answered, and fails the command in flight', async (t) => {
    const hang = await cmd('hang', null, 10_000);
    await py.next((f) => f.event === 'command' && f.id === hang, 'hang running');
    const q = await u.request({ t: 'estop', robot: r.id });
    t.equal(q.t, 'queued', JSON.stringify(q));
    const stop = await py.next((f) => f.event === 'estop', 'the e-stop callback');
    t.same(stop.running, ['hang'], 'called while the command was still in flight');
    const s = await stagesOf(t, u, q.cmd, 2);
    t.same(stages(s), ['delivered', 'completed']);
    t.equal(s[1]?.detail, 'stopped');
    const h2 = await stagesOf(t, u, hang, 3);
    t.same(stages(h2), ['delivered', 'accepted', 'failed']);
    t.equal(h2[2]?.detail, 'emergency stop');
  });

  t.same(py.all('disconnected'), [], 'the link stayed up throughout (heartbeats both ways)');
  t.equal((await py.stop()).code, 0, 'closes cleanly');
  await u.next((f) => f.t === 'robot' && f.robot === r.id && f.kind === 'offline', 'offline once it closed');
});

t.test('the example rover (clients/python/examples/rover.py): pose to a watcher, drive, e-stop', async (t) => {
  const r = await h.enroll(owner);
  const files = await filesOf(t, r);
  const args = ['--host', '127.0.0.1', '--port', String(robotPort), ...robotArgs(files)];
  const rover = spawn(PYTHON, [path.join(PY_ROOT, 'examples/rover.py'), ...args], { env: PY_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  rover.stderr.on('data', (d) => {
    log += d;
  });
  const exited = new Promise<number | null>((resolve) => rover.on('close', resolve));
  t.teardown(() => rover.kill('SIGKILL'));
  const u = await h.user(owner);
  // The watch may come before the rover is online: its `robot` online event, or the watch reply, says so.
  const w = await u.request({ t: 'watch', robot: r.id });
  if (!w.online) await u.next((f) => f.t === 'robot' && f.robot === r.id && f.kind === 'online', `the rover online; its log: ${log}`);
  const pose = await u.next((f) => f.t === 'tm' && f.robot === r.id && f.ch === 1, 'a pose sample');
  t.match(pose.data, { x: Number, y: Number, theta: Number });
  await u.request({ t: 'lease', robot: r.id, op: 'acquire' });
  const q = await u.request({ t: 'cmd', robot: r.id, name: 'drive', args: { speed: 1, seconds: 0.2 }, timeoutMs: 5_000 });
  const got = await stagesOf(t, u, q.cmd, 3);
  t.same(stages(got), ['delivered', 'accepted', 'completed']);
  t.ok((got[2]?.detail.x ?? 0) > 0, `it moved: ${JSON.stringify(got[2]?.detail)}`);
  const tooFast = await u.request({ t: 'cmd', robot: r.id, name: 'drive', args: { speed: 5 } });
  t.same(stages(await stagesOf(t, u, tooFast.cmd, 2)), ['delivered', 'rejected']);
  const line = await u.next((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2 && /driving/.test(f.data?.text), 'the log line of the drive');
  t.match(line.data, { text: 'driving at 1.0 m/s for 0.2 s', ts: Number }, 'on the reliable log channel');
  const stop = await u.request({ t: 'estop', robot: r.id });
  t.same(stages(await stagesOf(t, u, stop.cmd, 2)), ['delivered', 'completed']);
  rover.kill('SIGTERM');
  await exited;
});

t.test('reconnects with backoff after the hub drops the link; stops for good when replaced', async (t) => {
  const r = await h.enroll(owner);
  const proxy = await LinkProxy.start(t, robotPort);
  const py = startPyRobot(t, proxy.port, await filesOf(t, r));
  await py.next((f) => f.event === 'welcome', 'WELCOME');
  const u = await h.user(owner);
  await u.request({ t: 'watch', robot: r.id });

  await t.test('the hub hears nothing (its link silenced): ERROR TIMEOUT, retried', async (t) => {
    proxy.muteRobots();
    const d = await py.next((f) => f.event === 'disconnected', 'the TIMEOUT close', 4 * HEARTBEAT_MS + 5_000);
    t.match(d, { code: 'TIMEOUT', retryable: true, error: 'ConnectionLost' });
    const retry = await py.next((f) => f.event === 'retry', 'a backoff delay');
    t.ok(retry.delay >= 0.1 && retry.delay <= 0.2, `first delay ${retry.delay} s within [0.1, 0.2] (initial 0.2 s, equal jitter)`);
    t.match(await py.next((f) => f.event === 'welcome', 'welcomed again'), { robotId: r.id });
    await u.next((f) => f.t === 'robot' && f.robot === r.id && f.kind === 'online', 'the watcher sees it back');
  });

  await t.test('the link is cut (no ERROR): retried', async (t) => {
    proxy.cut();
    t.match(await py.next((f) => f.event === 'disconnected', 'the cut'), { code: 'CLOSED', retryable: true });
    const retry = await py.next((f) => f.event === 'retry', 'a backoff delay');
    t.ok(retry.delay >= 0.1 && retry.delay <= 0.4, `delay ${retry.delay} s within the second attempt's bounds [0.1, 0.4]`);
    await py.next((f) => f.event === 'welcome', 'welcomed again');
    py.send({ op: 'publish', channel: 'pose', payload: { back: true } });
    t.same((await u.next((f) => f.t === 'tm' && f.robot === r.id && f.data?.back === true, 'telemetry after the reconnect')).ch, 1);
  });

  await t.test('another connection of the robot: REPLACED, not retried', async (t) => {
    const before = proxy.connections;
    const other = await h.connectRobot(r);
    t.equal(other.robotId, r.id);
    t.match(await py.next((f) => f.event === 'disconnected', 'replaced'), { code: 'REPLACED', retryable: false, error: 'Replaced' });
    await ended(t, py, 'REPLACED', 'Replaced');
    t.equal(proxy.connections, before, 'no reconnect attempt');
    t.same(py.all('retry').length, 2, 'only the two retryable ends were retried');
  });
});

t.test('the reliable uplink (opt-in): numbered, acknowledged, replayed after drops, nothing lost, nothing doubled', async (t) => {
  const r = await h.enroll(owner);
  const proxy = await LinkProxy.start(t, robotPort);
  const py = startPyRobot(t, proxy.port, await filesOf(t, r), ['--reliable']);
  await py.next((f) => f.event === 'welcome', 'WELCOME');
  const u = await h.user(owner);
  await u.request({ t: 'watch', robot: r.id });
  const logs = () => u.frames.filter((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2);
  const publish = (n: number) => py.send({ op: 'publish', channel: 'log', payload: { n } });
  /** Waits (up to 10 s) until the robot's buffer holds nothing unacknowledged. */
  const drained = async (what: string) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      py.send({ op: 'buffer' });
      const b = await py.next((f) => f.event === 'buffer', `the buffer (${what})`);
      if (b.pending.length === 0) return b;
      if (Date.now() > deadline) throw new Error(`still unacknowledged after 10 s (${what}): ${JSON.stringify(b.pending)}`);
      await u.barrier(); // a round trip to the hub before asking again
    }
  };

  for (let n = 1; n <= 3; n++) publish(n);
  await u.take((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2, 3, 'samples 1-3');
  await drained('1-3 acknowledged');

  await t.test('samples the hub never received are replayed after the reconnect', async (t) => {
    proxy.muteRobots();
    for (let n = 4; n <= 5; n++) publish(n);
    t.match(await py.next((f) => f.event === 'disconnected', 'the TIMEOUT close', 4 * HEARTBEAT_MS + 5_000), { code: 'TIMEOUT' });
    publish(6); // while offline: kept in the buffer
    await py.next((f) => f.event === 'welcome', 'welcomed again');
    await u.take((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2, 3, 'samples 4-6, replayed');
  });

  await t.test('samples stored whose ACK was lost are not sent twice (WELCOME says what is stored)', async (t) => {
    proxy.muteHub();
    for (let n = 7; n <= 8; n++) publish(n);
    await u.take((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2, 2, 'samples 7-8 stored and delivered');
    t.match(await py.next((f) => f.event === 'disconnected', 'the robot gives the silent hub up', 4 * HEARTBEAT_MS + 5_000), {
      code: 'HEARTBEAT_TIMEOUT',
    });
    await py.next((f) => f.event === 'welcome', 'welcomed again');
    await drained('7-8 known as stored');
  });

  publish(9);
  await u.next((f) => f.t === 'tm' && f.robot === r.id && f.ch === 2 && f.data?.n === 9, 'the next sample');
  await u.barrier();
  t.same(
    logs().map((f) => [f.seq, f.data.n]),
    [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => [n, n]),
    'every sample reached the watcher once, in order, with its seq',
  );
  t.equal(py.all('buffer').at(-1)?.dropped, 0);
  t.equal((await py.stop()).code, 0);
});

t.test('refusals become clear errors and the right retry decision', async (t) => {
  await t.test('a revoked certificate: CertificateRevoked, one attempt, not retried', async (t) => {
    const r = await h.enroll(owner);
    const res = await h.api.delete(`/api/v1/robots/${r.id}/certificate`, { token: owner.token });
    t.equal(res.status, 200, res.text);
    const proxy = await LinkProxy.start(t, robotPort);
    const py = startPyRobot(t, proxy.port, await filesOf(t, r));
    const e = await ended(t, py, 'CERTIFICATE_REVOKED', 'CertificateRevoked');
    t.equal(e.attempts, 1);
    t.equal(proxy.connections, 1, 'dialled once');
    t.same(py.all('retry'), []);
  });

  await t.test('a certificate from another CA: CertificateUntrusted, not retried', async (t) => {
    const r = await h.enroll(owner);
    const dir = await tempDir(t);
    const foreign = await initCa({ certFile: `${dir}/ca.crt`, keyFile: `${dir}/ca.key` }, { commonName: 'Someone else' });
    const cert = await issueRobotCert(foreign, r.id);
    const py = startPyRobot(t, robotPort, await filesOf(t, { cert: cert.certPem, key: cert.keyPem }));
    t.equal((await ended(t, py, 'CERTIFICATE_UNTRUSTED', 'CertificateUntrusted')).attempts, 1);
  });

  await t.test('an expired certificate: refused before dialling; the hub refuses it too', async (t) => {
    const r = await h.enroll(owner);
    const ca = await loadCa(defaultCaFiles(h.dataDir));
    const cert = await issueRobotCert(ca, r.id, { notBefore: new Date(Date.now() - 3 * 86_400_000), validDays: 1 });
    await h.hub.store.robots.addCertificate(r.id, cert);
    const files = await filesOf(t, { cert: cert.certPem, key: cert.keyPem });
    const proxy = await LinkProxy.start(t, robotPort);
    const py = startPyRobot(t, proxy.port, files);
    const e = await ended(t, py, 'CERTIFICATE_EXPIRED', 'CertificateExpired');
    t.match(e.message, /expired at .*not dialling the hub/);
    t.equal(proxy.connections, 0, 'never dialled');
    const unchecked = startPyRobot(t, proxy.port, files, ['--no-check']);
    const hub = await ended(t, unchecked, 'CERTIFICATE_EXPIRED', 'CertificateExpired');
    t.match(hub.message, /^CERTIFICATE_EXPIRED: /, "without the check, the hub's ERROR frame says the same");
    t.equal(proxy.connections, 1, 'dialled once');
  });

  await t.test('a certificate not yet valid: CertificateNotYetValid, not retried (a clock to fix first)', async (t) => {
    const r = await h.enroll(owner);
    const ca = await loadCa(defaultCaFiles(h.dataDir));
    const cert = await issueRobotCert(ca, r.id, { notBefore: new Date(Date.now() + 86_400_000), validDays: 30 });
    await h.hub.store.robots.addCertificate(r.id, cert);
    const files = await filesOf(t, { cert: cert.certPem, key: cert.keyPem });
    const proxy = await LinkProxy.start(t, robotPort);
    const py = startPyRobot(t, proxy.port, files);
    t.match((await ended(t, py, 'CERTIFICATE_NOT_YET_VALID', 'CertificateNotYetValid')).message, /clock/);
    t.equal(proxy.connections, 0, 'never dialled');
    const unchecked = startPyRobot(t, proxy.port, files, ['--no-check']);
    await ended(t, unchecked, 'CERTIFICATE_NOT_YET_VALID', 'CertificateNotYetValid');
    t.equal(proxy.connections, 1, "dialled once: the hub's refusal is not retried either");
    // notBefore in the error: test/python-enroll.test.ts.
  });

  await t.test("the hub's certificate does not verify (wrong CA): retried, loudly", async (t) => {
    const r = await h.enroll(owner);
    const dir = await tempDir(t);
    const other = await initCa({ certFile: `${dir}/ca.crt`, keyFile: `${dir}/ca.key` }, { commonName: 'Not the hub' });
    const py = startPyRobot(t, robotPort, await filesOf(t, r, other.certPem));
    const retry = await py.next((f) => f.event === 'retry', 'a retry');
    t.match(retry, { code: 'SERVER_CERTIFICATE_UNTRUSTED', error: 'ServerCertificateError' });
    t.equal((await py.stop()).code, 0);
  });
});
