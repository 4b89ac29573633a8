// A connected robot renews its certificate over its own link (RENEW → CERTIFICATE), with a key it
// made: the new certificate connects; the old one keeps working until then and is revoked at the
// new one's first use; a renewal the robot never used is replaced (deleted) by its next; bad requests get an
// ERROR with ref "renew" and leave the link up; a flood is limited per link and per robot.

import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { encodeHubFrame, encodeRobotFrame, frameBytes, MAX_CSR_BYTES, parseHubFrame, parseRobotFrame, Tag } from '../src/protocol/robot.js';
import { RobotConnectError, RobotRenewError } from '../src/robot-kit/robot-client.js';
import { RobotEnrollment } from '../src/store/robot-enrollment.js';
import { deviceCsr, tamperedSignature } from './helpers/csr.js';
import { RawRobotLink } from './helpers/robot-link.js';
import { CHANNELS, startRobotHub } from './helpers/robots.js';

const h = await startRobotHub(t);
const owner = await h.signUp('renew');
const store = h.hub.store;
const fpOf = (pem: string) => Buffer.from(new X509Certificate(pem).fingerprint256.replaceAll(':', ''), 'hex');

/** A robot registered with its own key (a CSR). */
async function ownKeyRobot() {
  const device = await deviceCsr('P-256');
  const r = await h.api.post('/api/v1/robots', { name: `r-${Math.random().toString(36).slice(2, 10)}`, csr: device.csrPem }, { token: owner.token });
  if (r.status !== 201) throw new Error(`create: ${r.status} ${r.text}`);
  return { id: r.body.robot.id as string, cert: r.body.certificatePem as string, key: device.keyPem };
}

t.test('a robot renews over its link, then connects with the new certificate; the old one is revoked then', async (t) => {
  const robot = await ownKeyRobot();
  const link = await h.connectRobot(robot);
  const next = await deviceCsr('Ed25519');
  const got = await link.renew(next.csrDer);
  t.equal(got.caPem, h.caPem, 'the CA certificate comes along');
  const cert = new X509Certificate(got.certPem);
  t.equal(cert.subject, `CN=${robot.id}`);
  t.equal(cert.publicKey.asymmetricKeyType, 'ed25519', 'for the new key');
  t.notOk(link.closed, 'the link stays up');
  t.ok(link.telemetry(1, { x: 1 }), 'and carries on');

  const old = await store.robots.certificateByFingerprint(fpOf(robot.cert));
  t.equal(old?.certificate.revokedAt, null, 'until the new certificate is used, the old one is valid');
  await link.close();
  const again = await h.connectRobot(robot);
  t.equal(again.robotId, robot.id, 'and still connects (a robot that lost the answer is not locked out)');
  await again.close();

  const renewed = await h.connectRobot({ cert: got.certPem, key: next.keyPem });
  t.equal(renewed.robotId, robot.id, 'the new certificate connects');
  const after = await store.robots.certificateByFingerprint(fpOf(robot.cert));
  t.ok(after?.certificate.revokedAt, 'its first use revoked the one it renewed');
  const refused = await h.connectRobot(robot).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(refused instanceof RobotConnectError && refused.code === 'CERTIFICATE_REVOKED', `the old certificate is refused: ${String(refused)}`);
  t.equal((await store.robots.certificateByFingerprint(fpOf(got.certPem)))?.certificate.revokedAt, null, 'the new one stays valid');
  await renewed.close();
});

t.test('the first use of a renewal closes a live link still on the old certificate', async (t) => {
  const robot = await ownKeyRobot();
  const old = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: robot.cert, key: robot.key });
  t.teardown(() => old.destroy());
  await old.hello(CHANNELS);
  const next = await deviceCsr();
  old.send({ tag: Tag.RENEW, csr: next.csrDer });
  const answer = (await old.next((f) => f.tag === Tag.CERTIFICATE, 'CERTIFICATE')) as { certPem: string };
  // The new certificate only authenticates (no HELLO, so no replacement): its first use alone
  // revokes the old one, and the link on it (a stolen key's, say) is closed.
  const fresh = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: answer.certPem, key: next.keyPem });
  t.teardown(() => fresh.destroy());
  t.match(await old.nextError('the old link refused'), { code: 'CERTIFICATE_REVOKED' });
  await old.waitClose();
  t.equal((await fresh.hello(CHANNELS)).robotId, robot.id, 'the new link is welcomed');
});

t.test('refused renewals: an ERROR with ref "renew", and the link stays up', async (t) => {
  const robot = await ownKeyRobot();
  const link = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: robot.cert, key: robot.key });
  t.teardown(() => link.destroy());
  await link.hello(CHANNELS);
  const good = await deviceCsr();

  link.send({ tag: Tag.RENEW, csr: tamperedSignature(good.csrDer) });
  const bad = await link.nextError('the refusal of a tampered request');
  t.match(bad, { code: 'CSR_SIGNATURE_INVALID', ref: 'renew' });

  link.write(frameBytes([Tag.RENEW, Buffer.alloc(MAX_CSR_BYTES + 1, 0x30)]));
  t.match(await link.nextError('an oversize RENEW'), { code: 'VALIDATION', ref: null }, 'oversize: a malformed frame');
  link.write(frameBytes([Tag.RENEW, 'not bytes']));
  t.match(await link.nextError('a RENEW of a string'), { code: 'VALIDATION' });

  // The refused request took the link's one renewal for the interval.
  link.send({ tag: Tag.RENEW, csr: good.csrDer });
  t.match(await link.nextError('the limit'), { code: 'RATE_LIMITED', ref: 'renew' });
  link.send({ tag: Tag.HEARTBEAT });
  t.notOk(link.endInfo, 'the link is still open');
  const certs = await store.robots.certificates(robot.id);
  t.equal(certs.length, 1, 'nothing was issued');
});

t.test('a renewal flood: one certificate, the rest RATE_LIMITED; a new link of the same robot is limited too', async (t) => {
  const robot = await ownKeyRobot();
  const link = await RawRobotLink.open({ port: h.hub.robots?.port ?? 0, ca: h.caPem, cert: robot.cert, key: robot.key });
  t.teardown(() => link.destroy());
  await link.hello(CHANNELS);
  const csrs = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(() => deviceCsr()));
  for (const c of csrs) link.send({ tag: Tag.RENEW, csr: c.csrDer });
  const answers = await link.take((f) => f.tag === Tag.CERTIFICATE || (f.tag === Tag.ERROR && f.ref === 'renew'), 10, 'ten answers');
  t.equal(answers.filter((f) => f.tag === Tag.CERTIFICATE).length, 1, 'one certificate');
  t.equal(answers.filter((f) => f.tag === Tag.ERROR && f.code === 'RATE_LIMITED').length, 9, 'nine refusals');
  t.equal((await store.robots.certificates(robot.id)).length, 2, 'one certificate issued');

  // A second link (the same certificate) gets past the link's own limit, not the robot's.
  const client = await h.connectRobot(robot);
  const refused = await client.renew((await deviceCsr()).csrDer).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(refused instanceof RobotRenewError && refused.code === 'RATE_LIMITED', `per robot: ${String(refused)}`);
  t.equal((await store.robots.certificates(robot.id)).length, 2, 'still one certificate issued');
});

t.test('an unused renewal is replaced by the next, so at most one waits', async (t) => {
  const robot = await ownKeyRobot();
  const first = await deviceCsr();
  // Two renewals are a minute apart at the least: the store is asked directly for the second.
  const link = await h.connectRobot(robot);
  const a = await link.renew(first.csrDer);
  const repo = new RobotEnrollment(store.db.sql);
  const b = { fingerprint: Buffer.alloc(32, 7), serial: '0b', notAfter: new Date(Date.now() + 86_400_000) };
  t.ok(await repo.renew(robot.id, fpOf(robot.cert), b), 'a second renewal with the same certificate');
  const certs = await store.robots.certificates(robot.id);
  const byFp = new Map(certs.map((c) => [c.fingerprint.toString('hex'), c]));
  t.notOk(byFp.has(fpOf(a.certPem).toString('hex')), 'the first, never used, is deleted');
  t.equal(byFp.get(b.fingerprint.toString('hex'))?.revokedAt, null, 'the second waits');
  t.equal(byFp.get(fpOf(robot.cert).toString('hex'))?.revokedAt, null, 'the current one is untouched');
  await link.close();
});

t.test('the byte examples of RENEW and CERTIFICATE in docs/protocol.md', async (t) => {
  const doc = await readFile(new URL('../docs/protocol.md', import.meta.url), 'utf8');
  const hex = (b: Buffer) => (b.toString('hex').match(/../g) ?? []).join(' ');
  const renew = encodeRobotFrame({ tag: Tag.RENEW, csr: Buffer.alloc(237, 0x30) });
  t.equal(renew.length, 245);
  t.ok(doc.includes(`the frame is 245 bytes: \`${hex(renew.subarray(0, 8))}\``), `RENEW starts ${hex(renew.subarray(0, 8))}`);
  const cert = encodeHubFrame({ tag: Tag.CERTIFICATE, certPem: 'C'.repeat(700), caPem: 'A'.repeat(560) });
  t.equal(cert.length, 1_272);
  t.ok(doc.includes(`it is 1,272 bytes, starting\n\`${hex(cert.subarray(0, 9))}\``), `CERTIFICATE starts ${hex(cert.subarray(0, 9))}`);
  t.same(parseHubFrame(cert.subarray(4)), { tag: Tag.CERTIFICATE, certPem: 'C'.repeat(700), caPem: 'A'.repeat(560) }, 'and parses back');
  t.same(parseRobotFrame(renew.subarray(4)), { tag: Tag.RENEW, csr: Buffer.alloc(237, 0x30) });
});
