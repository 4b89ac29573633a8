#!/usr/bin/env node
// After Vite: compresses every file of dist/console once (Brotli at its best, and gzip) beside it
// (`x.js.br`, `x.js.gz`), so a node serves the smallest copy a browser accepts without compressing
// anything itself; reports the console's bundle, and fails the build when the console's own
// scripts and styles together pass the budget, gzipped. The API reference's files (Swagger UI,
// `docs-*`, fetched only by /docs) are reported beside it. `npm run build` runs this after Vite.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** JavaScript and CSS of the console (not the API reference), gzipped. */
export const BUDGET_BYTES = 100 * 1024;
/** Smaller files are sent as they are: compressing them saves less than it costs. */
const COMPRESS_FROM = 512;

const root = path.resolve('dist/console');
const files = [...readdirSync(root).filter((f) => f.endsWith('.html')), ...readdirSync(path.join(root, 'assets')).map((f) => `assets/${f}`)].filter(
  (f) => !/\.(br|gz)$/.test(f),
);
const kib = (n) => `${(n / 1024).toFixed(1).padStart(7)} KiB`;
let total = 0;
let docs = 0;
const rows = [];
for (const name of files.sort()) {
  const raw = readFileSync(path.join(root, name));
  if (raw.length < COMPRESS_FROM) continue;
  const gz = gzipSync(raw, { level: 9 });
  const br = brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } });
  writeFileSync(path.join(root, `${name}.gz`), gz);
  writeFileSync(path.join(root, `${name}.br`), br);
  if (!/\.(js|css)$/.test(name)) continue;
  const isDocs = path.basename(name).startsWith('docs-');
  if (isDocs) docs += gz.length;
  else total += gz.length;
  rows.push(`  ${name.padEnd(40)} ${kib(raw.length)} ${kib(gz.length)} gzipped ${kib(br.length)} Brotli${isDocs ? '  (API reference)' : ''}`);
}
console.log(
  `console bundle (budget ${BUDGET_BYTES / 1024} KiB gzipped):\n${rows.join('\n')}\n  console ${kib(total).trim()} gzipped; API reference ${kib(docs).trim()} gzipped`,
);
if (total > BUDGET_BYTES) {
  console.error(`the console's scripts and styles are ${(total / 1024).toFixed(1)} KiB gzipped, over the ${BUDGET_BYTES / 1024} KiB budget`);
  process.exit(1);
}
