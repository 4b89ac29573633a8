// The port of a node that is still joining its cluster (NATS or JetStream not ready yet). It holds
// the node's port from the start, so a load balancer's /readyz check learns why the node is not
// ready instead of meeting a refused connection, and every other request gets 503 UNAVAILABLE
// with Retry-After. The node replaces it with its real app once it has joined.

import { errorBody, SbError } from '../errors.js';
import { type HttpResponse, listenExclusive, type TemplatedApp, type us_listen_socket, uWS } from './uws.js';

export interface Standby {
  readonly port: number;
  /** Stops listening (the node listens with its real app next). */
  close(): void;
}

/** Listens on host:port (exclusively); `reason()` says why the node is not ready yet. Undefined when the port is taken. */
export async function listenStandby(
  app: TemplatedApp,
  host: string,
  port: number,
  reason: () => string,
  log?: { warn(o: object, msg: string): void },
): Promise<Standby | undefined> {
  const reply = (res: HttpResponse, status: string, body: unknown): void => {
    res.cork(() => {
      res.writeStatus(status);
      res.writeHeader('content-type', 'application/json; charset=utf-8');
      res.writeHeader('cache-control', 'no-store');
      if (status.startsWith('503')) res.writeHeader('retry-after', '1');
      // Closed after each answer: a kept-alive connection would keep reaching this app after the switch.
      res.end(JSON.stringify(body), true);
    });
  };
  app.get('/healthz', (res) => reply(res, '200 OK', { status: 'ok' }));
  app.get('/readyz', (res) => reply(res, '503 Service Unavailable', { status: 'unavailable', reason: reason() }));
  app.any('/*', (res) =>
    reply(res, '503 Service Unavailable', errorBody(new SbError('UNAVAILABLE', `this node is joining its cluster (${reason()}); retry shortly`))),
  );
  // A WebSocket upgrade is a GET: it gets the 503 above, and the client retries elsewhere or later.
  const socket: us_listen_socket | false = await listenExclusive(app, host, port, log);
  if (!socket) return undefined;
  return {
    port: uWS.us_socket_local_port(socket as never),
    close: () => uWS.us_listen_socket_close(socket),
  };
}
