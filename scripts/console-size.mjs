#!/usr/bin/env node
// Reports the web console's bundle (dist/console/assets) and fails the build when its scripts and
// styles together pass the budget, compressed as browsers fetch them (gzip; Brotli is smaller).
// `npm run build` runs it after Vite. The budget and today's figures are in README.md.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** JavaScript and CSS of the whole console, gzipped. */
export const BUDGET_BYTES = 100 * 1024;

const dir = path.resolve('dist/console/assets');
let total = 0;
const rows = [];
for (const name of readdirSync(dir).sort()) {
  if (!/\.(js|css)$/.test(name)) continue;
  const raw = readFileSync(path.join(dir, name));
  const gz = gzipSync(raw, { level: 9 }).length;
  total += gz;
  rows.push(`  ${name.padEnd(32)} ${(raw.length / 1024).toFixed(1).padStart(7)} KiB  ${(gz / 1024).toFixed(1).padStart(6)} KiB gzipped`);
}
console.log(`console bundle (budget ${BUDGET_BYTES / 1024} KiB gzipped):\n${rows.join('\n')}\n  total ${(total / 1024).toFixed(1)} KiB gzipped`);
if (total > BUDGET_BYTES) {
  console.error(`the console's scripts and styles are ${(total / 1024).toFixed(1)} KiB gzipped, over the ${BUDGET_BYTES / 1024} KiB budget`);
  process.exit(1);
}
