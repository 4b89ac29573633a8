#!/usr/bin/env node
// `npm test`: provisions what the suite needs, builds, runs tap, and ends with the totals on a line
// of their own ("N passed, N failed").
// PostgreSQL: DATABASE_URL when it answers; otherwise a throwaway server from the installed
// binaries (initdb/postgres) on a free port in a temp dir, installed from Debian's `postgresql`
// package first when missing (needs root).
// NATS with JetStream: NATS_URL when it answers with JetStream enabled; otherwise a throwaway
// nats-server -js on a free port with its store in a temp dir, installed from Debian's
// `nats-server` package first when missing. Extra arguments go to tap (e.g. a test file).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import postgres from 'postgres';

const log = (msg) => process.stderr.write(`[test] ${msg}\n`);

async function answers(url) {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

async function natsAnswers(url) {
  let nc;
  try {
    nc = await natsConnect({ servers: url, timeout: 3_000, maxReconnectAttempts: 0 });
    await (await jetstreamManager(nc)).getAccountInfo();
    return true;
  } catch {
    return false;
  } finally {
    await nc?.close().catch(() => {});
  }
}

function findOnPath(name, extra = []) {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extra]) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

async function throwawayNats() {
  let bin = findOnPath('nats-server', ['/usr/sbin', '/usr/bin']);
  if (!bin) {
    if (process.getuid?.() !== 0) throw new Error('nats-server is missing: install the Debian package `nats-server` (or set NATS_URL)');
    log('installing nats-server from Debian packages (apt-get install nats-server)');
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'nats-server'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    bin = findOnPath('nats-server', ['/usr/sbin', '/usr/bin']);
    if (!bin) throw new Error('installed nats-server but cannot find it');
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-test-nats-'));
  const port = await freePort();
  const server = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4096);
  });
  const url = `nats://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!(await natsAnswers(url))) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`throwaway nats-server did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`started throwaway nats-server on ${url} (${dir})`);
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        server.once('exit', () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        server.kill('SIGTERM');
        setTimeout(() => server.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function findPgBin() {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return path.dirname(onPath);
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length) return path.join(root, versions[0], 'bin');
  }
  return undefined;
}

function installPostgres() {
  if (process.getuid?.() !== 0) throw new Error('PostgreSQL binaries are missing: install the Debian package `postgresql` (or set DATABASE_URL)');
  log('installing PostgreSQL from Debian packages (apt-get install postgresql)');
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'postgresql'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

async function throwawayPostgres() {
  let bin = findPgBin();
  if (!bin) {
    installPostgres();
    bin = findPgBin();
    if (!bin) throw new Error('installed postgresql but found no initdb');
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-pg-'));
  const data = path.join(dir, 'data');
  // PostgreSQL refuses to run as root: run it as the `postgres` user the Debian package creates.
  const asRoot = process.getuid?.() === 0;
  const wrap = (cmd, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (asRoot) {
    const ids = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    const gid = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
    chownSync(dir, Number(ids), Number(gid));
  }
  const [c1, a1] = wrap(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  execFileSync(c1, a1, { stdio: ['ignore', 'ignore', 'inherit'] });
  const port = await freePort();
  const [c2, a2] = wrap(path.join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=300',
  ]);
  const server = spawn(c2, a2, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
  let stderr = '';
  server.stderr.on('data', (d) => {
    stderr += d;
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  while (!(await answers(url))) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`throwaway PostgreSQL did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`started throwaway PostgreSQL on 127.0.0.1:${port} (${dir})`);
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        server.once('exit', () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        // Signal the postmaster itself (runuser does not forward signals): SIGINT is a fast shutdown.
        const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
        process.kill(pid, 'SIGINT');
        setTimeout(() => process.kill(pid, 'SIGKILL'), 10_000).unref();
      }),
  };
}

async function main() {
  let pg;
  if (process.env.DATABASE_URL && (await answers(process.env.DATABASE_URL))) {
    log('using DATABASE_URL for PostgreSQL');
    pg = { url: process.env.DATABASE_URL, stop: async () => {} };
  } else {
    if (process.env.DATABASE_URL) log('DATABASE_URL does not answer; starting a throwaway PostgreSQL');
    pg = await throwawayPostgres();
  }
  let nats;
  let code = 1;
  try {
    const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
    if (await natsAnswers(natsUrl)) {
      log(`using ${natsUrl} for NATS`);
      nats = { url: natsUrl, stop: async () => {} };
    } else {
      if (process.env.NATS_URL) log('NATS_URL does not answer with JetStream; starting a throwaway nats-server');
      nats = await throwawayNats();
    }
    execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
    code = await runTap(pg.url, nats.url, process.argv.slice(2));
  } finally {
    await nats?.stop();
    await pg.stop();
  }
  return code;
}

function runTap(adminUrl, natsUrl, args) {
  return new Promise((resolve) => {
    const env = { ...process.env, SB_TEST_ADMIN_URL: adminUrl, SB_TEST_NATS_URL: natsUrl };
    delete env.DATABASE_URL;
    delete env.NATS_URL;
    const tap = spawn(process.execPath, [path.resolve('node_modules/tap/dist/esm/run.mjs'), ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let totals;
    let tail = '';
    tap.stdout.on('data', (d) => {
      process.stdout.write(d);
      tail = (tail + d).slice(-4096);
      const m = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?/.exec(tail);
      if (m) totals = { total: Number(m[1]), pass: Number(m[2] ?? 0), fail: Number(m[3] ?? 0) };
    });
    tap.on('exit', (code, signal) => {
      const t = totals ?? { pass: 0, fail: 0 };
      process.stdout.write(`\n${t.pass} passed, ${t.fail} failed\n`);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log(e.stack ?? String(e));
    process.stdout.write('\n0 passed, 1 failed\n');
    process.exit(1);
  },
);
