// A raw robot link for protocol tests: a TLS socket to the robot endpoint that writes whatever bytes
// a test gives it (no HELLO of its own, no heartbeats unless asked) and keeps every frame the hub
// sends. `next` consumes the first unconsumed frame matching a predicate, waiting up to a deadline,
// so tests wait on events and never sleep. Also: the hub-side events a test needs to know that
// something happened on the server (a handshake refused, a server-side socket closed).

import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Hub } from '../../src/hub.js';
import {
  type Channel,
  encodeRobotFrame,
  FrameReader,
  type HubFrame,
  parseHubFrame,
  ROBOT_PROTOCOL_VERSION,
  type RobotFrame,
  Tag,
} from '../../src/protocol/robot.js';

const DEFAULT_MS = 10_000;

export interface RawLinkOptions {
  port: number;
  /** The CA the hub's server certificate chains to. */
  ca: string;
  /** The robot's certificate and key; omitted: no client certificate at all. */
  cert?: string;
  key?: string;
}

/** How the link ended: the TLS or socket error, if any. */
export interface LinkEnd {
  error: NodeJS.ErrnoException | undefined;
}

export class RawRobotLink {
  /** Every frame the hub sent, in order. */
  readonly frames: HubFrame[] = [];
  readonly ended: Promise<LinkEnd>;
  endInfo: LinkEnd | undefined;
  error: NodeJS.ErrnoException | undefined;
  private readonly consumed = new Set<HubFrame>();
  private readonly waiters = new Set<() => void>();
  private readonly reader = new FrameReader(16_777_216);
  /** Answer every HEARTBEAT from the hub with one. */
  answerHeartbeats = false;

  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      for (const body of this.reader.push(chunk)) {
        const f = parseHubFrame(body);
        this.frames.push(f);
        if (f.tag === Tag.HEARTBEAT && this.answerHeartbeats) this.send({ tag: Tag.HEARTBEAT });
      }
      this.wake();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error ??= e;
    });
    this.ended = new Promise((resolve) => {
      socket.on('close', () => {
        this.endInfo = { error: this.error };
        resolve(this.endInfo);
        this.wake();
      });
    });
  }

  /**
   * Opens the TLS connection; resolves once the client's side of the handshake is done. With TLS
   * 1.3 that is before the hub has checked the client certificate: a refusal shows up afterwards
   * as an error and a close (`ended`).
   */
  static open(o: RawLinkOptions, ms = DEFAULT_MS): Promise<RawRobotLink> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: o.port, ca: o.ca, cert: o.cert, key: o.key, servername: 'localhost' });
      socket.setNoDelay(true);
      const link = new RawRobotLink(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no TLS handshake within ${ms} ms`));
      }, ms);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(link);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(Object.assign(new Error(`closed during the handshake: ${link.error?.code ?? link.error?.message}`), { cause: link.error }));
      });
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(f: RobotFrame): void {
    this.write(encodeRobotFrame(f));
  }

  /** Sends HELLO and resolves with the WELCOME. */
  async hello(channels: Channel[]): Promise<Extract<HubFrame, { tag: typeof Tag.WELCOME }>> {
    this.send({ tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels });
    const w = await this.next((f) => f.tag === Tag.WELCOME, 'WELCOME');
    return w as Extract<HubFrame, { tag: typeof Tag.WELCOME }>;
  }

  /** The first unconsumed frame matching `pred` (consumed now); rejects after `ms` or once the link closed without it. */
  next(pred: (f: HubFrame) => boolean, what: string, ms = DEFAULT_MS): Promise<HubFrame> {
    return this.take(pred, 1, what, ms).then((fs) => fs[0] as HubFrame);
  }

  /** The next ERROR frame (consumed). */
  async nextError(what = 'an ERROR frame', ms = DEFAULT_MS): Promise<Extract<HubFrame, { tag: typeof Tag.ERROR }>> {
    return (await this.next((f) => f.tag === Tag.ERROR, what, ms)) as Extract<HubFrame, { tag: typeof Tag.ERROR }>;
  }

  /** The first `n` unconsumed frames matching `pred`, in arrival order (consumed once all are there). */
  take(pred: (f: HubFrame) => boolean, n: number, what: string, ms = DEFAULT_MS): Promise<HubFrame[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}; last frames: ${this.tail()}`)), ms);
      const check = () => {
        const hits: HubFrame[] = [];
        for (const f of this.frames) {
          if (!this.consumed.has(f) && pred(f)) hits.push(f);
          if (hits.length === n) break;
        }
        if (hits.length === n) {
          for (const f of hits) this.consumed.add(f);
          return done(undefined, hits);
        }
        if (this.endInfo) done(new Error(`link closed (${this.endInfo.error?.code ?? 'no error'}) before ${what}; last frames: ${this.tail()}`));
      };
      const done = (e?: Error, hits?: HubFrame[]) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        e ? reject(e) : resolve(hits as HubFrame[]);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once the link has closed, or rejects after `ms`. */
  waitClose(ms = DEFAULT_MS): Promise<LinkEnd> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`link still open after ${ms} ms; last frames: ${this.tail()}`)), ms);
      this.ended.then((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private tail(): string {
    return JSON.stringify(this.frames.slice(-5)).slice(0, 600);
  }
}

/**
 * The hub's robot TLS server. RobotListener keeps it private; the tests listen to its events to know
 * when the hub has acted (a handshake refused, a link's socket closed on the hub's side).
 */
function tlsServer(hub: Hub): tls.Server {
  const server = (hub.robots as unknown as { server?: unknown } | undefined)?.server;
  if (!(server instanceof tls.Server)) throw new Error('the robot endpoint has no TLS server (RobotListener changed?)');
  return server;
}

/** Resolves with the next handshake the hub refuses (after `refusals.handshake` counted it). */
export function nextHandshakeRefusal(hub: Hub, ms = DEFAULT_MS): Promise<{ error: NodeJS.ErrnoException; socket: Socket }> {
  const server = tlsServer(hub);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      server.off('tlsClientError', on);
      reject(new Error(`no refused handshake within ${ms} ms`));
    }, ms);
    const on = (error: Error, socket: Socket) => {
      clearTimeout(timer);
      resolve({ error: error as NodeJS.ErrnoException, socket });
    };
    server.once('tlsClientError', on);
  });
}

/**
 * The hub's side of the next link that completes a handshake. `closed` resolves after every 'close'
 * listener of that socket ran, so by then the hub has told the robot's actor the link is gone.
 */
export function nextServerLink(hub: Hub, ms = DEFAULT_MS): Promise<{ socket: tls.TLSSocket; closed: Promise<void> }> {
  const server = tlsServer(hub);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      server.off('secureConnection', on);
      reject(new Error(`no robot link within ${ms} ms`));
    }, ms);
    const on = (socket: tls.TLSSocket) => {
      clearTimeout(timer);
      // Listeners added now run after the hub's own (added when it accepted or authenticated the
      // link); resolving in a later microtask puts the waiter after every listener of the emit.
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      resolve({ socket, closed });
    };
    server.once('secureConnection', on);
  });
}
