#!/usr/bin/env node
// `npm run cluster`: a whole cluster on loopback for development and failure drills — a 3-server
// NATS cluster with JetStream, PostgreSQL (DATABASE_URL when it answers, else a throwaway server)
// and N hub nodes sharing one JWT signing key. Prints every URL; Ctrl-C (or --duration) stops it
// all and removes the temp dirs.
//
//   npm run cluster [-- --nodes 3] [--base-port 8081] [--duration SECONDS]
//
// --base-port 0 picks free ports. Each node logs to <temp dir>/nodeN.log.

import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { answers, log, throwawayNats, throwawayPostgres } from './provision.mjs';

const { values } = parseArgs({
  options: { nodes: { type: 'string', default: '3' }, 'base-port': { type: 'string', default: '8081' }, duration: { type: 'string' } },
});
const count = Number(values.nodes);
const basePort = Number(values['base-port']);
if (!Number.isInteger(count) || count < 1 || count > 9) throw new Error('--nodes: 1 to 9');
if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65_000) throw new Error('--base-port: a port number, or 0 for free ports');

/** The URL without its password, for printing. */
const redact = (url) => {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-dev-cluster-'));
const stops = [];
let stopping;
const stop = (code) => {
  stopping ??= (async () => {
    for (const s of stops.reverse()) await s().catch((e) => log(`stop failed: ${e.message}`));
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  })();
  return stopping;
};
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

try {
  const nats = await throwawayNats({ servers: 3 });
  stops.push(nats.stop);
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl || !(await answers(databaseUrl))) {
    const pg = await throwawayPostgres();
    stops.push(pg.stop);
    databaseUrl = pg.url;
  }
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
  const keyFile = path.join(dir, 'jwt-ed25519.pem');
  writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

  const nodes = [];
  for (let i = 1; i <= count; i++) {
    const logFile = path.join(dir, `node${i}.log`);
    const child = spawn(process.execPath, [path.resolve('dist/cli.js'), 'serve'], {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(basePort === 0 ? 0 : basePort + i - 1),
        SB_ROBOT_PORT: '0',
        SB_NODE_ID: `node${i}`,
        SB_DATA_DIR: path.join(dir, `node${i}`),
        DATABASE_URL: databaseUrl,
        NATS_URL: nats.url,
        SB_JWT_KEY_FILE: keyFile,
        // The script reads the node's 'listening' line, which is logged at info.
        LOG_LEVEL: ['debug', 'trace'].includes(process.env.LOG_LEVEL) ? process.env.LOG_LEVEL : 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Registered before it is up: Ctrl-C during start-up stops it too.
    stops.push(
      () =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    );
    const out = createWriteStream(logFile);
    child.stderr.pipe(out);
    const url = await new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        out.write(`${line}\n`);
        try {
          const l = JSON.parse(line);
          if (l.msg === 'listening') resolve(l.url);
        } catch {}
      });
      child.once('exit', (code) => {
        out.end();
        const tail = readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n');
        reject(new Error(`node${i} exited (${code}) before listening:\n${tail}`));
      });
    });
    nodes.push({ name: `node${i}`, url, logFile, pid: child.pid });
  }

  const lines = [
    '',
    `Switchboard dev cluster (${count} nodes); Ctrl-C stops everything`,
    ...nodes.map((n) => `  ${n.name}  ${n.url}   ws ${n.url.replace(/^http/, 'ws')}/ws   pid ${n.pid}   log ${n.logFile}`),
    `  NATS      ${nats.urls.join('  ')}`,
    `  database  ${redact(databaseUrl)}`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({ msg: 'cluster ready', nodes: nodes.map((n) => n.url), nats: nats.urls, databaseUrl: redact(databaseUrl) })}\n`);
  if (values.duration) setTimeout(() => stop(0), Number(values.duration) * 1000);
} catch (e) {
  log(e.stack ?? String(e));
  await stop(1);
}
