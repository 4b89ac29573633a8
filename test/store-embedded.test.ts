// The embedded store runs PGlite on a worker thread: a long query leaves the main thread free to
// serve sockets meanwhile (PGlite executes each query synchronously, so on the main thread a slow
// one stalled the whole node), and closing flushes it so a reopened data dir has everything.

import { mkdir, readdir, writeFile } from 'node:fs/promises';
import t from 'tap';
import { openDatabase } from '../src/store/db.js';
import { tempDir } from './helpers/hub.js';
import { silentLog } from './helpers/stores.js';

t.test('a long embedded query does not hold up the main thread', async (t) => {
  const db = await openDatabase({ databaseUrl: undefined, dataDir: await tempDir(t), poolSize: 8, log: silentLog });
  t.teardown(() => db.close());
  await db.sql`SELECT 1`; // connected and warm
  // Turns of the main event loop while the query runs. With PGlite on this thread the query would
  // run inside one turn; on its own thread, the loop keeps turning until the answer comes back.
  let turns = 0;
  let running = true;
  const spin = () => {
    turns++;
    if (running) setImmediate(spin);
  };
  const query = db.sql`SELECT count(*)::int AS n FROM generate_series(1, 3000000)`;
  setImmediate(spin);
  const [row] = await query;
  running = false;
  t.equal(row?.n, 3_000_000);
  t.ok(turns > 100, `the main loop kept turning while PGlite worked (${turns} turns)`);
});

t.test('closing flushes the worker: a reopened data dir has every committed row', async (t) => {
  const dataDir = await tempDir(t);
  const first = await openDatabase({ databaseUrl: undefined, dataDir, poolSize: 8, log: silentLog });
  await first.sql`CREATE TABLE kept (n int)`;
  await first.sql`INSERT INTO kept SELECT generate_series(1, 1000)`;
  await first.close();
  await first.close(); // idempotent
  const second = await openDatabase({ databaseUrl: undefined, dataDir, poolSize: 8, log: silentLog });
  t.teardown(() => second.close());
  const [row] = await second.sql`SELECT count(*)::int AS n FROM kept`;
  t.equal(row?.n, 1000);
});

t.test('a data dir PGlite cannot open is a clear error, and the dir is left unlocked', async (t) => {
  const dataDir = await tempDir(t);
  await mkdir(`${dataDir}/pgdata`, { recursive: true });
  await writeFile(`${dataDir}/pgdata/PG_VERSION`, 'not a version\n');
  await t.rejects(openDatabase({ databaseUrl: undefined, dataDir, poolSize: 8, log: silentLog }), { message: `embedded store in ${dataDir}/pgdata: ` });
  t.notOk((await readdir(dataDir)).includes('switchboard.pid'), 'the lock is released');
});
