// The only module that imports uWebSockets.js (installed as an npm alias of a build that loads on
// this platform; see docs/architecture.md). A future official build is a one-line change here.
// It must be a default import: the named exports type-check but are undefined at run time.

import uWS, { type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import { readFile } from 'node:fs/promises';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
export { uWS };

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT: the build takes it after the host, but its .d.ts omits that overload. */
const EXCLUSIVE_PORT = 1;
type ListenWithOptions = (host: string, port: number, options: number, cb: (s: us_listen_socket | false) => void) => TemplatedApp;

/** Linux keeps a closed connection's port in TIME_WAIT for 60 s; a little more. */
const TIME_WAIT_MS = 65_000;

/**
 * Listens without SO_REUSEPORT (uWS's default sets it, so a second process on a taken port would
 * "listen" too and the kernel would share connections between the two). Resolves with the socket,
 * or false when the port is taken or not permitted.
 *
 * This build sets no SO_REUSEADDR either, so the connections a previous run closed first (its
 * WebSockets at shutdown, idle keep-alives) hold the port in TIME_WAIT for a minute and nothing can
 * bind it. When no socket is listening there (read from /proc/net/tcp*), that is all that holds it:
 * the wait is logged once and the listen retried until the port is free, TIME_WAIT_MS at most.
 */
export async function listenExclusive(
  app: TemplatedApp,
  host: string,
  port: number,
  log?: { warn(o: object, msg: string): void },
): Promise<us_listen_socket | false> {
  const deadline = Date.now() + TIME_WAIT_MS;
  for (let told = false; ; told = true) {
    const socket = await new Promise<us_listen_socket | false>((resolve) =>
      (app.listen as unknown as ListenWithOptions).call(app, host, port, EXCLUSIVE_PORT, resolve),
    );
    if (socket || port === 0 || Date.now() > deadline || (await someoneListens(port))) return socket;
    if (!told) log?.warn({ port }, 'the port is held by connections a previous run closed (TIME_WAIT): waiting for it, a minute at most');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Whether a socket listens on the TCP port (true when that cannot be known: not Linux). */
async function someoneListens(port: number): Promise<boolean> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  try {
    const tables = await Promise.all(['/proc/net/tcp', '/proc/net/tcp6'].map((f) => readFile(f, 'utf8').catch(() => '')));
    if (tables.every((t) => t === '')) return true;
    // Columns: sl, local address:port, remote address:port, state (0A: LISTEN), ...
    return tables.some((t) =>
      t.split('\n').some((line) => {
        const cols = line.trim().split(/\s+/);
        return cols[1]?.endsWith(hex) === true && cols[3] === '0A';
      }),
    );
  } catch {
    return true;
  }
}
