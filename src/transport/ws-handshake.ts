// What the WebSocket endpoints decide before a socket exists: where the token comes from, whether a
// cookie-authenticated upgrade comes from an allowed origin, what a request that is no upgrade is
// told, and the per-key socket counts the upgrade checks.

import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { COOKIE_ACCESS, parseCookies } from './http.js';
import type { HttpResponse, TemplatedApp } from './uws.js';

/** The WebSocket paths of a node: sb.v1, and Foxglove's protocol for one robot. */
export const WS_PATHS = ['/ws', '/foxglove'] as const;

/** Open sockets per key (user id, client IP); a key leaves the map at zero so it cannot grow unbounded. */
export class Counts {
  private readonly n = new Map<string, number>();
  get(key: string): number {
    return this.n.get(key) ?? 0;
  }
  add(key: string, d: 1 | -1): void {
    const v = this.get(key) + d;
    if (v > 0) this.n.set(key, v);
    else this.n.delete(key);
  }
}

/** The access token of an upgrade: the Authorization header, else `?token=`, else the cookie. */
export function tokenFrom(headers: Record<string, string>, query: URLSearchParams): { token: string | undefined; viaCookie: boolean } {
  const m = /^Bearer (\S+)$/i.exec(headers.authorization ?? '');
  if (m) return { token: m[1], viaCookie: false };
  const q = query.get('token');
  if (q) return { token: q, viaCookie: false };
  return { token: parseCookies(headers.cookie)[COOKIE_ACCESS], viaCookie: true };
}

/** Cookie-authenticated sockets must come from an allowed origin or the hub's own (CSWSH defence). */
export function originAllowed(headers: Record<string, string>, corsOrigins: string[]): boolean {
  const origin = headers.origin;
  if (!origin) return true; // not a browser: cookies were attached deliberately
  if (corsOrigins.includes(origin)) return true;
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false;
  }
}

/**
 * Requests to the WebSocket paths that are no upgrade (uWS passes them on): say what is wrong
 * rather than fall through to the HTTP router's 404.
 */
export function refuseNonUpgrades(app: TemplatedApp, log: Logger, nextReqId: () => string): void {
  const plain = (res: HttpResponse, status: string, code: ErrorCode, message: string, header: [string, string]) => {
    const reqId = nextReqId();
    log.info({ reqId, ip: Buffer.from(res.getRemoteAddressAsText()).toString(), status: Number.parseInt(status, 10), code }, 'websocket upgrade refused');
    res.cork(() => {
      res
        .writeStatus(status)
        .writeHeader('content-type', 'application/json; charset=utf-8')
        .writeHeader('x-request-id', reqId)
        .writeHeader(header[0], header[1])
        .end(JSON.stringify({ error: { code, message } }));
    });
  };
  for (const path of WS_PATHS) {
    app.get(path, (res) =>
      plain(
        res,
        '426 Upgrade Required',
        'UPGRADE_REQUIRED',
        `${path} is a WebSocket endpoint: send a WebSocket upgrade request (GET with Upgrade: websocket)`,
        ['upgrade', 'websocket'],
      ),
    );
    app.any(path, (res) => plain(res, '405 Method Not Allowed', 'METHOD_NOT_ALLOWED', `${path} accepts only GET with Upgrade: websocket`, ['allow', 'GET']));
  }
}
