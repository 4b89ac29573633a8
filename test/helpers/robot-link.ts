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
import { DEFAULT_MS, FrameInbox } from './inbox.js';

export interface RawLinkOptions {
  port: number;
  /** The CA the hub's server certificate chains to. */
  ca: string;
  /** The robot's certificate and key; omitted: no client certificate at all. */
  cert?: string;
  key?: string;
  /** Highest TLS version to offer (default: Node's, TLS 1.3). */
  maxVersion?: tls.SecureVersion;
}

/** How the link ended: the TLS or socket error, if any. */
export interface LinkEnd {
  error: NodeJS.ErrnoException | undefined;
}

export class RawRobotLink extends FrameInbox<HubFrame> {
  readonly ended: Promise<LinkEnd>;
  endInfo: LinkEnd | undefined;
  error: NodeJS.ErrnoException | undefined;
  private readonly reader = new FrameReader(16_777_216);
  /** Answer every HEARTBEAT from the hub with one. */
  answerHeartbeats = false;

  private constructor(readonly socket: tls.TLSSocket) {
    super();
    socket.on('data', (chunk: Buffer) => {
      for (const body of this.reader.push(chunk)) {
        const f = parseHubFrame(body);
        this.receive(f);
        if (f.tag === Tag.HEARTBEAT && this.answerHeartbeats) this.send({ tag: Tag.HEARTBEAT });
      }
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
      const socket = tls.connect({ host: '127.0.0.1', port: o.port, ca: o.ca, cert: o.cert, key: o.key, servername: 'localhost', maxVersion: o.maxVersion });
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

  /** The next ERROR frame (consumed). */
  async nextError(what = 'an ERROR frame', ms = DEFAULT_MS): Promise<Extract<HubFrame, { tag: typeof Tag.ERROR }>> {
    return (await this.next((f) => f.tag === Tag.ERROR, what, ms)) as Extract<HubFrame, { tag: typeof Tag.ERROR }>;
  }

  protected endReason(): string | undefined {
    return this.endInfo && `link closed (${this.endInfo.error?.code ?? 'no error'})`;
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
