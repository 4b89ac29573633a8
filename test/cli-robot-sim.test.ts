// `switchboard robot-sim` against a real hub (its robot endpoint on an ephemeral port): a watcher
// receives the simulated telemetry, the simulator answers a command and an e-stop, SIGINT stops it
// cleanly; bad arguments exit 2 with a message naming the flag. Then the simulation loop itself
// (src/robot-kit/sim.ts) on a fake link: rates, delayed completion, e-stop, stop, close, stalls.

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { Emitter } from '../src/client/emitter.js';
import type { RobotClientEvents } from '../src/robot-kit/robot-client.js';
import { LOG_CHANNEL, POSE_CHANNEL, SIM_CHANNELS, simulateRobot } from '../src/robot-kit/sim.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';
import { type Enrolled, startRobotHub } from './helpers/robots.js';

const h = await startRobotHub(t);
const hubAddr = `127.0.0.1:${h.hub.robots?.port}`;
const text = (p: ReturnType<typeof spawnCli>) => p.lines.map((l) => l.text ?? JSON.stringify(l)).join('\n');

async function writePairs(dir: string, robots: Enrolled[]): Promise<void> {
  for (const r of robots) {
    await writeFile(path.join(dir, `${r.id}.crt`), r.cert);
    await writeFile(path.join(dir, `${r.id}.key`), r.key, { mode: 0o600 });
  }
}

t.test('robot-sim: telemetry reaches a watcher, a command and an e-stop are answered, SIGINT stops it', async (t) => {
  const owner = await h.signUp('sim');
  const robots = [await h.enroll(owner, 'sim-a'), await h.enroll(owner, 'sim-b')];
  const certs = await tempDir(t);
  await writePairs(certs, robots);
  await writeFile(path.join(certs, 'notes.txt'), 'not a certificate pair: ignored');
  await writeFile(path.join(certs, 'orphan.crt'), 'a certificate without its key: ignored');
  // --ca defaults to <data dir>/pki/robot-ca.crt: the hub's own data dir here.
  const sim = spawnCli(t, ['robot-sim', '--hub', hubAddr, '--certs', certs, '--rate', '50', '--command-delay', '20'], { SB_DATA_DIR: h.dataDir });
  for (const r of robots) await sim.waitFor((l) => new RegExp(`robot ${r.id} connected \\(\\d/2\\)`).test(l.text ?? ''), `${r.name} connected`);

  const robot = robots[0] as Enrolled;
  const u = await h.user(owner);
  const w = await u.request({ t: 'watch', robot: robot.id });
  t.equal(w.t, 'watching');
  t.equal(w.online, true);
  t.same(
    w.channels.map((c: { name: string; delivery: string }) => [c.name, c.delivery]),
    [
      ['pose', 'latest'],
      ['log', 'reliable'],
    ],
  );
  const a = await u.next((f) => f.t === 'tm' && f.ch === POSE_CHANNEL, 'a pose sample');
  const b = await u.next((f) => f.t === 'tm' && f.ch === POSE_CHANNEL, 'another pose sample');
  t.type(a.data.x, 'number');
  t.type(a.data.y, 'number');
  t.ok(b.data.seq > a.data.seq, 'samples arrive in order, each newer');
  t.ok(b.ts >= a.ts, 'robot timestamps do not go back');
  const log = await u.next((f) => f.t === 'tm' && f.ch === LOG_CHANNEL, 'a log line');
  t.match(log.data, { level: 'info', msg: /^sample \d+$/ });

  t.equal((await u.request({ t: 'lease', robot: robot.id, op: 'acquire' })).t, 'leased');
  const q = await u.request({ t: 'cmd', robot: robot.id, name: 'dock', args: { bay: 3 } });
  t.equal(q.t, 'queued');
  const stages = await u.take((f) => f.t === 'cmd' && f.cmd === q.cmd, 3, 'command stages');
  t.same(
    stages.map((f) => f.stage),
    ['delivered', 'accepted', 'completed'],
  );
  t.same(stages[2]?.detail, { ok: true, name: 'dock' });

  const e = await u.request({ t: 'estop', robot: robot.id });
  t.equal(e.t, 'queued');
  const stop = await u.take((f) => f.t === 'cmd' && f.cmd === e.cmd, 3, 'e-stop stages');
  t.same(
    stop.map((f) => f.stage),
    ['delivered', 'accepted', 'completed'],
  );
  t.same(stop[2]?.detail, { stopped: true });

  sim.child.kill('SIGINT');
  t.equal((await sim.exited).code, 0, sim.stderr());
  t.match(text(sim), /stopped after [\d.]+ s, 2 robots: \d+ frames sent \([\d.]+\/s\), 1 command answered, 1 e-stop/);
  t.equal(sim.stderr(), '', 'nothing on stderr');
  const off = await u.next((f) => f.t === 'robot' && f.kind === 'offline', 'the robot goes offline');
  t.type(off.lastSeen, 'number');
});

t.test('robot-sim: --robots takes the first pairs, --duration ends the run by itself', async (t) => {
  const owner = await h.signUp('simd');
  const robots = [await h.enroll(owner), await h.enroll(owner), await h.enroll(owner)];
  const certs = await tempDir(t);
  await writePairs(certs, robots);
  const first = robots.map((r) => r.id).sort()[0] as string;
  const caFile = path.join(h.dataDir, 'pki', 'robot-ca.crt');
  const sim = spawnCli(t, ['robot-sim', '--hub', hubAddr, '--ca', caFile, '--certs', certs, '--robots', '1', '--rate', '20', '--duration', '0.3'], {});
  t.equal((await sim.exited).code, 0, sim.stderr());
  const out = text(sim);
  t.match(out, /connecting 1 robot to 127\.0\.0\.1:\d+ \(20 Hz each\)/);
  t.match(out, `robot ${first} connected (1/1)`);
  t.equal(out.match(/connected \(/g)?.length, 1, 'only one robot');
  t.match(out, /stopped after [\d.]+ s, 1 robot: \d+ frames sent/);
});

t.test('robot-sim: a refused certificate is reported; none connected exits 1', async (t) => {
  const owner = await h.signUp('simr');
  const r = await h.enroll(owner);
  const revoked = await h.api.request('DELETE', `/api/v1/robots/${r.id}/certificate`, undefined, { token: owner.token });
  t.equal(revoked.status, 200, revoked.text);
  const certs = await tempDir(t);
  await writePairs(certs, [r]);
  const sim = spawnCli(t, ['robot-sim', '--hub', hubAddr, '--certs', certs, '--duration', '5'], { SB_DATA_DIR: h.dataDir });
  t.equal((await sim.exited).code, 1);
  t.match(sim.stderr(), `robot ${r.id}: not connected: CERTIFICATE_REVOKED`);
  t.match(sim.stderr(), /no robot connected/);
});

t.test('robot-sim: bad arguments exit 2 with a message naming the flag', async (t) => {
  const empty = await tempDir(t);
  const withPair = await tempDir(t);
  await writeFile(path.join(withPair, 'r.crt'), 'x');
  await writeFile(path.join(withPair, 'r.key'), 'x');
  const missing = path.join(empty, 'no-such-dir');
  const cases: [string[], RegExp][] = [
    [['--certs', missing], /--certs: cannot read the directory .*no-such-dir \(ENOENT\)/],
    [['--certs', empty], /--certs: no robot certificate pairs \(<robot-id>\.crt with <robot-id>\.key\) in .*robot create/],
    [['--certs', withPair, '--robots', '2'], /--robots: 2 asked for, but .* holds only 1 certificate pair/],
    [['--certs', withPair, '--ca', missing], /--ca: cannot read .*no-such-dir \(ENOENT\)/],
    [['--certs', withPair], /--ca: cannot read .*robot-ca\.crt \(ENOENT\); run `switchboard pki init`/],
    [['--hub', 'localhost'], /--hub: expected HOST:PORT/],
    [['--hub', '[::1]:70000'], /--hub: expected HOST:PORT/],
    [['--rate', '0'], /--rate: expected a number > 0, got "0"/],
    [['--rate', '20000'], /--rate: at most 10000/],
    [['--duration', 'soon'], /--duration: expected a number > 0/],
    [['--robots', '1.5'], /--robots: expected an integer > 0/],
    [['--command-delay=-1'], /--command-delay: expected an integer ≥ 0/],
    [['extra'], /usage: switchboard robot-sim/],
  ];
  // In parallel: each is a fresh process that exits at once.
  const runs = cases.map(([args]) => spawnCli(t, ['robot-sim', ...args], { SB_DATA_DIR: empty }));
  for (const [i, [args, message]] of cases.entries()) {
    const p = runs[i] as ReturnType<typeof spawnCli>;
    t.equal((await p.exited).code, 2, args.join(' '));
    t.match(p.stderr(), message, args.join(' '));
  }
  const help = spawnCli(t, ['--help'], {});
  t.equal((await help.exited).code, 0);
  t.match(text(help), /switchboard robot-sim \[--hub HOST:PORT\]/);
});

// ---- the loop, on a fake link ----

class FakeLink extends Emitter<RobotClientEvents> {
  closed = false;
  readonly telemetryFrames: { ch: number; payload: any }[] = [];
  readonly statuses: [string, string, unknown][] = [];
  full = false;
  private waiters: (() => void)[] = [];

  telemetry(ch: number, payload: unknown): boolean {
    this.telemetryFrames.push({ ch, payload });
    this.wake();
    return !this.full;
  }

  status(command: string, stage: string, detail: unknown = null): boolean {
    this.statuses.push([command, stage, detail]);
    return true;
  }

  fire<K extends keyof RobotClientEvents>(event: K, ...args: Parameters<RobotClientEvents[K]>): void {
    this.emit(event, ...args);
  }

  /** Resolves once `n` telemetry frames have been written in all. */
  frames(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (this.telemetryFrames.length >= n ? resolve() : this.waiters.push(check));
      check();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

const command = (id: string, name = 'go') => ({ tag: 10 as const, command: id, name, args: null, timeoutMs: 1000 });

t.test('sim: pose at the rate with a log line per second of samples; commands and e-stops answered', async (t) => {
  const link = new FakeLink();
  const sim = simulateRobot(link, { rate: 200, commandDelayMs: 60_000 });
  await link.frames(30);
  const pose = link.telemetryFrames.filter((f) => f.ch === POSE_CHANNEL);
  t.same(
    pose.slice(0, 3).map((f) => f.payload.seq),
    [0, 1, 2],
  );
  t.same(link.telemetryFrames[1], { ch: LOG_CHANNEL, payload: { level: 'info', msg: 'sample 0' } }, 'a log line with sample 0');
  t.equal(sim.stats.sent, link.telemetryFrames.length);
  t.equal(sim.stats.pose + sim.stats.log, sim.stats.sent);

  link.fire('command', command('c1'));
  link.fire('command', command('c2'));
  t.same(link.statuses, [
    ['c1', 'accepted', null],
    ['c2', 'accepted', null],
  ]);
  link.fire('estop', 'e1');
  t.same(link.statuses.slice(2), [
    ['c1', 'failed', 'emergency stop'],
    ['c2', 'failed', 'emergency stop'],
    ['e1', 'accepted', null],
    ['e1', 'completed', { stopped: true }],
  ]);
  link.fire('hubError', { code: 'RATE_LIMITED', message: 'slow down', ref: null });
  t.equal(sim.stats.hubErrors, 1);
  t.same(sim.stats.lastHubError, { code: 'RATE_LIMITED', message: 'slow down' });

  link.fire('command', command('c3', 'park'));
  sim.stop();
  sim.stop();
  t.equal(await sim.done, 'stopped');
  t.same(link.statuses.slice(-2), [
    ['c3', 'accepted', null],
    ['c3', 'failed', 'the simulator stopped'],
  ]);
  t.equal(sim.stats.commands, 3);
  t.equal(sim.stats.estops, 1);
  const sent = link.telemetryFrames.length;
  link.fire('command', command('late'));
  link.fire('estop', 'late');
  t.equal(link.telemetryFrames.length, sent, 'nothing is sent after the end');
  t.equal(link.statuses.filter(([id]) => id === 'late').length, 0, 'nor answered');
});

t.test('sim: immediate and delayed completion, custom payload, backpressure counted', async (t) => {
  const link = new FakeLink();
  link.full = true;
  const sim = simulateRobot(link, { rate: 100, commandDelayMs: 5, logEvery: 0, pose: (seq) => ({ n: seq }) });
  await link.frames(3);
  t.ok(
    link.telemetryFrames.every((f) => f.ch === POSE_CHANNEL),
    'logEvery 0: no log lines',
  );
  t.same(link.telemetryFrames[0]?.payload, { n: 0 });
  t.equal(sim.stats.backpressured, sim.stats.sent);
  const completed = new Promise<void>((resolve) => {
    const status = link.status.bind(link);
    link.status = (c, stage, detail) => {
      const r = status(c, stage, detail);
      if (stage === 'completed') resolve();
      return r;
    };
  });
  link.fire('command', command('d1', 'wave'));
  await completed;
  t.same(link.statuses, [
    ['d1', 'accepted', null],
    ['d1', 'completed', { ok: true, name: 'wave' }],
  ]);
  sim.stop();
  await sim.done;

  const now = new FakeLink();
  const quick = simulateRobot(now, { rate: 10 });
  now.fire('command', command('n1'));
  t.same(now.statuses, [
    ['n1', 'accepted', null],
    ['n1', 'completed', { ok: true, name: 'go' }],
  ]);
  quick.stop();
});

t.test('sim: ends at its duration, or when the link closes', async (t) => {
  const link = new FakeLink();
  const sim = simulateRobot(link, { rate: 0.5, durationMs: 30 });
  t.equal(await sim.done, 'duration', 'a slow rate does not hold the end back');
  t.equal(sim.stats.pose, 1);

  const closing = new FakeLink();
  const sim2 = simulateRobot(closing, { rate: 50, commandDelayMs: 60_000 });
  closing.fire('command', command('x'));
  closing.closed = true;
  closing.fire('close');
  t.equal(await sim2.done, 'closed');
  t.same(closing.statuses, [['x', 'accepted', null]], 'a closed link gets no more statuses');

  const silent = new FakeLink();
  const sim3 = simulateRobot(silent, { rate: 1000 });
  await silent.frames(1);
  silent.closed = true; // closed without the event: the next tick notices
  t.equal(await sim3.done, 'closed');

  t.throws(() => simulateRobot(new FakeLink(), { rate: 0 }), RangeError);
  t.throws(() => simulateRobot(new FakeLink(), { rate: Number.POSITIVE_INFINITY }), RangeError);
  t.equal(SIM_CHANNELS.length, 2);
});

t.test('sim: after a stall of more than a second the backlog is skipped, not burst', async (t) => {
  const realNow = performance.now.bind(performance);
  let offset = 0;
  performance.now = () => realNow() + offset;
  t.teardown(() => {
    performance.now = realNow;
  });
  const link = new FakeLink();
  const sim = simulateRobot(link, { rate: 10, logEvery: 0 });
  await link.frames(1);
  offset = 5_000; // the event loop "stalled" for 5 s: 50 samples are due
  await link.frames(11);
  t.equal(sim.stats.pose, 11, 'one second of samples (10) after the first');
  t.ok(sim.stats.skipped >= 40 && sim.stats.skipped <= 45, `the other ~40 skipped (${sim.stats.skipped})`);
  sim.stop();
});
