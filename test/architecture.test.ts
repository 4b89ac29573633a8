// The layering docs/architecture.md states, checked over the import graph on every run: a module
// that imports against it, a second importer of uWebSockets.js or a module over the line limit
// fails the suite. The checker itself is tried on a planted tree, so it cannot pass by seeing nothing.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
// @ts-expect-error: a plain ES module script without types
import { check, MAX_LINES } from '../scripts/check-architecture.mjs';

const repo = path.resolve(import.meta.dirname, '..');

t.test('src/ keeps the layering, the uWebSockets.js boundary and the module size limit', async (t) => {
  t.same(check(repo), [], 'no violation (run `node scripts/check-architecture.mjs` to see them)');
});

t.test('the checker finds each kind of violation in a planted tree', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'sb-arch-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, 'src', rel)), { recursive: true });
    writeFileSync(path.join(root, 'src', rel), text);
  };
  put('errors.ts', 'export const x = 1;\n');
  put('actors/room.ts', "import { x } from '../errors.js';\nexport const y = x;\n");
  put('cluster/robots-nats.ts', "import type { Port } from '../actors/ports.js';\n");
  put('store/db.ts', "import { uWS } from 'uWebSockets.js';\n");
  put('client/index.ts', "export * from '../store/db.js';\n");
  put('transport/big.ts', 'const a = 1;\n'.repeat(MAX_LINES + 1));
  put('transport/ok.ts', "import { y } from '../actors/room.js';\nconst m = await import('../store/db.js');\n");
  put('gadgets/thing.ts', 'export {};\n');
  const found: string[] = check(root).sort();
  t.match(found, [
    /src\/client\/index.ts: imports src\/store\/db.ts \(client → store/,
    /src\/cluster\/robots-nats.ts: imports src\/actors\/ports.ts \(cluster → actors/,
    /src\/gadgets\/thing.ts: src\/gadgets is not a layer/,
    /src\/store\/db.ts: imports uWebSockets.js/,
    /src\/transport\/big.ts: 601 lines/,
  ]);
  t.equal(found.length, 5, 'and nothing that keeps the rules (shared modules, lower layers, dynamic imports downward)');
});
