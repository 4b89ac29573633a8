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
    (a) => a.status !== 200 || (a.body.commands.length === 2 && a.body.commands.every((c: { outcome: string | null }) => c.outcome !== null)),
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

t.test('the audit write runs beside the robot: a stop overtakes a command being recorded; a failed write refuses the command', async (t) => {
  const sql = h.hub.store.db.sql;
  // Real database behaviour, provoked by a trigger: `slow` commands take 1 s to record, `broken` ones fail.
  await sql.unsafe(`
    CREATE OR REPLACE FUNCTION test_audit_hook() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.command = 'slow' THEN PERFORM pg_sleep(1); END IF;
      IF NEW.command = 'broken' THEN RAISE EXCEPTION 'audit refused by test'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_audit_hook BEFORE INSERT ON command_audit FOR EACH ROW EXECUTE FUNCTION test_audit_hook();`);
  t.teardown(() => sql.unsafe('DROP TRIGGER IF EXISTS test_audit_hook ON command_audit; DROP FUNCTION IF EXISTS test_audit_hook()'));

  const owner = await h.signUp('aud');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r);
  const received: string[] = [];
  robot.on('command', (c) => received.push(c.name));
  robot.on('estop', (id) => {
    received.push('estop');
    robot.status(id, 'completed');
  });
  const u = await h.user(owner);
  t.equal((await u.request({ t: 'lease', robot: r.id, op: 'acquire' })).t, 'leased');

  const broken = await u.request({ t: 'cmd', robot: r.id, name: 'broken' });
  t.match(broken, { t: 'error', code: 'UNAVAILABLE' }, 'a command that cannot be recorded is refused as retryable');

  const slowId = u.id();
  u.send({ t: 'cmd', id: slowId, robot: r.id, name: 'slow' });
  const stop = await u.request({ t: 'estop', robot: r.id });
  t.equal(stop.t, 'queued', 'the stop is queued while the command is still being recorded');
  const slow = await u.next((f) => f.id === slowId, 'the slow command’s reply', 10_000);
  t.match(slow, { t: 'error', code: 'LEASE_REQUIRED' }, 'the stop ended the lease, so the recorded command is not sent');
  const rows = await waitUntil(
    () => sql<{ command: string; outcome: string | null }[]>`SELECT command, outcome FROM command_audit WHERE robot_id = ${r.id} ORDER BY command`,
    (rs) => rs.length === 2 && rs.every((x) => x.outcome !== null),
    'both rows settled',
  );
  t.same(
    rows.map((x) => [x.command, x.outcome]),
    [
      ['estop', 'completed'],
      ['slow', 'not_sent'],
    ],
    'the refused command is audited as not sent; nothing was recorded for the broken one',
  );
  t.same(received, ['estop'], 'the robot got the stop and nothing else');
});
