// The one JetStream health state (#3), under a fake clock: up while heartbeats succeed and are
// recent, failing on a failed or overdue heartbeat, and each change of state logged once.

import { pino } from 'pino';
import t from 'tap';
import { JetStreamHealth } from '../src/cluster/jetstream-health.js';

function setup() {
  let now = 1_000_000;
  const lines: Record<string, any>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const health = new JetStreamHealth(2_000, log, () => now);
  const states = () => lines.map((l) => l.msg as string);
  return { health, lines, states, advance: (ms: number) => (now += ms) };
}

const FAILING = 'JetStream failing: node heartbeat failed';
const RECOVERED = 'JetStream recovered: node heartbeats succeed again';

t.test('#3 health: repeated failures are logged once, the recovery once; up and failure agree throughout', async (t) => {
  const { health, lines, states, advance } = setup();
  t.equal(health.up, true);
  t.equal(health.failure, undefined);
  await health.run(async () => {});
  for (let i = 0; i < 3; i++) {
    advance(2_000);
    await health.run(() => Promise.reject(new Error('timeout')));
    t.equal(health.up, false, `down after failure ${i + 1}`);
    t.equal(health.failure, 'timeout');
  }
  t.same(states(), [FAILING], 'three failures, one line');
  t.match(lines[0], { reason: 'timeout', err: { message: 'timeout' } });
  advance(2_000);
  await health.run(async () => {});
  t.equal(health.up, true);
  t.equal(health.failure, undefined);
  t.same(states(), [FAILING, RECOVERED]);
  t.match(lines[1], { failure: 'timeout' });
  await health.run(async () => {});
  t.same(states(), [FAILING, RECOVERED], 'success after success: nothing logged');
});

t.test('#3 health: a heartbeat stuck on JetStream past two intervals is a failure, logged once', async (t) => {
  const { health, states, advance } = setup();
  let finish!: () => void;
  const stuck = health.run(
    () =>
      new Promise<void>((r) => {
        finish = r;
      }),
  );
  advance(2_000);
  await health.run(() => Promise.reject(new Error('not run: one in flight')));
  t.equal(health.up, true, 'still within two intervals');
  t.same(states(), []);
  advance(3_500);
  t.equal(health.up, false, 'overdue');
  t.equal(health.failure, 'node heartbeat overdue', 'the reason says so even before the next tick');
  await health.run(async () => {});
  t.same(states(), [FAILING], 'the next tick logs it, once');
  advance(2_000);
  await health.run(async () => {});
  t.same(states(), [FAILING], 'still stuck: not logged again');
  finish();
  await stuck;
  t.equal(health.up, true, 'the late heartbeat succeeded: up again');
  t.same(states(), [FAILING, RECOVERED]);
});
