// SB_ADMIN_USERNAME through the packed-up command, as an operator runs it: three nodes started at
// once on one fresh PostgreSQL make one admin; a restart whose password file is gone keeps the
// account and its password; the password can come from stdin instead; a missing password source
// or an unreadable file stops the start with a message naming the setting.

import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { Api } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { FAST, tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

const PASSWORD = 'an admin passphrase';

t.test('three nodes started at once on one database make one admin; a restart needs no password file and keeps the password', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'admin-password');
  await writeFile(file, `${PASSWORD}\n`, { mode: 0o600 });
  const url = await freshDatabase(t);
  const env = { ...FAST, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: url, SB_ADMIN_USERNAME: 'root', SB_ADMIN_PASSWORD_FILE: file };
  const nodes = await Promise.all([1, 2, 3].map(async (i) => spawnCli(t, ['serve'], { ...env, SB_DATA_DIR: await tempDir(t), SB_NODE_ID: `n${i}` })));
  const listening = await Promise.all(nodes.map((p) => p.waitFor((l) => l.msg === 'listening', 'listening', 30_000)));
  const made = nodes.map((p) => p.lines.find((l) => /^admin account/.test(l.msg ?? ''))?.made).sort();
  t.same(made, ['created', 'present', 'present'], 'one node created it, the others found it');
  t.notOk(
    nodes.some((p) => p.lines.some((l) => JSON.stringify(l).includes(PASSWORD))),
    'the password is in no log line',
  );
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end());
  t.same(await sql`SELECT username, is_admin FROM users`, [{ username: 'root', is_admin: true }], 'one account, an admin');

  const api = new Api(listening[1]?.url as string);
  const login = await api.post('/api/v1/auth/login', { username: 'root', password: PASSWORD });
  t.equal(login.status, 200, 'the password from the file logs in');
  t.equal(login.body.user.isAdmin, true);
  for (const p of nodes) p.child.kill('SIGTERM');
  await Promise.all(nodes.map((p) => p.exited));

  await rm(file);
  const again = spawnCli(t, ['serve'], { ...env, SB_DATA_DIR: await tempDir(t) });
  const up = await again.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
  t.equal(again.lines.find((l) => /^admin account/.test(l.msg ?? ''))?.made, 'present');
  t.equal((await new Api(up.url as string).post('/api/v1/auth/login', { username: 'root', password: PASSWORD })).status, 200, 'it keeps its password');
  again.child.kill('SIGTERM');
  await again.exited;
});

t.test('an existing account is made an admin; the password may come from stdin', async (t) => {
  const url = await freshDatabase(t);
  const base = { ...FAST, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: url };
  const first = spawnCli(t, ['serve'], { ...base, SB_DATA_DIR: await tempDir(t) });
  const up = await first.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
  const api = new Api(up.url as string);
  t.equal((await api.post('/api/v1/auth/register', { username: 'boss', password: PASSWORD })).status, 201);
  first.child.kill('SIGTERM');
  await first.exited;

  const p = spawnCli(t, ['serve', '--admin-password-stdin'], { ...base, SB_DATA_DIR: await tempDir(t), SB_ADMIN_USERNAME: 'BOSS' });
  p.child.stdin?.end('ignored for an existing account\n');
  const up2 = await p.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
  t.equal(p.lines.find((l) => /^admin account/.test(l.msg ?? ''))?.made, 'promoted', 'the existing account, whatever its case, is made an admin');
  const login = await new Api(up2.url as string).post('/api/v1/auth/login', { username: 'boss', password: PASSWORD });
  t.equal(login.body.user.isAdmin, true);
  p.child.kill('SIGTERM');
  await p.exited;

  const fresh = await freshDatabase(t);
  const q = spawnCli(t, ['serve', '--admin-password-stdin'], { ...base, DATABASE_URL: fresh, SB_DATA_DIR: await tempDir(t), SB_ADMIN_USERNAME: 'chief' });
  q.child.stdin?.end(`${PASSWORD}\n`);
  const up3 = await q.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
  t.equal(
    (await new Api(up3.url as string).post('/api/v1/auth/login', { username: 'chief', password: PASSWORD })).status,
    200,
    'created with the password from stdin',
  );
  q.child.kill('SIGTERM');
  await q.exited;
});

t.test('a missing or unreadable password source stops the start, naming the setting', async (t) => {
  const url = await freshDatabase(t);
  const base = { ...FAST, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: url };
  const short = path.join(await tempDir(t), 'short');
  await writeFile(short, 'tiny\n');
  const cases: [string, Record<string, string>, RegExp][] = [
    ['no password source', { SB_ADMIN_USERNAME: 'root' }, /SB_ADMIN_USERNAME: give its password in SB_ADMIN_PASSWORD_FILE/],
    [
      'an unreadable file',
      { SB_ADMIN_USERNAME: 'root', SB_ADMIN_PASSWORD_FILE: '/nonexistent/pw' },
      /SB_ADMIN_PASSWORD_FILE: cannot read \/nonexistent\/pw \(ENOENT\)/,
    ],
    ['a file without a username', { SB_ADMIN_PASSWORD_FILE: '/nonexistent/pw' }, /SB_ADMIN_PASSWORD_FILE: set SB_ADMIN_USERNAME too/],
    ['a password under 10 characters', { SB_ADMIN_USERNAME: 'root', SB_ADMIN_PASSWORD_FILE: short }, /SB_ADMIN_USERNAME \(password: at least 10 characters\)/],
    ['an invalid username', { SB_ADMIN_USERNAME: 'no spaces allowed', SB_ADMIN_PASSWORD_FILE: short }, /SB_ADMIN_USERNAME \(username: /],
  ];
  for (const [what, env, message] of cases) {
    const p = spawnCli(t, ['serve'], { ...base, SB_DATA_DIR: await tempDir(t), ...env });
    const { code } = await p.exited;
    t.equal(code, 2, `${what}: exit status 2`);
    t.match(p.stderr(), message, `${what}: the message says what to set`);
  }
});
