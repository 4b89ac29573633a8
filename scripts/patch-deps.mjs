#!/usr/bin/env node
// Runs after `npm install` / `npm ci` (package.json "postinstall"). Patches postgres.js 3.4.9's
// write scheduler, which upstream has not fixed yet (porsager/postgres#1154, #1208; PRs #1168,
// #1176, #1209 open): when a connection closes with a small write still scheduled, `nextWrite`
// dereferences the null socket from a setImmediate callback and the uncaught TypeError kills the
// process; and teardown clears that timer without forgetting it, so the connection never flushes
// again after it reconnects. The hub's PostgreSQL-outage test crashed on the first, every time.
// The patch forgets the timer and the pending bytes at teardown and makes `nextWrite` on a closed
// connection settle what was waiting with CONNECTION_CLOSED instead of throwing. It applies to the
// exact version only and fails loudly if the code it expects is not there; remove it once a fixed
// release is pinned.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const MARK = '/* switchboard: nextWrite guard */';

/**
 * The postgres package the hub itself loads, found the way Node finds it from here: nested under
 * this package or hoisted beside it (installed as a dependency, npm puts it in the app's
 * node_modules). Undefined when it is not installed at all.
 */
function postgresRoot() {
  let entry;
  try {
    entry = createRequire(import.meta.url).resolve('postgres');
  } catch {
    return undefined;
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'postgres') return dir;
  }
  return undefined;
}

const root = postgresRoot();
if (!root) process.exit(0); // not installed (e.g. a production prune)
const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
if (version !== '3.4.9') {
  process.stderr.write(
    `scripts/patch-deps.mjs: postgres is ${version}, not 3.4.9: check whether the nextWrite fix is released and update or drop this patch\n`,
  );
  process.exit(1);
}

const edits = [
  [
    '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    `  function nextWrite(fn) {\n    ${MARK}\n    if (!socket) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      ;(query || initial || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n    const x = socket.write(chunk, fn)`,
  ],
  ['    clearImmediate(nextWriteTimer)\n    if (socket) {', '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {'],
  [
    '    incomings = null\n    clearImmediate(nextWriteTimer)\n',
    '    incomings = null\n    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n',
  ],
];

for (const file of ['src/connection.js', 'cjs/src/connection.js']) {
  const p = path.join(root, file);
  let s = readFileSync(p, 'utf8');
  if (s.includes(MARK)) continue;
  for (const [from, to] of edits) {
    if (s.split(from).length !== 2) {
      process.stderr.write(`scripts/patch-deps.mjs: ${file}: expected code not found exactly once; the patch no longer applies\n`);
      process.exit(1);
    }
    s = s.replace(from, to);
  }
  writeFileSync(p, s);
}
