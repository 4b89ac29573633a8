// Foxglove's own protocol client (`@foxglove/ws-protocol`) over a `ws` socket, for tests: every
// event it emits is kept, so a test waits on them with deadlines (FrameInbox).

import foxgloveProtocol from '@foxglove/ws-protocol';
import type { Test } from 'tap';
import WebSocket from 'ws';
import { FrameInbox } from './inbox.js';

// The package is CommonJS: its named exports come through the default one.
export const { FoxgloveClient } = foxgloveProtocol;
export type FoxgloveClient = InstanceType<typeof FoxgloveClient>;

export type Ev =
  | { kind: 'serverInfo'; name: string; metadata?: Record<string, string> }
  | { kind: 'status'; level: number; message: string }
  | { kind: 'advertise'; channels: { id: number; topic: string; encoding: string; schemaName: string; schema: string; schemaEncoding?: string }[] }
  | { kind: 'unadvertise'; ids: number[] }
  | { kind: 'message'; sub: number; ts: bigint; bytes: Buffer }
  | { kind: 'close'; code: number; reason: string };

/** Foxglove's client over a `ws` socket, every event kept for `next`. */
export class Foxglove extends FrameInbox<Ev> {
  readonly client: FoxgloveClient;
  closed: { code: number; reason: string } | undefined;
  constructor(readonly ws: WebSocket) {
    super();
    this.client = new FoxgloveClient({ ws: ws as never });
    const c = this.client;
    c.on('serverInfo', (e) => this.receive({ kind: 'serverInfo', name: e.name, ...(e.metadata ? { metadata: e.metadata } : {}) }));
    c.on('status', (e) => this.receive({ kind: 'status', level: e.level, message: e.message }));
    c.on('advertise', (channels) => this.receive({ kind: 'advertise', channels: channels as never }));
    c.on('unadvertise', (ids) => this.receive({ kind: 'unadvertise', ids }));
    c.on('message', (e) =>
      this.receive({ kind: 'message', sub: e.subscriptionId, ts: e.timestamp, bytes: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) }),
    );
    c.on('error', () => {});
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.receive({ kind: 'close', code, reason: reason.toString() });
    });
  }
  protected endReason(): string | undefined {
    return this.closed && `the socket closed (${this.closed.code} ${this.closed.reason})`;
  }
  /** The advertised channel with this topic, from the advertisements so far. */
  channel(topic: string): number {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const e = this.frames[i] as Ev;
      if (e.kind === 'advertise') for (const c of e.channels) if (c.topic === topic) return c.id;
    }
    throw new Error(`no channel ${topic} advertised`);
  }
}

/** Opens `robot` on the node at `httpUrl` with Foxglove's client; resolves after serverInfo. */
export function openFoxglove(t: Test, httpUrl: string, token: string, robot: string): Promise<Foxglove> {
  return openFoxgloveUrl(t, `${httpUrl.replace(/^http/, 'ws')}/foxglove?robot=${robot}&token=${token}`);
}

/** Opens a Foxglove WebSocket URL (as Foxglove's "ds.url"); resolves after serverInfo. */
export async function openFoxgloveUrl(t: Test, url: string): Promise<Foxglove> {
  const ws = new WebSocket(url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]);
  const f = new Foxglove(ws);
  t.teardown(() => ws.terminate());
  await f.next((e) => e.kind === 'serverInfo', 'serverInfo');
  return f;
}

/** A message's payload, read as JSON. */
export const json = (e: Ev) => JSON.parse((e as Extract<Ev, { kind: 'message' }>).bytes.toString('utf8'));
