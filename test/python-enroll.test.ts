// The Python robot library's enrolment and renewal against a real hub: an owner makes a fleet
// bootstrap token over REST; a Python robot makes its own key (0600, never sent), enrolls with the
// token, connects with its own key and a watcher sees its telemetry; a used-up token, an expired one
// and a taken name give their exceptions at once, never retried; a renewal over the live link saves
// a new key and certificate and reconnects with them at once, after which the old certificate is
// refused (CERTIFICATE_REVOKED); automatic renewal inside its window, and the hub's once-a-minute
// limit reported as retryable; a certificate not yet valid ends the robot (not retried) with when it
// starts. Waits on the robots' JSON events, never sleeps.

import { spawn } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import t, { type Test } from 'tap';
import { defaultCaFiles, issueRobotCert, loadCa } from '../src/auth/pki.js';
import { uniqueName } from './helpers/api.js';
import { tempDir } from './helpers/hub.js';
import { LinkProxy, PY_ENV, PY_ROOT, PYTHON, PyRobot, type RobotFiles, robotFiles, startPyRobot } from './helpers/python-robot.js';
import { startRobotHub, type User } from './helpers/robots.js';

const h = await startRobotHub(t, { env: { SB_ROBOT_HEARTBEAT_MS: '1000' } });
const robotPort = h.hub.robots?.port ?? 0;
const owner = await h.signUp('pyenr');

async function bootstrapToken(u: User, body: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const r = await h.api.post('/api/v1/robots/bootstrap-tokens', body, { token: u.token });
  if (r.status !== 201) throw new Error(`token: ${r.status} ${r.text}`);
  return { id: r.body.token.id, secret: r.body.secret };
}

/** Where a robot keeps its files (none exist yet). */
async function emptyFiles(t: Test): Promise<RobotFiles> {
  const dir = await tempDir(t, 'sb-pyenr-');
  return { key: path.join(dir, 'robot.key'), cert: path.join(dir, 'robot.crt'), ca: path.join(dir, 'robot-ca.crt') };
}

/** Runs clients/python/tests/harness_enroll.py; its JSON lines are the events. */
function pyEnroll(t: Test, secret: string, name: string, files: RobotFiles, attempts = 5): PyRobot {
  const args = [
    '--url',
    h.hub.url,
    '--token',
    secret,
    '--name',
    name,
    '--key',
    files.key,
    '--cert',
    files.cert,
    '--ca',
    files.ca,
    '--attempts',
    String(attempts),
  ];
  const child = spawn(PYTHON, [path.join(PY_ROOT, 'tests/harness_enroll.py'), ...args], { env: PY_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const py = new PyRobot(child);
  t.teardown(() => {
    if (!py.exit) child.kill('SIGKILL');
  });
  return py;
}

const spki = (pem: string) => createPublicKey(pem).export({ type: 'spki', format: 'der' });
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

t.test('a bootstrap token: the Python robot makes its key, enrolls, connects with it; a watcher sees its telemetry', async (t) => {
  const tok = await bootstrapToken(owner, { name: 'python fleet', uses: 1 });
  const files = await emptyFiles(t);
  const name = uniqueName('pyrover');
  const enr = pyEnroll(t, tok.secret, name, files);
  const e = await enr.next((f) => f.event === 'enrolled', 'enrolled');
  t.match(e, { name, ownerId: owner.id, madeKey: true, keyMode: '0o600', retries: 0 }, 'the key was made on the robot, 0600');
  t.equal((await enr.exited).code, 0);

  const keyPem = await readFile(files.key, 'utf8');
  const cert = new X509Certificate(await readFile(files.cert, 'utf8'));
  t.equal(cert.subject, `CN=${e.robotId}`, 'a certificate naming the robot');
  t.ok(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(spki(keyPem)), 'for the key made on the robot');
  t.equal(createPublicKey(keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1', 'EC P-256 by default');
  t.equal(await readFile(files.ca, 'utf8'), h.caPem, 'the robot CA written beside it');
  const robots = await h.api.get('/api/v1/robots?limit=200', { token: owner.token });
  t.ok(
    robots.body.robots.some((r: { id: string; name: string }) => r.id === e.robotId && r.name === name),
    "the robot is the token owner's",
  );
  const tokens = await h.api.get('/api/v1/robots/bootstrap-tokens', { token: owner.token });
  t.match(
    tokens.body.tokens.find((x: { id: string }) => x.id === tok.id),
    { usesLeft: 0 },
    'the token is used up',
  );

  const py = startPyRobot(t, robotPort, files);
  t.match(await py.next((f) => f.event === 'welcome', 'WELCOME'), { robotId: e.robotId, attempts: 1 }, 'connected with its own key');
  const u = await h.user(owner);
  const w = await u.request({ t: 'watch', robot: e.robotId });
  t.equal(w.online, true);
  py.send({ op: 'publish', channel: 'pose', payload: { x: 3, y: 4, theta: 0 } });
  const tm = await u.next((f) => f.t === 'tm' && f.robot === e.robotId && f.ch === 1, 'its telemetry');
  t.same(tm.data, { x: 3, y: 4, theta: 0 });
  t.equal((await py.stop()).code, 0);
});

t.test('a used-up token, an expired one, a taken name: the right exception at once, never retried', async (t) => {
  const once = await bootstrapToken(owner, { uses: 1 });
  const first = pyEnroll(t, once.secret, uniqueName('pyfirst'), await emptyFiles(t));
  await first.next((f) => f.event === 'enrolled', 'the first enrolment');

  const expiring = await bootstrapToken(owner, { uses: 5, expiresInS: 60 });
  await h.hub.store.db.sql`UPDATE robot_bootstrap_tokens SET expires_at = now() - interval '1 second' WHERE id = ${expiring.id}`;
  const roomy = await bootstrapToken(owner, { uses: 5 });
  const taken = uniqueName('pytaken');
  const ok = pyEnroll(t, roomy.secret, taken, await emptyFiles(t));
  await ok.next((f) => f.event === 'enrolled', 'a robot takes the name');

  const cases: [string, { secret: string }, string | undefined, object][] = [
    ['used up', once, undefined, { code: 'BOOTSTRAP_TOKEN_USED_UP', error: 'BootstrapTokenRefused', status: 403 }],
    ['expired', expiring, undefined, { code: 'BOOTSTRAP_TOKEN_EXPIRED', error: 'BootstrapTokenRefused', status: 401 }],
    ['unknown', { secret: 'sbb_nobody-knows-this-one' }, undefined, { code: 'BOOTSTRAP_TOKEN_UNKNOWN', error: 'BootstrapTokenRefused', status: 401 }],
    ['a taken name', roomy, taken.toUpperCase(), { code: 'CONFLICT', error: 'NameTaken', status: 409 }],
  ];
  for (const [what, tok, name, expected] of cases) {
    const files = await emptyFiles(t);
    const py = pyEnroll(t, tok.secret, name ?? uniqueName('pyno'), files);
    const e = await py.next((f) => f.event === 'enroll_failed', `${what}: the refusal`);
    t.match(e, { ...expected, retryable: false, retries: 0 }, `${what}: ${e.message}`);
    t.equal((await py.exited).code, 2);
    t.same(py.all('retry'), [], `${what}: no retry (attempts=5 allowed it)`);
    t.notOk(await exists(files.cert), `${what}: no certificate written`);
  }
  const left = await h.api.get('/api/v1/robots/bootstrap-tokens', { token: owner.token });
  t.match(
    left.body.tokens.find((x: { id: string }) => x.id === roomy.id),
    { usesLeft: 4 },
    'the refused name took no use',
  );
});

t.test('renewal over the link: a new key and certificate saved, reconnected at once; the old certificate is refused then', async (t) => {
  const r = await h.enroll(owner);
  const files = await robotFiles(t, { cert: r.cert, key: r.key, ca: h.caPem });
  const oldFiles = await robotFiles(t, { cert: r.cert, key: r.key, ca: h.caPem });
  const py = startPyRobot(t, robotPort, files);
  await py.next((f) => f.event === 'welcome', 'WELCOME');
  const u = await h.user(owner);
  await u.request({ t: 'watch', robot: r.id });

  py.send({ op: 'renew' });
  const renewed = await py.next((f) => f.event === 'renewed', 'renewed');
  t.match(await py.next((f) => f.event === 'disconnected', 'the switch'), { code: 'RENEWED', retryable: true });
  t.match(await py.next((f) => f.event === 'welcome', 'welcomed with the new certificate'), { robotId: r.id });
  t.same(py.all('retry'), [], 'no backoff before the switch');

  const certPem = await readFile(files.cert, 'utf8');
  const keyPem = await readFile(files.key, 'utf8');
  t.equal(certPem, renewed.certPem, 'the certificate file holds the answer');
  t.not(certPem, r.cert, 'a new certificate');
  t.notOk(spki(keyPem).equals(spki(r.key)), 'for a new key');
  t.ok(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' }).equals(spki(keyPem)), 'the saved pair belongs together');
  t.equal((await stat(files.key)).mode & 0o777, 0o600, 'the new key is 0600');
  const fp = (pem: string) => Buffer.from(new X509Certificate(pem).fingerprint256.replaceAll(':', ''), 'hex');
  t.ok((await h.hub.store.robots.certificateByFingerprint(fp(r.cert)))?.certificate.revokedAt, 'the first use of the new one revoked the old one');

  py.send({ op: 'publish', channel: 'pose', payload: { after: 'renewal' } });
  t.same((await u.next((f) => f.t === 'tm' && f.robot === r.id && f.data?.after === 'renewal', 'telemetry on the new link')).ch, 1);

  const proxy = await LinkProxy.start(t, robotPort);
  const old = startPyRobot(t, proxy.port, oldFiles);
  t.match(await old.next((f) => f.event === 'ended', 'the old certificate refused'), {
    code: 'CERTIFICATE_REVOKED',
    error: 'CertificateRevoked',
    retryable: false,
  });
  t.equal(proxy.connections, 1, 'the old certificate: dialled once, not retried');
  t.same(py.all('disconnected').length, 1, 'the renewed robot stayed connected');
  t.equal((await py.stop()).code, 0);
});

t.test('automatic renewal inside its window; a second renewal within the minute is RATE_LIMITED, retryable', async (t) => {
  const r = await h.enroll(owner);
  const ca = await loadCa(defaultCaFiles(h.dataDir));
  const short = await issueRobotCert(ca, r.id, { validDays: 10 });
  await h.hub.store.robots.addCertificate(r.id, short);
  const files = await robotFiles(t, { cert: short.certPem, key: short.keyPem, ca: h.caPem });
  const py = startPyRobot(t, robotPort, files, ['--renew-before-days', '30']);
  await py.next((f) => f.event === 'welcome', 'WELCOME with the short certificate');
  const renewed = await py.next((f) => f.event === 'renewed', 'renewed at connect: 10 days left, a 30-day window');
  const days = (Date.parse(renewed.notAfter) - Date.now()) / 86_400_000;
  t.ok(days > 300, `the new certificate lasts ${days.toFixed(0)} days`);
  t.match(await py.next((f) => f.event === 'disconnected', 'the switch'), { code: 'RENEWED' });
  await py.next((f) => f.event === 'welcome', 'welcomed with the renewed certificate');
  t.equal(await readFile(files.cert, 'utf8'), renewed.certPem);

  py.send({ op: 'renew' });
  t.match(await py.next((f) => f.event === 'renew_failed', 'a second renewal'), { code: 'RATE_LIMITED', retryable: true, retryAfter: 60 });
  t.equal(await readFile(files.cert, 'utf8'), renewed.certPem, 'the files are untouched');
  t.same(py.all('renewed').length, 1, 'the renewed certificate is outside the window: renewed once');
  t.same(py.all('disconnected').length, 1, 'and the link stays up');
  t.equal((await py.stop()).code, 0);
});

t.test('a certificate not yet valid: the robot stops (not retried) and says when it starts', async (t) => {
  const r = await h.enroll(owner);
  const ca = await loadCa(defaultCaFiles(h.dataDir));
  const notBefore = new Date(Date.now() + 86_400_000);
  const cert = await issueRobotCert(ca, r.id, { notBefore, validDays: 30 });
  await h.hub.store.robots.addCertificate(r.id, cert);
  const files = await robotFiles(t, { cert: cert.certPem, key: cert.keyPem, ca: h.caPem });
  const proxy = await LinkProxy.start(t, robotPort);
  for (const [what, extra, dials] of [
    ['the local check', [], 0],
    ["the hub's refusal", ['--no-check'], 1],
  ] as const) {
    const py = startPyRobot(t, proxy.port, files, [...extra]);
    const e = await py.next((f) => f.event === 'ended', `${what}: the end`);
    t.match(e, { code: 'CERTIFICATE_NOT_YET_VALID', error: 'CertificateNotYetValid', retryable: false, attempts: 1 }, `${what}: ${e.message}`);
    t.ok(Math.abs(Date.parse(e.notBefore) - notBefore.getTime()) < 2_000, `${what}: notBefore ${e.notBefore}`);
    t.equal((await py.exited).code, 2);
    t.same(py.all('retry'), [], `${what}: not retried`);
    t.equal(proxy.connections, dials, `${what}: dialled ${dials} times`);
  }
});
