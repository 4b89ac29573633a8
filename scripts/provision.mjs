// Provisioning shared by `npm test` and `npm run cluster`: PostgreSQL and NATS (JetStream) from
// what answers already, else throwaway servers from the installed binaries on free ports in temp
// dirs, installed from Debian's packages first when missing (needs root).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import postgres from 'postgres';

export const log = (msg) => process.stderr.write(`[test] ${msg}\n`);

export async function answers(url) {
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

export async function natsAnswers(url) {
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

const SBIN = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function aptInstall(pkg, missing) {
  if (process.getuid?.() !== 0) throw new Error(missing);
  log(`installing ${pkg} from Debian packages (apt-get install ${pkg})`);
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', pkg], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/**
 * The path of `binary`, installing the Debian package `pkg` first when it is not on PATH or in
 * the sbin directories (needs root; otherwise the error names the package, and `alternative`,
 * e.g. the variable that points at a running server instead).
 */
export function debianBinary(binary, pkg, alternative) {
  const found = findOnPath(binary, SBIN);
  if (found) return found;
  aptInstall(pkg, `${binary} is missing: install the Debian package \`${pkg}\`${alternative ? ` (or set ${alternative})` : ''}`);
  const installed = findOnPath(binary, SBIN);
  if (!installed) throw new Error(`installed ${pkg} but cannot find ${binary}`);
  return installed;
}

/**
 * `file` (e.g. an nginx dynamic module, which is no binary on PATH), installing the Debian package
 * `pkg` first when it is missing (needs root; otherwise the error names the package).
 */
export function debianFile(file, pkg) {
  if (existsSync(file)) return file;
  aptInstall(pkg, `${file} is missing: install the Debian package \`${pkg}\``);
  if (!existsSync(file)) throw new Error(`installed ${pkg} but ${file} is still missing`);
  return file;
}

/**
 * Throwaway nats-server(s) with JetStream on free loopback ports, stores in a temp dir. With
 * `servers` > 1 they form one cluster (routes between them, JetStream clustered). Returns the
 * client URL list, one URL per server, `kill(i, signal)` for failure tests, and `stop()`.
 * `onSpawned(urls)` is called as soon as the servers are spawned, before they answer: a test
 * starts nodes at the same moment as a fresh NATS cluster through it.
 */
export async function throwawayNats({ servers = 1, onSpawned } = {}) {
  const bin = debianBinary('nats-server', 'nats-server', 'NATS_URL');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-nats-'));
  const ports = [];
  for (let i = 0; i < servers; i++) ports.push({ client: await freePort(), route: await freePort() });
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const procs = ports.map((p, i) => {
    const args = ['-a', '127.0.0.1', '-p', String(p.client), '-js', '-sd', path.join(dir, `n${i + 1}`), '-n', `nats${i + 1}`];
    if (servers > 1) args.push('--cluster_name', 'sb', '-cluster', `nats://127.0.0.1:${p.route}`, '-routes', routes);
    const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderrTail = '';
    proc.stderr.on('data', (d) => {
      proc.stderrTail = (proc.stderrTail + d).slice(-4096);
    });
    return proc;
  });
  const urls = ports.map((p) => `nats://127.0.0.1:${p.client}`);
  onSpawned?.(urls);
  const deadline = Date.now() + 60_000;
  for (const [i, url] of urls.entries()) {
    // A clustered JetStream answers once a meta leader is elected: wait for every server.
    while (!(await natsAnswers(url))) {
      const proc = procs[i];
      if (proc.exitCode !== null || Date.now() > deadline) {
        for (const p of procs) p.kill('SIGKILL'); // none is left behind without its temp dir
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`throwaway nats-server ${url} did not start:\n${proc.stderrTail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  log(`started ${servers === 1 ? 'a throwaway nats-server' : `a throwaway cluster of ${servers} nats-servers`} on ${urls.join(', ')} (${dir})`);
  const stopOne = (proc) =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
    });
  return {
    url: urls.join(','),
    urls,
    kill: (i, signal = 'SIGKILL') => procs[i].kill(signal),
    stop: async () => {
      await Promise.all(procs.map(stopOne));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function freePort() {
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

export async function throwawayPostgres() {
  let bin = findPgBin();
  if (!bin) {
    aptInstall('postgresql', 'PostgreSQL binaries are missing: install the Debian package `postgresql` (or set DATABASE_URL)');
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
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let server;
  const start = async () => {
    server = spawn(c2, a2, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    let stderr = '';
    server.stderr.on('data', (d) => {
      stderr += d;
    });
    const deadline = Date.now() + 30_000;
    while (!(await answers(url))) {
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`throwaway PostgreSQL did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // Signal the postmaster itself (runuser does not forward signals): SIGINT is a fast shutdown.
  const halt = () =>
    new Promise((resolve) => {
      if (server.exitCode !== null || server.signalCode !== null) return resolve();
      const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const kill = (signal) => {
        try {
          process.kill(pid, signal);
        } catch {} // already gone
      };
      const force = setTimeout(() => kill('SIGKILL'), 10_000);
      server.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      kill('SIGINT');
    });
  await start();
  log(`started throwaway PostgreSQL on 127.0.0.1:${port} (${dir})`);
  return {
    url,
    /** Stops the server, keeping its data: `start()` brings it back on the same port. */
    halt,
    start,
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
