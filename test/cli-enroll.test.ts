// The switchboard CLI's enrollment commands: pki init, and robot create / rotate / revoke, checked
// against the files they write and the store (apart from cli.test.ts: each file runs many commands,
// each a process that migrates a database, and has its own time budget).

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { freshDatabase } from './helpers/db.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

const text = (p: ReturnType<typeof spawnCli>) => p.lines.map((l) => l.text ?? JSON.stringify(l)).join('\n');

t.test('pki init, robot create / rotate / revoke: files, fingerprints and the store agree', async (t) => {
  const dataDir = await tempDir(t);
  const outDir = await tempDir(t);
  const url = await freshDatabase(t);
  const env = { SB_DATA_DIR: dataDir, DATABASE_URL: url };
  const run = async (args: string[], stdin?: string) => {
    const p = spawnCli(t, args, env);
    p.child.stdin?.end(stdin ?? '');
    return { code: (await p.exited).code, out: text(p), err: p.stderr() };
  };

  const early = await run(['robot', 'create', '--owner', 'alice', '--name', 'arm-1', '--out', outDir]);
  t.equal(early.code, 2, 'no CA yet');
  t.match(early.err, /run `switchboard pki init`/);

  const init = await run(['pki', 'init']);
  t.equal(init.code, 0, init.err);
  const caFile = path.join(dataDir, 'pki', 'robot-ca.crt');
  t.match(init.out, caFile);
  t.equal((await stat(path.join(dataDir, 'pki', 'robot-ca.key'))).mode & 0o777, 0o600);
  const caCert = new X509Certificate(await readFile(caFile));
  const again = await run(['pki', 'init']);
  t.equal(again.code, 3, '#19 a second init is refused with its own status, not the usage-error 2');
  t.match(again.err, /already exists; pass --force/);
  t.ok(new X509Certificate(await readFile(caFile)).raw.equals(caCert.raw), 'and the CA is unchanged');

  t.equal((await run(['user', 'create', 'alice', '--password-stdin'], 'a long enough password\n')).code, 0);
  const unknown = await run(['robot', 'create', '--owner', 'nobody', '--name', 'arm-1', '--out', outDir]);
  t.equal(unknown.code, 2);
  t.match(unknown.err, /no user named nobody/);

  const created = await run(['robot', 'create', '--owner', 'alice', '--name', 'arm-1', '--out', outDir]);
  t.equal(created.code, 0, created.err);
  const id = /created robot arm-1 \(([0-9a-f-]{36})\)/.exec(created.out)?.[1] as string;
  t.ok(id, 'prints the robot id');
  const cert = new X509Certificate(await readFile(path.join(outDir, `${id}.crt`)));
  t.equal(cert.subject, `CN=${id}`);
  t.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey), 'signed by the CA pki init made');
  t.match(created.out, `SHA256 ${cert.fingerprint256}`, 'prints the fingerprint of the written certificate');
  t.equal((await stat(path.join(outDir, `${id}.key`))).mode & 0o777, 0o600, 'key file is 0600');

  const dup = await run(['robot', 'create', '--owner', 'ALICE', '--name', 'ARM-1', '--out', outDir]);
  t.equal(dup.code, 2);
  t.match(dup.err, /already has a robot named ARM-1/);

  const sql = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end());
  const certs = () => sql<{ fp: string; revoked: boolean }[]>`
    SELECT encode(fingerprint, 'hex') AS fp, revoked_at IS NOT NULL AS revoked FROM robot_certificates
    WHERE robot_id = ${id} ORDER BY created_at`;
  const hex = (c: X509Certificate) => c.fingerprint256.replaceAll(':', '').toLowerCase();
  t.same(await certs(), [{ fp: hex(cert), revoked: false }], 'the store holds the certificate, live');

  const rotated = await run(['robot', 'rotate', id, '--out', outDir]);
  t.equal(rotated.code, 0, rotated.err);
  t.match(rotated.out, /1 old certificate revoked/);
  const next = new X509Certificate(await readFile(path.join(outDir, `${id}.crt`)));
  t.not(next.fingerprint256, cert.fingerprint256, 'the files now hold a new certificate');
  t.ok(next.checkPrivateKey(createPrivateKey(await readFile(path.join(outDir, `${id}.key`)))), 'with its own key');
  t.same(await certs(), [
    { fp: hex(cert), revoked: true },
    { fp: hex(next), revoked: false },
  ]);

  const revoked = await run(['robot', 'revoke', id]);
  t.equal(revoked.code, 0, revoked.err);
  t.match(revoked.out, /revoked 1 certificate of robot arm-1/);
  t.ok(
    (await certs()).every((c) => c.revoked),
    'every certificate revoked',
  );

  const bad = await run(['robot', 'revoke', 'not-a-uuid']);
  t.equal(bad.code, 2);
  t.match(bad.err, /expected a UUID/);
  const missing = await run(['robot', 'rotate', '00000000-0000-4000-8000-000000000000']);
  t.equal(missing.code, 2);
  t.match(missing.err, /no robot with id/);

  const forced = await run(['pki', 'init', '--force']);
  t.equal(forced.code, 0, forced.err);
  t.notOk(new X509Certificate(await readFile(caFile)).raw.equals(caCert.raw), '--force replaces the CA');
});
