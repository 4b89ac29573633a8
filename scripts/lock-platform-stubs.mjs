#!/usr/bin/env node
// Run after `npm install` changes package-lock.json: `node scripts/lock-platform-stubs.mjs`.
// The registry these machines reach serves only this platform's builds of packages that ship one
// per platform (biome, msgpackr-extract), so npm leaves the other platforms' optional packages out
// of the lock file, and `npm ci` then refuses the lock as out of sync. This adds each missing
// optional dependency as a platform-tagged entry, which npm ci accepts and skips on other platforms.

import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const pkgs = lock.packages;
let added = 0;
for (const [path, meta] of Object.entries(pkgs)) {
  if (!path) continue;
  for (const [name, range] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (pkgs[key]) continue;
    const entry = { version: range.replace(/^[\^~=]/, ''), optional: true };
    if (meta.dev) entry.dev = true;
    const m = /(android|darwin|linux|win32|freebsd)-(arm64|x64|arm|ia32)(-musl)?/.exec(name);
    if (m) {
      entry.os = [m[1]];
      entry.cpu = [m[2]];
      if (m[3]) entry.libc = ['musl'];
    }
    pkgs[key] = entry;
    added++;
  }
}
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} platform stub(s) to package-lock.json`);
