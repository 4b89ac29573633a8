#!/usr/bin/env node
// `npm test`: provisions what the suite needs, builds, runs tap, and ends with the totals on a line
// of their own ("N passed, N failed").
// PostgreSQL: DATABASE_URL when it answers; otherwise a throwaway server from the installed
// binaries (initdb/postgres) on a free port in a temp dir, installed from Debian's `postgresql`
// package first when missing (needs root).
// HAProxy, nginx (with its stream module), promtool, Chromium (the console's browser tests) and
// Python 3 with python3-msgpack and python3-cryptography (the Python robot library's tests): from Debian's packages when
// missing.
// NATS with JetStream: NATS_URL when it answers with JetStream enabled; otherwise a throwaway
// nats-server -js on a free port with its store in a temp dir, installed from Debian's
// `nats-server` package first when missing. Extra arguments go to tap (e.g. a test file).

import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { answers, debianBinary, debianFile, log, natsAnswers, throwawayNats, throwawayPostgres } from './provision.mjs';

/** Binaries the suite runs, with the Debian package that brings each. */
const TOOLS = [
  ['haproxy', 'haproxy'],
  ['nginx', 'nginx'],
  ['promtool', 'prometheus'],
  // The console's browser tests drive Debian's Chromium (playwright-core brings no browser).
  ['chromium', 'chromium'],
];
/** Files that are no binary on PATH (nginx's stream module, for the robot TLS passthrough). */
const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
/**
 * The Python robot library's tests (test/python-robot.test.ts, test/python-enroll.test.ts) run on
 * Debian's interpreter with Debian's MessagePack module, its one dependency, and Debian's
 * cryptography, its optional one: a Python module is a file to look for.
 */
const PYTHON_FILES = [
  ['/usr/bin/python3', 'python3'],
  ['/usr/lib/python3/dist-packages/msgpack/__init__.py', 'python3-msgpack'],
  // Its optional dependency, for keys and certificate requests made on the robot (python-enroll.test.ts).
  ['/usr/lib/python3/dist-packages/cryptography/__init__.py', 'python3-cryptography'],
];
const FILES = [[NGINX_STREAM_MODULE, 'libnginx-mod-stream'], ...PYTHON_FILES];

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
    // The operator tests run the shipped proxy files and check the shipped monitoring files with
    // real tools: installed once here, before tap runs test files in parallel (two apt-gets at
    // once would fight over dpkg's lock).
    for (const [binary, pkg] of TOOLS) debianBinary(binary, pkg);
    for (const [file, pkg] of FILES) debianFile(file, pkg);
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
