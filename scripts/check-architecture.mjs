#!/usr/bin/env node
// Checks the shape docs/architecture.md states, over the import graph of src/: each layer imports
// only the layers below it (transport → actors → cluster / chat / robots / auth → store, and
// everything may use src/protocol and the shared modules), the client SDK and the robot kit import
// only the wire protocol, only src/transport/uws.ts imports uWebSockets.js, and no module passes
// the line limit. Prints each violation; exits 1 if there is any. `node scripts/check-architecture.mjs`

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The most lines a module may have before it asks to be split (STYLE.md: ~600). */
export const MAX_LINES = 600;

const SHARED = ['errors.ts', 'log.ts', 'config.ts', 'config-parse.ts', 'config-limits.ts', 'version.ts'];
/** What each part of src/ may import besides itself and the shared modules. */
const ALLOWED = {
  root: '*', // cli*.ts, hub.ts, metrics.ts: the composition roots and what instruments them
  transport: ['actors', 'cluster', 'chat', 'robots', 'auth', 'store', 'protocol'],
  actors: ['cluster', 'chat', 'robots', 'auth', 'store', 'protocol'],
  cluster: ['store', 'protocol'],
  chat: ['store', 'protocol'],
  // Enrolling a robot issues its certificate from the robot CA.
  robots: ['auth', 'store', 'protocol'],
  auth: ['store', 'protocol'],
  store: ['protocol'],
  protocol: [],
  shared: ['protocol'],
  // What a robot maker or an app reads: the wire protocol, and (the kit) the SDK's reconnect backoff.
  client: ['protocol'],
  'robot-kit': ['protocol', 'client'],
};

function partOf(rel) {
  const [first, ...rest] = rel.split('/');
  if (rest.length === 0) return SHARED.includes(first) ? 'shared' : 'root';
  return first;
}

function* modules(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* modules(p);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) yield p;
  }
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The violations in the tree under `root` (a checkout), as lines to print. */
export function check(root) {
  const src = path.join(root, 'src');
  const problems = [];
  for (const file of modules(src)) {
    const rel = path.relative(src, file).split(path.sep).join('/');
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES) problems.push(`src/${rel}: ${lines} lines, over ${MAX_LINES}: split it along a seam`);
    const from = partOf(rel);
    const allowed = ALLOWED[from];
    if (!allowed) {
      problems.push(`src/${rel}: src/${from} is not a layer docs/architecture.md names (add it to scripts/check-architecture.mjs)`);
      continue;
    }
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (spec.includes('uWebSockets.js') || spec.includes('uws-js-unofficial')) {
        if (rel !== 'transport/uws.ts') problems.push(`src/${rel}: imports uWebSockets.js; only src/transport/uws.ts may`);
        continue;
      }
      if (!spec.startsWith('.')) continue;
      const target = path
        .relative(src, path.resolve(path.dirname(file), spec))
        .split(path.sep)
        .join('/')
        .replace(/\.js$/, '.ts');
      if (target.startsWith('..')) {
        problems.push(`src/${rel}: imports ${spec}, outside src/`);
        continue;
      }
      const to = partOf(target);
      if (to === from || allowed === '*') continue;
      if (to === 'shared' && from !== 'protocol' && from !== 'client' && from !== 'robot-kit') continue;
      const problem = `src/${rel}: imports src/${target} (${from} → ${to} runs against the layering)`;
      if (!allowed.includes(to) && !problems.includes(problem)) problems.push(problem);
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = check(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
  for (const p of problems) console.log(p);
  console.log(problems.length ? `${problems.length} violation(s)` : 'the architecture holds');
  process.exit(problems.length ? 1 : 0);
}
