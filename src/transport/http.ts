// The HTTP layer on uWS: a route table, request reading (headers synchronously, as uWS requires;
// the body through onData with a hard size cap), authentication, validation, and one place that
// turns results and errors into responses. Every request gets exactly one response, or none if the
// client went away; no exception escapes to uWS.

import { randomBytes } from 'node:crypto';
import type { AccessClaims } from '../auth/access-tokens.js';
import { hashCsrf } from '../auth/access-tokens.js';
import { errorBody, SbError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApiKey, ApiScope } from '../store/api-keys.js';
import { BodyReader, ClientGoneError, type ReqState, writeBody } from './http-stream.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';
import { type Schema, validateBody, validateQuery } from './validate.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface AuthUser {
  id: string;
  username: string;
  admin: boolean;
  via: 'bearer' | 'cookie';
  /** The login session the token was issued to (absent on tokens issued before sessions were kept). */
  sessionId: string | undefined;
}

export interface Ctx<B = unknown, Q = Record<string, unknown>> {
  reqId: string;
  method: Method;
  path: string;
  params: Record<string, string>;
  query: Q;
  headers: Record<string, string>;
  cookies: Record<string, string>;
  body: B;
  ip: string;
  log: Logger;
  /** Set when the route requires authentication. */
  user: AuthUser;
  /** Set on a server API route (`apiKey`): the key the request came with. */
  key: ApiKey;
}

export interface Reply {
  status?: number;
  /** JSON-encoded unless `raw` is given. */
  body?: unknown;
  raw?: { contentType: string; data: string | Uint8Array };
  /**
   * A body streamed as it is read (a file): `length` bytes in all; its Content-Type is among
   * `headers`. `close` is called once the reply is over, whether it was sent, failed or never began.
   */
  stream?: { length: number; chunks: AsyncIterable<Uint8Array>; close?: () => void };
  headers?: Record<string, string>;
  cookies?: string[];
}

export interface ResponseDoc {
  description: string;
  schema?: Schema;
}

export interface Route<B = any, Q = any> {
  method: Method;
  /** Literal segments and `:name` parameters, e.g. `/api/v1/rooms/:id`. */
  path: string;
  auth: boolean;
  /** Admins only (with `auth`): anyone else gets 403 FORBIDDEN before the handler runs. */
  admin?: boolean;
  /**
   * A server API route: authenticated by an API key (`Authorization: Bearer sbk_...`) granting
   * this scope, instead of a user's token (`auth` is then false).
   */
  apiKey?: ApiScope;
  /** Path parameters that must be UUIDs (anything else is a 404: no such resource can exist). */
  uuidParams?: string[];
  body?: Schema;
  /**
   * The body is not read before the handler runs: `ctx.body` is a BodyReader giving it as it
   * arrives, with no size cap but the handler's (an upload).
   */
  streamBody?: boolean;
  /** An empty body is taken as `{}` (for endpoints whose fields are all optional). */
  bodyOptional?: boolean;
  /** An object schema for the query string (values are coerced to the declared types). */
  query?: Schema;
  summary: string;
  tags: string[];
  description?: string;
  responses: Record<number, ResponseDoc>;
  /** Left out of the OpenAPI document (the docs page itself). */
  internal?: boolean;
  handle(ctx: Ctx<B, Q>): Promise<Reply> | Reply;
}

export interface HttpOptions {
  log: Logger;
  maxBodyBytes: number;
  corsOrigins: string[];
  trustProxy: boolean;
  verifyAccess(token: string): Promise<AccessClaims>;
  /** The live (unrevoked) key of this secret, or undefined. */
  verifyApiKey(secret: string): Promise<ApiKey | undefined>;
  /** Called once per response with the matched route pattern (for metrics). */
  onResponse?(method: string, route: string, status: number, seconds: number): void;
}

/** Reason phrases; every status of the error code table has one (a test checks). */
export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  302: 'Found',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  411: 'Length Required',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Bytes of a streamed request body queued before its socket is paused. */
const STREAM_HIGH_WATER = 256 * 1024;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface Compiled {
  route: Route;
  segments: string[];
}

export class HttpRouter {
  private readonly routes: Compiled[] = [];
  private inflight = 0;
  private draining = false;
  private drained: (() => void) | undefined;
  private seq = 0;
  private readonly reqPrefix = randomBytes(3).toString('hex');

  constructor(private readonly opts: HttpOptions) {}

  add(...routes: Route[]): this {
    for (const route of routes) this.routes.push({ route, segments: route.path.split('/') });
    return this;
  }

  list(): readonly Route[] {
    return this.routes.map((c) => c.route);
  }

  mount(app: TemplatedApp): void {
    app.any('/*', (res, req) => this.onRequest(res, req));
  }

  /** Requests still being handled. */
  get inFlight(): number {
    return this.inflight;
  }

  /** From now on responses close their connection; resolves when no request is in flight. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }

  private onRequest(res: HttpResponse, req: HttpRequest): void {
    const state: ReqState = { aborted: false, done: false };
    res.onAborted(() => {
      state.aborted = true;
      // uWS sends no more data for an aborted request: without this the body would never settle
      // and the request would stay in flight forever (holding up every later shutdown).
      state.onAbort?.();
    });
    // Everything from `req` must be read now: it is invalid after this function returns.
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const rawQuery = req.getQuery() ?? '';
    const headers: Record<string, string> = {};
    req.forEach((k, v) => {
      headers[k] = v;
    });
    const ip = this.clientIp(res, headers);
    const reqId = `${this.reqPrefix}-${(++this.seq).toString(36)}`;
    const body: Promise<Buffer> | BodyReader = !BODY_METHODS.has(method)
      ? Promise.resolve(Buffer.alloc(0))
      : this.streamsBody(method, path)
        ? new BodyReader(res, state, STREAM_HIGH_WATER)
        : this.readBody(res, headers, state);
    // The body can fail (too large) before anything awaits it, e.g. while the token is verified:
    // mark it handled now, or Node treats that as an unhandled rejection and kills the process.
    if (body instanceof Promise) body.catch(() => {});
    this.inflight++;
    this.handle(res, state, { method, path, rawQuery, headers, ip, reqId, body })
      .catch((e) => this.opts.log.error({ err: e, reqId }, 'unhandled error while responding'))
      .finally(() => {
        this.inflight--;
        if (this.inflight === 0 && this.drained) this.drained();
      });
  }

  private readBody(res: HttpResponse, headers: Record<string, string>, state: ReqState): Promise<Buffer> {
    const max = this.opts.maxBodyBytes;
    const declared = Number(headers['content-length'] ?? '0');
    return new Promise((resolve, reject) => {
      if (declared > max) {
        reject(tooLarge(max));
        // Still attach a reader: uWS expects one, and the bytes are simply dropped.
        res.onData(() => {});
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      state.onAbort = () => reject(new SbError('BAD_JSON', 'the client closed the connection before the body was complete'));
      res.onData((chunk, isLast) => {
        if (state.done || state.aborted) return;
        size += chunk.byteLength;
        if (size > max) {
          reject(tooLarge(max));
          return;
        }
        // The ArrayBuffer is reused by uWS after this callback: copy it.
        chunks.push(Buffer.from(chunk.slice(0)));
        if (isLast) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
      });
    });
  }

  private async handle(
    res: HttpResponse,
    state: ReqState,
    r: { method: string; path: string; rawQuery: string; headers: Record<string, string>; ip: string; reqId: string; body: Promise<Buffer> | BodyReader },
  ): Promise<void> {
    const started = performance.now();
    const log = this.opts.log.child({ reqId: r.reqId });
    const cors = this.corsHeaders(r.headers.origin);
    let reply: Reply;
    // Unmatched paths share one label: a scanner must not grow the metrics' series count.
    let routePath = 'unmatched';
    try {
      if (r.method === 'OPTIONS') {
        reply = this.preflight(r.path, r.headers, cors);
      } else {
        const { route, params } = this.match(r.method, r.path);
        routePath = route.path;
        reply = await this.run(route, params, r, log);
      }
    } catch (e) {
      reply = this.errorReply(e, log, r.reqId);
    }
    // Whatever the handler did, a body we never finished reading must not be left dangling.
    if (r.body instanceof Promise) r.body.catch(() => {});
    // A streamed body not read to its end is still on the wire: close rather than parse it as a request.
    const unread = r.body instanceof BodyReader && !r.body.complete;
    let status = reply.status ?? 200;
    try {
      const headers: Record<string, string> = { ...cors, 'x-request-id': r.reqId, ...reply.headers };
      // Both vary: the reply by its encoding (the console's files), every reply by Origin.
      if (reply.headers?.vary && cors.vary) headers.vary = `${cors.vary}, ${reply.headers.vary}`;
      await this.send(res, state, status, headers, reply, unread);
    } catch (e) {
      // The status went out already: the client sees the body cut short, the log says why.
      status = 499;
      if (!(e instanceof ClientGoneError)) {
        log.warn({ err: e }, 'response body cut short');
        if (!state.aborted) res.close();
      }
    } finally {
      reply.stream?.close?.();
    }
    const seconds = (performance.now() - started) / 1000;
    this.opts.onResponse?.(r.method, routePath, status, seconds);
    // The access log: the path without its query string (which may carry a token), never a body.
    log.info({ method: r.method, path: r.path.slice(0, 200), route: routePath, status, ms: Math.round(seconds * 1000), ip: r.ip }, 'request');
  }

  private async run(
    route: Route,
    params: Record<string, string>,
    r: { method: string; rawQuery: string; headers: Record<string, string>; ip: string; reqId: string; path: string; body: Promise<Buffer> | BodyReader },
    log: Logger,
  ): Promise<Reply> {
    const cookies = parseCookies(r.headers.cookie);
    let user: AuthUser | undefined;
    let key: ApiKey | undefined;
    if (route.auth) user = await this.authenticate(r.method, r.headers, cookies);
    if (route.admin && !user?.admin) throw new SbError('FORBIDDEN', 'only admins may do this');
    if (route.apiKey) key = await this.authenticateKey(route.apiKey, r.headers.authorization);
    let body: unknown;
    const raw = r.body instanceof BodyReader ? Buffer.alloc(0) : await r.body;
    if (r.body instanceof BodyReader) body = r.body;
    else if (route.body) {
      if (raw.length === 0 && !route.bodyOptional) throw new SbError('BAD_JSON', 'expected a JSON object body');
      const type = (r.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (raw.length > 0 && type !== 'application/json') throw new SbError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
      try {
        body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
      } catch {
        throw new SbError('BAD_JSON', 'the body is not valid JSON');
      }
      body = validateBody(route.body, body);
    }
    const rawQuery = Object.fromEntries(new URLSearchParams(r.rawQuery));
    // An API parameter the endpoint does not know is refused, not ignored: a misspelt filter must
    // not quietly return everything.
    if (route.path.startsWith('/api/')) {
      const known = Object.keys((route.query?.properties ?? {}) as Record<string, unknown>);
      const unknown = Object.keys(rawQuery).find((k) => !known.includes(k));
      if (unknown !== undefined)
        throw new ValidationError(unknown, `is not a parameter of this endpoint (it takes ${known.length ? known.join(', ') : 'none'})`);
    }
    const query: Record<string, unknown> = route.query ? validateQuery(route.query, rawQuery) : {};
    const ctx: Ctx = {
      reqId: r.reqId,
      method: r.method as Method,
      path: r.path,
      params,
      query,
      headers: r.headers,
      cookies,
      body,
      ip: r.ip,
      log,
      user: user as AuthUser,
      key: key as ApiKey,
    };
    return route.handle(ctx);
  }

  private async authenticateKey(scope: ApiScope, authz: string | undefined): Promise<ApiKey> {
    const m = authz === undefined ? null : /^Bearer (sbk_[A-Za-z0-9_-]{43})$/.exec(authz);
    if (!m) throw new SbError('UNAUTHENTICATED', 'the server API takes an API key: "Authorization: Bearer sbk_..."');
    const key = await this.opts.verifyApiKey(m[1] as string);
    if (!key) throw new SbError('UNAUTHENTICATED', 'unknown or revoked API key');
    if (!key.scopes.includes(scope)) throw new SbError('FORBIDDEN', `this API key lacks the ${scope} scope`, { scope });
    return key;
  }

  private async authenticate(method: string, headers: Record<string, string>, cookies: Record<string, string>): Promise<AuthUser> {
    const authz = headers.authorization;
    if (authz !== undefined) {
      const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authz);
      if (!m) throw new SbError('UNAUTHENTICATED', 'Authorization must be "Bearer <access token>"');
      const c = await this.opts.verifyAccess(m[1] as string);
      if (c.use === 'ws') throw new SbError('TOKEN_INVALID', 'a socket token opens a WebSocket only: the API takes an access token');
      return { id: c.sub, username: c.username, admin: c.admin, via: 'bearer', sessionId: c.sid };
    }
    const cookie = cookies[COOKIE_ACCESS];
    if (cookie === undefined) throw new SbError('UNAUTHENTICATED', 'authentication required');
    const c = await this.opts.verifyAccess(cookie);
    if (c.use === 'ws') throw new SbError('TOKEN_INVALID', 'a socket token opens a WebSocket only');
    if (!SAFE_METHODS.has(method)) {
      const sent = headers['x-csrf-token'];
      if (!sent || !c.csrf || hashCsrf(sent) !== c.csrf) throw new SbError('CSRF', 'missing or wrong X-CSRF-Token header');
    }
    return { id: c.sub, username: c.username, admin: c.admin, via: 'cookie', sessionId: c.sid };
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } {
    const segs = path.split('/');
    const allowed: string[] = [];
    for (const c of this.routes) {
      const params = matchSegments(c.segments, segs);
      if (!params) continue;
      if (c.route.method !== method) {
        allowed.push(c.route.method);
        continue;
      }
      for (const p of c.route.uuidParams ?? []) {
        if (!UUID_RE.test(params[p] ?? '')) throw new SbError('NOT_FOUND', `${p}: no such resource (ids are UUIDs)`);
      }
      return { route: c.route, params };
    }
    if (allowed.length) throw new SbError('METHOD_NOT_ALLOWED', `${method} is not allowed here`, { allow: allowed });
    throw new SbError('NOT_FOUND', `no route for ${method} ${path.slice(0, 200)}`);
  }

  private preflight(path: string, headers: Record<string, string>, cors: Record<string, string>): Reply {
    const segs = path.split('/');
    const methods = this.routes.filter((c) => matchSegments(c.segments, segs)).map((c) => c.route.method);
    if (!methods.length) throw new SbError('NOT_FOUND', 'no such route');
    const out: Record<string, string> = { allow: [...methods, 'OPTIONS'].join(', ') };
    if (cors['access-control-allow-origin'] && headers['access-control-request-method']) {
      out['access-control-allow-methods'] = out.allow as string;
      out['access-control-allow-headers'] = 'authorization, content-type, x-csrf-token';
      out['access-control-max-age'] = '600';
    }
    return { status: 204, headers: out };
  }

  private corsHeaders(origin: string | undefined): Record<string, string> {
    const allowed = this.opts.corsOrigins;
    if (!origin || allowed.length === 0) return {};
    if (allowed.includes(origin)) {
      return {
        'access-control-allow-origin': origin,
        'access-control-allow-credentials': 'true',
        'access-control-expose-headers': 'retry-after, x-request-id',
        vary: 'Origin',
      };
    }
    if (allowed.includes('*')) return { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'retry-after, x-request-id' };
    return { vary: 'Origin' };
  }

  private errorReply(e: unknown, log: Logger, reqId: string): Reply {
    // The actor runtime's refusals (overload, timeouts) and the store's outage are SbErrors too:
    // their status and Retry-After come from the error, as over WebSocket their code does.
    if (e instanceof SbError) {
      const headers: Record<string, string> = {};
      if (e.retryAfterS !== undefined) headers['retry-after'] = String(e.retryAfterS);
      if (e.code === 'METHOD_NOT_ALLOWED') headers.allow = ((e.details?.allow as string[]) ?? []).join(', ');
      if (e.code === 'RANGE_NOT_SATISFIABLE') headers['content-range'] = `bytes */${e.details?.size}`;
      // Shed load is counted, not logged per request: a log line each would add to the overload.
      if (e.status >= 500 && e.code !== 'OVERLOADED') log.error({ err: e }, 'request failed');
      return { status: e.status, headers, body: errorBody(e) };
    }
    // Nobody is left to answer (the send finds the request aborted): not an error of the hub.
    if (e instanceof ClientGoneError) return { status: 499 };
    log.error({ err: e }, 'request failed');
    return { status: 500, body: errorBody(new SbError('INTERNAL', `internal error (request ${reqId})`)) };
  }

  /** Whether the request to `path` goes to a route that reads its body as it arrives. */
  private streamsBody(method: string, path: string): boolean {
    try {
      return this.match(method, path).route.streamBody === true;
    } catch {
      return false;
    }
  }

  private async send(res: HttpResponse, state: ReqState, status: number, headers: Record<string, string>, reply: Reply, unread: boolean): Promise<void> {
    if (state.aborted || state.done) return;
    state.done = true;
    if (reply.stream) {
      const { length, chunks } = reply.stream;
      res.cork(() => {
        res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`);
        res.writeHeader('x-content-type-options', 'nosniff');
        for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
      });
      return writeBody(res, state, length, chunks);
    }
    let payload: string | Uint8Array = '';
    let type: string | undefined;
    if (reply.raw) {
      payload = reply.raw.data;
      type = reply.raw.contentType;
    } else if (reply.body !== undefined && status !== 204) {
      payload = JSON.stringify(reply.body);
      type = 'application/json; charset=utf-8';
    }
    res.cork(() => {
      res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`);
      if (type) res.writeHeader('content-type', type);
      res.writeHeader('x-content-type-options', 'nosniff');
      // A route's own Cache-Control (the JWKS) replaces the default: two headers would mean no-store.
      if (!reply.raw && headers['cache-control'] === undefined) res.writeHeader('cache-control', 'no-store');
      for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
      for (const c of reply.cookies ?? []) res.writeHeader('set-cookie', c);
      // After a 413 the rest of the body is still on the wire: close rather than parse it as a request.
      const close = this.draining || status === 413 || unread;
      // A 304 has no body and must not claim a length of 0 (RFC 9110 §8.6). No arguments: this
      // build writes an undefined length as 2^63.
      if (status === 304) res.endWithoutBody();
      else res.end(payload, close);
    });
  }

  private clientIp(res: HttpResponse, headers: Record<string, string>): string {
    if (this.opts.trustProxy) {
      const fwd = headers['x-forwarded-for']?.split(',').pop()?.trim();
      if (fwd) return fwd;
    }
    return Buffer.from(res.getRemoteAddressAsText()).toString();
  }
}

export const COOKIE_ACCESS = 'sb_access';
export const COOKIE_REFRESH = 'sb_refresh';
export const COOKIE_CSRF = 'sb_csrf';

function matchSegments(pattern: string[], segs: string[]): Record<string, string> | undefined {
  if (pattern.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segs[i] as string;
    if (p.startsWith(':')) {
      if (s === '') return undefined;
      try {
        params[p.slice(1)] = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    } else if (p !== s) return undefined;
  }
  return params;
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k && !(k in out)) out[k] = v;
  }
  return out;
}

function tooLarge(max: number): SbError {
  return new SbError('PAYLOAD_TOO_LARGE', `request body exceeds ${max} bytes`, { limit: max });
}
