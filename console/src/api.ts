// The REST API as the console uses it: a cookie session (HttpOnly cookies set by the hub), the
// CSRF token from the readable `sb_csrf` cookie on every state-changing request, and one refresh
// of the session when the access cookie has expired. Errors carry the hub's code and message.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Called when the session is gone for good (refresh refused): the console shows the login. */
let onSignedOut: () => void = () => {};
export function whenSignedOut(f: () => void): void {
  onSignedOut = f;
}

function csrf(): string {
  const m = /(?:^|;\s*)sb_csrf=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1] as string) : '';
}

async function send(method: string, path: string, body: unknown, raw?: Blob, query?: Record<string, string>): Promise<Response> {
  const headers: Record<string, string> = {};
  if (method !== 'GET') headers['x-csrf-token'] = csrf();
  let payload: BodyInit | undefined;
  if (raw) {
    headers['content-type'] = raw.type || 'application/octet-stream';
    payload = raw;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const qs = query ? `?${new URLSearchParams(query)}` : '';
  return fetch(`/api/v1${path}${qs}`, { method, headers, body: payload, credentials: 'same-origin' });
}

async function failure(res: Response): Promise<ApiError> {
  const j = (await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined;
  return new ApiError(res.status, j?.error?.code ?? 'HTTP_ERROR', j?.error?.message ?? `${res.status} ${res.statusText}`, j?.error?.details);
}

/** How a refresh ended: a fresh session, the session gone for good, or no answer worth believing. */
export type Renewal = 'ok' | 'gone' | 'failed';

let refreshing: Promise<Renewal> | undefined;

async function renew(): Promise<Renewal> {
  // The tabs of a browser share the cookies: one of them may have refreshed while this one waited
  // for the lock, and spending the same refresh token twice would end the session (reuse = theft).
  const probe = await send('GET', '/auth/me', undefined).catch(() => undefined);
  if (probe?.ok) return 'ok';
  const r = await send('POST', '/auth/refresh', undefined).catch(() => undefined);
  if (r?.ok) return 'ok';
  return r && (r.status === 401 || r.status === 403) ? 'gone' : 'failed';
}

/** Rotates the cookie session, once at a time across the browser's tabs (a Web Lock). */
export function refreshSession(): Promise<Renewal> {
  if (!refreshing) {
    // The DOM's types say request() resolves with the callback's promise; it resolves with its value.
    const locked = (navigator.locks ? navigator.locks.request('switchboard-refresh', renew) : renew()) as unknown as Promise<Renewal>;
    refreshing = locked.finally(() => {
      refreshing = undefined;
    });
  }
  return refreshing;
}

export interface CallOptions {
  query?: Record<string, string>;
  /** The body is this file, sent as it is (uploads). */
  file?: Blob;
}

/**
 * Calls the API; resolves with the JSON reply (undefined for 204), or rejects with an ApiError. A
 * 401 refreshes the session and tries once more; only a refresh the hub refuses signs the person
 * out (an unreachable hub does not).
 */
export async function api<T = any>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  let res = await send(method, path, body, opts.file, opts.query);
  if (res.status === 401 && !path.startsWith('/auth/refresh') && !path.startsWith('/auth/login') && !path.startsWith('/auth/code/login')) {
    const renewal = await refreshSession();
    if (renewal === 'gone') onSignedOut();
    if (renewal === 'failed') throw new ApiError(503, 'UNAVAILABLE', 'The hub did not answer: try again in a moment.');
    if (renewal === 'ok') res = await send(method, path, body, opts.file, opts.query);
  }
  if (!res.ok) throw await failure(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}
