// Switchboard as a user installs it: `npm pack`, then `npm install <tarball>` into an empty
// directory (dependencies come from the npm registry or npm's cache), then the installed bin starts
// a node that answers /readyz. The client SDK is packed and installed the same way, alone: it must
// bring no server dependency and import as a package.
// The tarballs are packed with --ignore-scripts: `prepare` would rebuild dist/, which the suite
// built before tap started and other test files are running from.

import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { Api } from './helpers/api.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

const run = promisify(execFile);
const NPM_INSTALL = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

t.setTimeout(300_000);

/** Packs the package in `dir` into `dest` and returns the tarball's path and its file list. */
async function pack(dir: string, dest: string): Promise<{ tarball: string; files: string[] }> {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], { cwd: dir, timeout: 120_000 });
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  if (!info) throw new Error(`npm pack printed nothing useful: ${stdout}`);
  return { tarball: path.join(dest, info.filename), files: info.files.map((f) => f.path) };
}

/** An empty app directory with only a package.json. */
async function emptyApp(t: Test): Promise<string> {
  const dir = await tempDir(t, 'sb-app-');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  return dir;
}

t.test('#18 npm pack: the tarball installs into an empty directory and its bin starts a node that is ready', async (t) => {
  t.ok(existsSync('dist/cli.js'), 'built (npm test builds before tap)');
  const dest = await tempDir(t, 'sb-pack-');
  const { tarball, files } = await pack('.', dest);
  t.ok(files.includes('scripts/patch-deps.mjs'), 'the postinstall script ships in the tarball');
  t.ok(files.includes('dist/cli.js'));
  t.notOk(
    files.some((f) => f.startsWith('test/') || f.startsWith('src/')),
    'no sources or tests in the package',
  );

  const app = await emptyApp(t);
  await run('npm', [...NPM_INSTALL, tarball], { cwd: app, timeout: 240_000 });
  // The driver fix reached the postgres the installed hub loads (hoisted next to it, here).
  const fromHub = createRequire(path.join(app, 'node_modules/switchboard/dist/hub.js'));
  const pgEntry = fromHub.resolve('postgres');
  const pgRoot = pgEntry.slice(0, pgEntry.lastIndexOf(`${path.sep}postgres${path.sep}`) + '/postgres'.length);
  t.match(readFileSync(path.join(pgRoot, 'src/connection.js'), 'utf8'), '/* switchboard: nextWrite guard */', 'postgres.js is patched');
  t.match(readFileSync(path.join(pgRoot, 'cjs/src/connection.js'), 'utf8'), '/* switchboard: nextWrite guard */');

  const bin = path.join(app, 'node_modules/.bin/switchboard');
  t.ok(existsSync(bin), 'the switchboard bin is linked');
  const dataDir = await tempDir(t);
  const p = spawnCli(t, ['serve'], { SB_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1' }, bin);
  const listening = await p.waitFor((l) => l.msg === 'listening', 'the installed node listening', 60_000);
  const api = new Api(listening.url as string);
  const ready = await api.get('/readyz');
  t.equal(ready.status, 200, '/readyz');
  t.equal(ready.body.status, 'ready');
  // The web console and the API reference come built in the package.
  t.ok(files.includes('dist/console/index.html') && files.includes('dist/console/docs.html'), 'the console ships in the tarball');
  for (const page of ['/', '/docs']) {
    const r = await api.get(page);
    t.equal(r.status, 200, `the installed node serves ${page}`);
    t.match(r.text, /<script type="module" crossorigin src="\/assets\//);
  }
  // Native dependencies (argon2) work from the install: a sign-up hashes a password.
  t.equal((await api.post('/api/v1/auth/register', { username: 'packaged', password: 'correct horse battery' })).status, 201);
  p.child.kill('SIGTERM');
  t.equal((await p.exited).code, 0, 'a clean stop');
});

t.test('#18 client SDK: its own package installs with no server dependencies and imports', async (t) => {
  const sdkDir = 'packages/client';
  const sdk = JSON.parse(readFileSync(path.join(sdkDir, 'package.json'), 'utf8'));
  const main = JSON.parse(readFileSync('package.json', 'utf8'));
  t.equal(sdk.version, main.version, 'released in step with the hub');
  t.same(Object.keys(sdk.dependencies ?? {}), ['msgpackr'], 'its only dependency is the MessagePack codec');
  t.equal(sdk.dependencies.msgpackr, main.dependencies.msgpackr, 'the same msgpackr as the hub');

  const dest = await tempDir(t, 'sb-pack-');
  const { tarball, files } = await pack(sdkDir, dest);
  t.ok(files.includes('dist/client/index.js') && files.includes('dist/client/index.d.ts'), 'code and types');
  const outside = files.filter((f) => f.startsWith('dist/') && !/^dist\/(client\/|protocol\/(frames|codec|error-codes)\.)/.test(f));
  t.same(outside, [], 'nothing of the server is packed: only src/client and the wire protocol');
  // Every import in the packed code is relative or msgpackr.
  for (const f of files.filter((f) => f.endsWith('.js'))) {
    const code = readFileSync(path.join(sdkDir, f), 'utf8');
    for (const m of code.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1] as string;
      if (!spec.startsWith('.') && spec !== 'msgpackr') t.fail(`${f} imports ${spec}`);
    }
  }

  const app = await emptyApp(t);
  await run('npm', [...NPM_INSTALL, tarball], { cwd: app, timeout: 240_000 });
  const installed = readdirSync(path.join(app, 'node_modules')).flatMap((d) =>
    d.startsWith('@') ? readdirSync(path.join(app, 'node_modules', d)).map((s) => `${d}/${s}`) : [d],
  );
  const server = ['uWebSockets.js', 'postgres', '@electric-sql/pglite', '@nats-io/transport-node', 'pino', 'argon2', 'ajv', 'jose', 'prom-client'];
  t.same(
    installed.filter((d) => server.includes(d)),
    [],
    `no server dependency installed (${installed.join(', ')})`,
  );
  t.ok(installed.includes('@switchboard/client') && installed.includes('msgpackr'));
  const { stdout } = await run(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('@switchboard/client'); console.log(typeof m.SwitchboardClient, typeof m.SwitchboardError)"],
    { cwd: app, timeout: 30_000 },
  );
  t.equal(stdout.trim(), 'function function', 'imports as a package');
});
