// The CLI signs requests made on the device with openssl, as docs/robots.md tells robot makers to:
// `robot create --csr` registers a robot for its own key, `robot sign <id> --csr` rotates to a new
// one of its keys; the hub never writes a key, and refused requests are usage errors naming --csr.

import { execFileSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { freshDatabase } from './helpers/db.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

const text = (p: ReturnType<typeof spawnCli>) => p.lines.map((l) => l.text ?? JSON.stringify(l)).join('\n');

/** What docs/robots.md has the robot run: a key that stays on it, and a request for it. */
function opensslCsr(dir: string, name: string, newkey: string[]): { key: string; csr: string } {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  execFileSync('openssl', ['req', '-new', ...newkey, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], { stdio: 'ignore' });
  return { key, csr };
}

t.test('robot create --csr and robot sign: certificates for keys made with openssl on the device', async (t) => {
  const dataDir = await tempDir(t);
  const outDir = await tempDir(t);
  const device = await tempDir(t);
  const url = await freshDatabase(t);
  const env = { SB_DATA_DIR: dataDir, DATABASE_URL: url };
  const run = async (args: string[], stdin?: string) => {
    const p = spawnCli(t, args, env);
    p.child.stdin?.end(stdin ?? '');
    return { code: (await p.exited).code, out: text(p), err: p.stderr() };
  };
  t.equal((await run(['pki', 'init'])).code, 0);
  t.equal((await run(['user', 'create', 'alice', '--password-stdin'], 'a long enough password\n')).code, 0);
  const caCert = new X509Certificate(await readFile(path.join(dataDir, 'pki', 'robot-ca.crt')));
  const spki = (keyFile: string, pem: string) =>
    createPublicKey(pem)
      .export({ type: 'spki', format: 'der' })
      .equals(createPublicKey(keyFile).export({ type: 'spki', format: 'der' }));

  const first = opensslCsr(device, 'rover', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const created = await run(['robot', 'create', '--owner', 'alice', '--name', 'rover', '--csr', first.csr, '--out', outDir]);
  t.equal(created.code, 0, created.err);
  t.match(created.out, /for its own EC P-256 key/);
  const id = /\(([0-9a-f-]{36})\)/.exec(created.out)?.[1] as string;
  t.same(await readdir(outDir), [`${id}.crt`], 'only the certificate is written: no key');
  const cert = new X509Certificate(await readFile(path.join(outDir, `${id}.crt`)));
  t.equal(cert.subject, `CN=${id}`, 'CN = robot id, not the request’s');
  t.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey));
  t.ok(spki(await readFile(first.key, 'utf8'), cert.toString()), 'for the device’s key');

  const second = opensslCsr(device, 'rover2', ['-newkey', 'ed25519']);
  const out = path.join(device, 'robot.crt');
  const signed = await run(['robot', 'sign', id, '--csr', second.csr, '--out', out]);
  t.equal(signed.code, 0, signed.err);
  t.match(signed.out, /Ed25519 key: 1 old certificate revoked/);
  t.match(signed.out, /robot-ca\.crt/, 'says where the CA certificate is');
  const next = new X509Certificate(await readFile(out));
  t.equal((await stat(out)).mode & 0o777, 0o644);
  t.ok(spki(await readFile(second.key, 'utf8'), next.toString()), 'for the new key');

  const sql = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end());
  const rows = await sql<{ fp: string; revoked: boolean }[]>`
    SELECT encode(fingerprint, 'hex') AS fp, revoked_at IS NOT NULL AS revoked FROM robot_certificates WHERE robot_id = ${id} ORDER BY created_at`;
  const hex = (c: X509Certificate) => c.fingerprint256.replaceAll(':', '').toLowerCase();
  t.same(rows, [
    { fp: hex(cert), revoked: true },
    { fp: hex(next), revoked: false },
  ]);

  const weak = opensslCsr(device, 'weak', ['-newkey', 'rsa:1024']);
  const refused = await run(['robot', 'sign', id, '--csr', weak.csr]);
  t.equal(refused.code, 2, 'a weak key is a usage error');
  t.match(refused.err, /--csr: .*RSA keys must have 2048 to 8192 bits, not 1024 \(CSR_KEY_UNSUPPORTED\)/);
  const junk = path.join(device, 'junk.csr');
  await writeFile(junk, 'not a request');
  t.match((await run(['robot', 'sign', id, '--csr', junk])).err, /CSR_MALFORMED/);
  t.match((await run(['robot', 'sign', id, '--csr', path.join(device, 'missing.csr')])).err, /--csr: cannot read/);
  t.match((await run(['robot', 'sign', id])).err, /usage: switchboard robot sign/);
  t.equal((await sql`SELECT 1 FROM robot_certificates WHERE robot_id = ${id}`).length, 2, 'refusals issued nothing');
});
