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

let refreshing: Promise<boolean> | undefined;
/** Rotates the cookie session once for any number of callers; false when it is over. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= send('POST', '/auth/refresh', undefined)
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => {
      refreshing = undefined;
    });
  return refreshing;
}

export interface CallOptions {
  query?: Record<string, string>;
  /** The body is this file, sent as it is (uploads). */
  file?: Blob;
}

/** Calls the API; resolves with the JSON reply (undefined for 204), or rejects with an ApiError. */
export async function api<T = any>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  let res = await send(method, path, body, opts.file, opts.query);
  if (res.status === 401 && !path.startsWith('/auth/refresh') && !path.startsWith('/auth/login')) {
    if (await refreshSession()) res = await send(method, path, body, opts.file, opts.query);
    if (res.status === 401) onSignedOut();
  }
  if (!res.ok) throw await failure(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}
