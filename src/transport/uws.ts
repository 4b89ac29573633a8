// The only module that imports uWebSockets.js (installed as an npm alias of a build that loads on
// this platform; see docs/architecture.md). A future official build is a one-line change here.
// It must be a default import: the named exports type-check but are undefined at run time.

import uWS, { type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
export { uWS };

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT: the build takes it after the host, but its .d.ts omits that overload. */
const EXCLUSIVE_PORT = 1;
type ListenWithOptions = (host: string, port: number, options: number, cb: (s: us_listen_socket | false) => void) => TemplatedApp;

/**
 * Listens without SO_REUSEPORT (uWS's default sets it, so a second process on a taken port would
 * "listen" too and the kernel would share connections between the two). Resolves with the socket,
 * or false when the port is taken or not permitted.
 */
export function listenExclusive(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket | false> {
  return new Promise((resolve) => (app.listen as unknown as ListenWithOptions).call(app, host, port, EXCLUSIVE_PORT, resolve));
}
