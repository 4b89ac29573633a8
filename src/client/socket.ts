// What the client needs from a WebSocket: the browser's WebSocket and the `ws` package both fit.
// The token travels as `?token=` because browsers cannot set headers on a WebSocket upgrade.

/** The part of the WebSocket API the client uses (browser WebSocket, or the `ws` package on Node). */
export interface WebSocketLike {
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` on Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The endpoint URL with the access token as `?token=` (http(s) URLs become ws(s); relative ones resolve against the page). */
export function socketUrl(base: string, token: string): string {
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  const u = new URL(base, page);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  // Checked here, before the token is in the URL: a WebSocket constructor's error would quote it.
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`url: expected ws:, wss:, http: or https:, got ${u.protocol}`);
  u.searchParams.set('token', token);
  return u.toString();
}

/** A received message's data as the codec takes it. */
export function toBytes(data: unknown): Uint8Array | string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('unexpected WebSocket message data (set binaryType to "arraybuffer")');
}

/**
 * Whether an `error` event reports an upgrade refused with 401. Only the `ws` package says so
 * ("Unexpected server response: 401"); browsers hide the status, and the close (1006) then counts
 * as a network failure, retried with a fresh token from the token function.
 */
export function isUnauthorizedUpgrade(ev: unknown): boolean {
  const e = ev as { message?: unknown; error?: { message?: unknown } } | null;
  const message = e?.message ?? e?.error?.message;
  return typeof message === 'string' && /server response: 401\b/.test(message);
}

/** Whether encoded frame data is over `limit` bytes (strings count as UTF-8, encoded only when it matters). */
export function overLimit(data: string | Uint8Array, limit: number): boolean {
  if (typeof data !== 'string') return data.byteLength > limit;
  return data.length * 3 > limit && new TextEncoder().encode(data).byteLength > limit;
}
