#!/usr/bin/env node
// Regenerates the configuration table in README.md from the `spec` in src/config.ts (via dist/):
// `npm run -s build && node scripts/config-table.mjs`. test/config.test.ts fails when they differ.

import { readFileSync, writeFileSync } from 'node:fs';
import { spec } from '../dist/config.js';

const cell = (v) => (v === undefined ? 'unset' : Array.isArray(v) ? (v.length ? `\`${v.join(',')}\`` : 'none') : `\`${v}\``);
const rows = spec.map((e) => `| \`${e.env}\` | \`--${e.flag}\` | ${cell(e.def)} | ${e.doc.replaceAll('|', '\\|')} |`);
const readme = readFileSync('README.md', 'utf8');
const lines = readme.split('\n');
const start = lines.findIndex((l) => l.startsWith('| Variable | Flag | Default | Meaning |'));
if (start < 0) throw new Error('README.md has no configuration table header');
let end = start + 2;
while (end < lines.length && lines[end].startsWith('| `')) end++;
lines.splice(start + 2, end - start - 2, ...rows);
writeFileSync('README.md', lines.join('\n'));
console.log(`wrote ${rows.length} rows`);
