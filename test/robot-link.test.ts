// Smoke: a robot connects over mutual TLS, a user watches it, gets telemetry, takes the lease,
// sends a command and an emergency stop.

import t from 'tap';
import { startRobotHub, waitUntil } from './helpers/robots.js';

const h = await startRobotHub(t);

t.test('end to end', async (t) => {
  const owner = await h.signUp('own');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r);
  t.equal(robot.robotId, r.id);
  const u = await h.user(owner);
  const w = await u.request({ t: 'watch', robot: r.id });
  t.equal(w.t, 'watching');
  t.equal(w.online, true);
  t.equal(w.role, 'owner');
  robot.telemetry(1, { x: 1, y: 2 });
  robot.telemetry(2, 'hello');
  const tm1 = await u.next((f) => f.t === 'tm' && f.ch === 1, 'pose');
  t.same(tm1.data, { x: 1, y: 2 });
  const tm2 = await u.next((f) => f.t === 'tm' && f.ch === 2, 'log');
  t.equal(tm2.data, 'hello');
  const noLease = await u.request({ t: 'cmd', robot: r.id, name: 'move', args: { x: 1 } });
  t.equal(noLease.code, 'LEASE_REQUIRED');
  const leased = await u.request({ t: 'lease', robot: r.id, op: 'acquire' });
  t.equal(leased.t, 'leased');
  t.equal(leased.lease.holder.id, owner.id);
  robot.on('command', (c) => {
    robot.status(c.command, 'accepted');
    robot.status(c.command, 'completed', { ok: true });
  });
  const q = await u.request({ t: 'cmd', robot: r.id, name: 'move', args: { x: 1 } });
  t.equal(q.t, 'queued');
  const stages = await u.take((f) => f.t === 'cmd' && f.cmd === q.cmd, 3, 'stages');
  t.same(
    stages.map((f) => f.stage),
    ['delivered', 'accepted', 'completed'],
  );
  t.same(stages[2]?.detail, { ok: true });
  const es = new Promise<string>((resolve) => robot.once('estop', resolve));
  const e = await u.request({ t: 'estop', robot: r.id });
  t.equal(e.t, 'queued');
  t.equal(await es, e.cmd);
  const leaseEnd = await u.next((f) => f.t === 'lease' && f.reason === 'estop', 'lease revoked');
  t.equal(leaseEnd.lease, null);
  const status = await h.api.get(`/api/v1/robots/${r.id}/status`, { token: owner.token });
  t.equal(status.status, 200, status.text);
  t.equal(status.body.status.online, true);
  await robot.close();
  const off = await u.next((f) => f.t === 'robot' && f.kind === 'offline', 'offline');
  t.type(off.lastSeen, 'number');
  // Outcomes are written after the frames that report them: wait for both rows to settle.
  const audit = await waitUntil(
    () => h.api.get(`/api/v1/robots/${r.id}/audit`, { token: owner.token }),
    (a) => a.status !== 200 || a.body.commands.every((c: { outcome: string | null }) => c.outcome !== null),
    'audit outcomes written',
  );
  t.equal(audit.status, 200, audit.text);
  t.same(
    audit.body.commands.map((c: { command: string; outcome: string }) => [c.command, c.outcome]),
    [
      ['estop', 'lost'],
      ['move', 'completed'],
    ],
  );
});
