// The robot CA: what it issues is checked with node:crypto's X.509 parser (an independent reader),
// and a real mutual-TLS handshake proves a robot certificate is accepted and others are refused.

import 'reflect-metadata';
import { createPrivateKey, generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import t from 'tap';
import { CaExistsError, type CaFiles, caPublicKey, formatFingerprint, initCa, issueRobotCert, issueServerCert, loadCa } from '../src/auth/pki.js';
import { tempDir } from './helpers/hub.js';

const filesIn = (dir: string): CaFiles => ({ certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') });
const ROBOT = '0b1c3e7a-5d2f-4c8e-9a61-3f7d2e4b5c6d';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

t.test('the CA is a CA; a robot certificate chains to it and names the robot', async (t) => {
  const files = filesIn(await tempDir(t));
  const ca = await initCa(files);
  t.equal(ca.cert.ca, true, 'basicConstraints CA:TRUE');
  t.ok(ca.cert.verify(caPublicKey(ca)), 'self-signed');
  t.equal((await stat(files.keyFile)).mode & 0o777, 0o600, 'CA key is 0600');

  const robot = await issueRobotCert(ca, ROBOT);
  const cert = new X509Certificate(robot.certPem);
  t.ok(cert.verify(ca.cert.publicKey), 'signed by the CA key');
  t.ok(cert.checkIssued(ca.cert), 'issued by the CA (names and key identifiers match)');
  t.equal(cert.ca, false, 'not a CA itself');
  t.equal(cert.subject, `CN=${ROBOT}`, 'CN is the robot id');
  t.same(cert.keyUsage, [CLIENT_AUTH], 'clientAuth extended key usage only');
  t.equal(formatFingerprint(robot.fingerprint), cert.fingerprint256, 'fingerprint is SHA-256 of the DER');
  t.equal(robot.serial, cert.serialNumber.toLowerCase());
  t.equal(new Date(cert.validTo).getTime(), robot.notAfter.getTime());
  t.ok(cert.checkPrivateKey(createPrivateKey(robot.keyPem)), 'the key belongs to the certificate');

  const other = await issueRobotCert(ca, ROBOT);
  t.not(other.serial, robot.serial, 'serials are fresh');
  t.notSame(other.fingerprint, robot.fingerprint);
});

t.test('init refuses to overwrite a CA unless forced; load checks what it is given', async (t) => {
  const dir = await tempDir(t);
  const files = filesIn(dir);
  const first = await initCa(files);
  await t.rejects(initCa(files), CaExistsError);
  t.equal((await loadCa(files)).certPem, first.certPem, 'the refused init left the CA as it was');
  const second = await initCa(files, { force: true });
  t.not(second.certPem, first.certPem, 'forced: a new CA');
  t.equal((await stat(files.keyFile)).mode & 0o777, 0o600, 'the replaced key is still 0600');

  await t.rejects(loadCa(filesIn(path.join(dir, 'missing'))), /run `switchboard pki init`/);
  const mismatched = { certFile: files.certFile, keyFile: path.join(dir, 'other.key') };
  await writeFile(mismatched.keyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await t.rejects(loadCa(mismatched), /does not match/);
  const leaf = await issueRobotCert(second, ROBOT);
  const notCa = { certFile: path.join(dir, 'leaf.crt'), keyFile: path.join(dir, 'leaf.key') };
  await writeFile(notCa.certFile, leaf.certPem);
  await writeFile(notCa.keyFile, leaf.keyPem);
  await t.rejects(loadCa(notCa), /not a CA certificate/);
});

t.test('bring your own CA: an RSA CA made elsewhere signs robot certificates that chain to it', async (t) => {
  // The "elsewhere" CA: RSA, built directly with the X.509 library, as an operator's tooling would.
  const keys = await webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Acme fleet CA, O=Acme',
    keys: keys as never,
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as never,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const dir = await tempDir(t);
  const files = filesIn(dir);
  await writeFile(files.certFile, caCert.toString('pem'));
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  await writeFile(files.keyFile, createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }));

  const ca = await loadCa(files);
  t.equal(ca.signingAlgorithm.name, 'RSASSA-PKCS1-v1_5');
  const robot = new X509Certificate((await issueRobotCert(ca, ROBOT)).certPem);
  t.ok(robot.verify(ca.cert.publicKey), 'signed by the brought CA');
  t.ok(robot.checkIssued(ca.cert));
  t.equal(robot.issuer, ca.cert.subject, 'issuer copied from the CA subject');
  t.match(robot.issuer, /Acme fleet CA/);
});

t.test('mutual TLS: a robot certificate is accepted; none, or another CA, is refused', async (t) => {
  const ca = await initCa(filesIn(await tempDir(t)));
  const foreign = await initCa(filesIn(await tempDir(t)));
  const server = await issueServerCert(ca);
  const robot = await issueRobotCert(ca, ROBOT);
  const stranger = await issueRobotCert(foreign, ROBOT);

  const refusals: Error[] = [];
  const refusalWaiters: ((e: Error) => void)[] = [];
  let accepted = 0;
  const srv = tls.createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (sock) => {
    accepted++;
    sock.end(`hello ${sock.getPeerCertificate().subject.CN}`);
  });
  srv.on('tlsClientError', (e) => {
    const w = refusalWaiters.shift();
    if (w) w(e);
    else refusals.push(e);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  const { port } = srv.address() as AddressInfo;
  const nextRefusal = () => new Promise<Error>((resolve) => (refusals.length ? resolve(refusals.shift() as Error) : refusalWaiters.push(resolve)));

  /** What the client read before the connection closed ('' when refused). */
  const attempt = (client: { cert?: string; key?: string }) =>
    new Promise<string>((resolve) => {
      let data = '';
      const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.certPem, ...client });
      sock.setEncoding('utf8');
      sock.on('data', (d) => {
        data += d;
      });
      sock.on('error', () => {}); // a refusal surfaces as a TLS alert; the outcome is `data`
      sock.on('close', () => resolve(data));
    });

  t.equal(await attempt({ cert: robot.certPem, key: robot.keyPem }), `hello ${ROBOT}`, 'the robot is let in, known by its CN');
  t.equal(await attempt({}), '', 'no client certificate: nothing served');
  t.match((await nextRefusal()).message, /certificate/i, 'the server refused the handshake');
  t.equal(await attempt({ cert: stranger.certPem, key: stranger.keyPem }), '', 'another CA: nothing served');
  // Node verifies the chain after OpenSSL's handshake and drops the socket, so the server's error
  // reads as a reset here; what matters is that it was refused and never reached the handler.
  t.ok(await nextRefusal(), 'the server refused the foreign certificate');
  t.equal(accepted, 1, 'only the robot reached the connection handler');
  t.equal(refusals.length, 0, 'exactly one refusal per bad client');
});
