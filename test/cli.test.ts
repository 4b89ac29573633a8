// The switchboard CLI: --help, --version, migrate, user create (cli-enroll.test.ts: pki init and
// robot enrollment).

import t from 'tap';
import { migrations } from '../src/store/migrations.js';
import { VERSION } from '../src/version.js';
import { Api } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

const text = (p: ReturnType<typeof spawnCli>) => p.lines.map((l) => l.text ?? JSON.stringify(l)).join('\n');

t.test('--version and --help', async (t) => {
  const v = spawnCli(t, ['--version'], {});
  t.equal((await v.exited).code, 0);
  t.equal(text(v), VERSION);
  const h = spawnCli(t, ['--help'], {});
  t.equal((await h.exited).code, 0);
  t.match(text(h), /switchboard serve/);
  t.match(text(h), /DATABASE_URL/);
  t.match(text(h), /switchboard robot create --owner/);
  const bad = spawnCli(t, ['--no-such-flag'], {});
  t.equal((await bad.exited).code, 2);
  t.match(bad.stderr(), /no-such-flag/);
  const unknown = spawnCli(t, ['frobnicate'], {});
  t.equal((await unknown.exited).code, 2);
});

t.test('migrate applies the schema once, against PostgreSQL', async (t) => {
  const url = await freshDatabase(t);
  const first = spawnCli(t, ['migrate'], { DATABASE_URL: url });
  t.equal((await first.exited).code, 0, first.stderr());
  t.same(
    first.lines.find((l) => l.msg === 'migrations applied')?.applied,
    migrations.map((m) => m.version),
    'every migration, in order',
  );
  const again = spawnCli(t, ['migrate'], { DATABASE_URL: url });
  t.equal((await again.exited).code, 0);
  t.ok(again.lines.some((l) => l.msg === 'schema already current'));
});

t.test('user create: password from stdin or generated, admin flag, duplicates refused', async (t) => {
  const dataDir = await tempDir(t);
  const env = { SB_DATA_DIR: dataDir };
  const admin = spawnCli(t, ['user', 'create', 'root-admin', '--admin', '--password-stdin'], env);
  admin.child.stdin?.end('a long admin password\n');
  t.equal((await admin.exited).code, 0, admin.stderr());
  t.match(text(admin), /created admin user root-admin/);
  t.notMatch(text(admin), /a long admin password/, 'the password is not echoed');

  const gen = spawnCli(t, ['user', 'create', 'generated'], env);
  gen.child.stdin?.end();
  t.equal((await gen.exited).code, 0, gen.stderr());
  const password = /password: (\S+)/.exec(text(gen))?.[1];
  t.ok(password && password.length >= 20, 'a strong password is generated and printed once');

  const dup = spawnCli(t, ['user', 'create', 'ROOT-admin', '--password-stdin'], env);
  dup.child.stdin?.end('another long password\n');
  t.equal((await dup.exited).code, 2);
  t.match(dup.stderr(), /that username is taken/);

  const weak = spawnCli(t, ['user', 'create', 'weakling', '--password-stdin'], env);
  weak.child.stdin?.end('short\n');
  t.equal((await weak.exited).code, 2);
  t.match(weak.stderr(), /password: at least 10 characters/);

  const hub = spawnCli(t, ['serve'], { ...env, PORT: '0', HOST: '127.0.0.1' });
  const listening = await hub.waitFor((l) => l.msg === 'listening', 'listening');
  const api = new Api(listening.url);
  const a = await api.post('/api/v1/auth/login', { username: 'root-admin', password: 'a long admin password' });
  t.equal(a.status, 200);
  t.equal(a.body.user.isAdmin, true);
  const g = await api.post('/api/v1/auth/login', { username: 'generated', password });
  t.equal(g.status, 200);
  t.equal(g.body.user.isAdmin, false);
  hub.child.kill('SIGTERM');
  t.equal((await hub.exited).code, 0);
});
