// A raw sb.v1 WebSocket client for protocol tests: it speaks frames as plain maps over the `ws`
// package (MessagePack via msgpackr without records, or JSON text), independent of any SDK. Every
// received frame is kept; `next` consumes the first unconsumed frame matching a predicate, waiting
// for it up to a deadline, so tests wait on events and never sleep.

import { Packr } from 'msgpackr';
import type { Test } from 'tap';
import WebSocket from 'ws';
import { DEFAULT_MS, FrameInbox } from './inbox.js';

export type Encoding = 'msgpack' | 'json';
export const ENCODINGS: Encoding[] = ['msgpack', 'json'];
export const SUBPROTOCOL: Record<Encoding, string> = { msgpack: 'sb.v1.msgpack', json: 'sb.v1.json' };

/** A decoded frame. Frames the client could not decode are kept as `{ t: '!undecodable' }`. */
export type Frame = Record<string, any> & { t: string };
export type Pred = (f: Frame) => boolean;

// Timestamps arrive as 64-bit integers; read them as JS numbers (they are below 2^53).
const packr = new Packr({ useRecords: false, int64AsType: 'number' });
export const pack = (v: unknown): Buffer => packr.pack(v);
export const unpack = (b: Uint8Array): any => packr.unpack(b);

export interface ConnectOptions {
  encoding?: Encoding;
  /** Sent as `Authorization: Bearer`. */
  token?: string;
  /** Sent as `?token=`. */
  queryToken?: string;
  /** A raw Cookie header. */
  cookie?: string;
  origin?: string;
  /** The subprotocols offered; default: the encoding's one. `[]` offers none. */
  protocols?: string[];
  /** PEM of the CA to trust for a wss:// URL (e.g. a test proxy's throwaway certificate). */
  ca?: string;
  /** Extra request headers (e.g. X-Forwarded-For). */
  headers?: Record<string, string>;
}

export interface Closed {
  code: number;
  reason: string;
}

function wsUrl(httpUrl: string, opts: ConnectOptions): string {
  const u = new URL('/ws', httpUrl.replace(/^http/, 'ws'));
  if (opts.queryToken !== undefined) u.searchParams.set('token', opts.queryToken);
  return u.toString();
}

function open(httpUrl: string, opts: ConnectOptions): WebSocket {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie !== undefined) headers.cookie = opts.cookie;
  if (opts.origin !== undefined) headers.origin = opts.origin;
  const protocols = opts.protocols ?? [SUBPROTOCOL[opts.encoding ?? 'msgpack']];
  return new WebSocket(wsUrl(httpUrl, opts), protocols, { headers, ...(opts.ca ? { ca: opts.ca } : {}) });
}

export class RawClient extends FrameInbox<Frame> {
  readonly closed: Promise<Closed>;
  closeInfo: Closed | undefined;
  private lastId = 0;

  constructor(
    readonly ws: WebSocket,
    readonly encoding: Encoding,
  ) {
    super();
    ws.on('message', (data: Buffer, isBinary: boolean) => this.receive(this.decode(data, isBinary)));
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    // Surfaced as a close (1006), with what the client library saw (an invalid frame, a reset).
    ws.on('error', (e) => {
      this.clientError ??= e.message;
    });
  }

  /** The client library's first error on this socket, if any. */
  clientError: string | undefined;

  /** A fresh request id. */
  id(): number {
    return ++this.lastId;
  }

  /** Sends a frame encoded for this connection. */
  send(frame: Record<string, unknown>): void {
    this.sendRaw(this.encoding === 'msgpack' ? pack(frame) : JSON.stringify(frame));
  }

  /** Sends bytes as a binary frame, a string as a text frame, as they are. */
  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data, { binary: typeof data !== 'string' });
  }

  /** Sends a request with a fresh id and resolves with the reply carrying that id. */
  async request(frame: Record<string, unknown>, ms?: number): Promise<Frame> {
    const id = this.id();
    this.send({ ...frame, id });
    return this.next((f) => f.id === id && f.t !== 'msg', `reply to ${String(frame.t)} #${id}`, ms);
  }

  protected endReason(): string | undefined {
    return (
      this.closeInfo && `socket closed (${this.closeInfo.code} ${this.closeInfo.reason})${this.clientError ? ` after a client error: ${this.clientError}` : ''}`
    );
  }

  /** Every received frame of type `t` (consumed or not). */
  all(t: string): Frame[] {
    return this.frames.filter((f) => f.t === t);
  }

  /**
   * A round trip (ping → pong): every frame the server sent this socket before answering the ping
   * has arrived once this resolves.
   */
  async barrier(): Promise<void> {
    const pong = await this.request({ t: 'ping' });
    if (pong.t !== 'pong') throw new Error(`expected pong, got ${JSON.stringify(pong)}`);
  }

  /** Resolves with the close code and reason, or rejects after `ms`. */
  waitClose(ms = DEFAULT_MS): Promise<Closed> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms; last frames: ${this.tail()}`)), ms);
      this.closed.then((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  /** Closes from the client side and waits for the close to complete. */
  async close(): Promise<Closed> {
    if (!this.closeInfo) this.ws.close(1000);
    return this.waitClose();
  }

  private decode(data: Buffer, isBinary: boolean): Frame {
    try {
      if (isBinary !== (this.encoding === 'msgpack')) return { t: '!undecodable', reason: `${isBinary ? 'binary' : 'text'} frame on ${this.encoding}` };
      const v = this.encoding === 'msgpack' ? unpack(data) : JSON.parse(data.toString('utf8'));
      return v && typeof v === 'object' && typeof v.t === 'string' ? v : { t: '!undecodable', value: v };
    } catch (e) {
      return { t: '!undecodable', reason: (e as Error).message };
    }
  }
}

/** Opens a socket and resolves once `hello` has arrived (the first frame); rejects if refused. */
export async function connect(httpUrl: string, opts: ConnectOptions = {}, ms = DEFAULT_MS): Promise<RawClient & { hello: Frame }> {
  const ws = open(httpUrl, opts);
  const client = new RawClient(ws, opts.encoding ?? 'msgpack');
  const refused = new Promise<never>((_, reject) => {
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  const hello = await Promise.race([client.next((f) => f.t === 'hello', 'hello', ms), refused]);
  if (client.frames[0] !== hello) throw new Error(`hello was not the first frame: ${JSON.stringify(client.frames[0])}`);
  return Object.assign(client, { hello });
}

/**
 * Attempts an upgrade expected to be refused: resolves with the HTTP status and JSON body.
 * Rejects if the socket opens instead.
 */
export function refusedUpgrade(httpUrl: string, opts: ConnectOptions = {}, ms = DEFAULT_MS): Promise<{ status: number; body: any }> {
  const ws = open(httpUrl, opts);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to the upgrade within ${ms} ms`)), ms);
    ws.on('error', () => {});
    ws.once('open', () => {
      clearTimeout(timer);
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString('utf8');
      });
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
  });
}

/** Opens a socket for the test (terminated at teardown) and resolves once `hello` has arrived. */
export async function openFor(t: Test, url: string, token: string, opts: ConnectOptions = {}): Promise<RawClient & { hello: Frame }> {
  const c = await connect(url, { token, ...opts });
  t.teardown(() => c.ws.terminate());
  return c;
}

/** Subscribes to a room (from `since`, when given) and waits for `subscribed`. */
export async function subscribe(c: RawClient, room: string, since?: number): Promise<Frame> {
  const f = await c.request({ t: 'sub', room, ...(since === undefined ? {} : { since }) });
  if (f.t !== 'subscribed') throw new Error(`sub: ${JSON.stringify(f)}`);
  return f;
}
