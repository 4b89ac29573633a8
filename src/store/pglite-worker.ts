// The embedded PGlite and the socket server that serves it to postgres.js, on a thread of their
// own: PGlite runs each query synchronously in WebAssembly, which on the main thread stalled every
// socket of the node for as long as the query ran. The main thread reaches it as it reaches
// PostgreSQL, over the private Unix socket (see db.ts).
//
// Messages: the worker posts { ready: true } once serving, or { error } if PGlite would not open;
// on "stop" it stops serving, closes PGlite (flushing it to disk) and posts { closed: true }.

import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface PgliteWorkerData {
  pgdata: string;
  sockPath: string;
}

const port = parentPort;
if (!port) throw new Error('pglite-worker runs as a worker thread');
const { pgdata, sockPath } = workerData as PgliteWorkerData;
let db: PGlite | undefined;
try {
  db = await PGlite.create(pgdata);
  const server = new PGLiteSocketServer({ db, path: sockPath, maxConnections: 1 });
  await server.start();
  const open = db;
  port.on('message', async (m: unknown) => {
    if (m !== 'stop') return;
    try {
      await server.stop();
    } finally {
      await open.close();
      port.postMessage({ closed: true });
      port.close();
    }
  });
  port.postMessage({ ready: true });
} catch (e) {
  await db?.close().catch(() => undefined);
  port.postMessage({ error: e instanceof Error ? e.message : String(e) });
  port.close();
}
