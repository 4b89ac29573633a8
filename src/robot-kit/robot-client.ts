// The robot's side of the robot protocol, for Node: connects to the robot endpoint with the robot's
// certificate, says HELLO, sends telemetry and command statuses, keeps the link alive with
// heartbeats, and reports the hub's frames as events. `switchboard robot-sim`, the tests and the
// telemetry bench drive robots through it; it is also a reference for robot firmware authors.

import tls from 'node:tls';
import { Emitter } from '../client/emitter.js';
import { type Channel, encodeRobotFrame, FrameReader, type HubFrame, parseHubFrame, ROBOT_PROTOCOL_VERSION, type RobotStage, Tag } from '../protocol/robot.js';

export interface RobotClientOptions {
  host: string;
  port: number;
  /** PEM: the robot's certificate and key, and the CA that signed the hub's server certificate. */
  cert: string;
  key: string;
  ca: string;
  /** The name the hub's certificate must carry (default `localhost`). */
  servername?: string;
  channels: Channel[];
  /** Largest frame accepted from the hub (default 16 MiB). */
  maxFrameBytes?: number;
}

export type CommandFrame = Extract<HubFrame, { tag: typeof Tag.COMMAND }>;

/**
 * Refusals that retrying with the same certificate cannot change (docs/protocol.md, "Refusals"):
 * a robot stops reconnecting and reports, instead of backing off forever.
 */
export const TERMINAL_REFUSALS: ReadonlySet<string> = new Set([
  'CERTIFICATE_REQUIRED',
  'CERTIFICATE_UNTRUSTED',
  'CERTIFICATE_EXPIRED',
  // Passes only once the robot's clock (or certificate) is fixed: not by waiting in a loop.
  'CERTIFICATE_NOT_YET_VALID',
  'CERTIFICATE_REVOKED',
  'UNKNOWN_CERTIFICATE',
]);

/** The hub refused the link or closed it before WELCOME; `code` is from its ERROR frame, or the TLS error's. */
export class RobotConnectError extends Error {
  /** Whether reconnecting with the same certificate is pointless (see TERMINAL_REFUSALS). */
  readonly terminal: boolean;

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RobotConnectError';
    this.terminal = TERMINAL_REFUSALS.has(code);
  }
}

/** The hub refused a RENEW (`code` from its ERROR frame), or the link closed first (`CLOSED`). */
export class RobotRenewError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RobotRenewError';
  }
}

export interface RobotClientEvents {
  command: (c: CommandFrame) => void;
  estop: (commandId: string) => void;
  hubError: (e: { code: string; message: string; ref: string | null }) => void;
  /** The hub stored every numbered sample of the channel up to `seq`. */
  ack: (channel: number, seq: number) => void;
  /** The hub answered RENEW with a new certificate. */
  certificate: (c: { certPem: string; caPem: string }) => void;
  close: () => void;
}

export class RobotClient extends Emitter<RobotClientEvents> {
  robotId = '';
  heartbeatMs = 0;
  /** From WELCOME: the last stored seq of each reliable channel (by id) that has stored samples. */
  lastStored = new Map<number, number>();
  /** The last ERROR frame the hub sent, if any. */
  lastError: { code: string; message: string } | undefined;
  private lastWrite = Date.now();
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly socket: tls.TLSSocket) {
    super();
  }

  /** Connects and says HELLO; resolves once the hub answers WELCOME. */
  static connect(o: RobotClientOptions): Promise<RobotClient> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: o.host, port: o.port, cert: o.cert, key: o.key, ca: o.ca, servername: o.servername ?? 'localhost' });
      const client = new RobotClient(socket);
      const reader = new FrameReader(o.maxFrameBytes ?? 16_777_216);
      let welcomed = false;
      const fail = (code: string, message: string) => {
        if (welcomed) return;
        welcomed = true; // settle once
        socket.destroy();
        reject(new RobotConnectError(code, message));
      };
      socket.setNoDelay(true);
      socket.once('secureConnect', () => client.write(encodeRobotFrame({ tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels: o.channels })));
      socket.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? 'TLS', e.message));
      socket.on('close', () => {
        clearInterval(client.timer);
        fail(client.lastError?.code ?? 'CLOSED', client.lastError?.message ?? 'the hub closed the link before WELCOME');
        client.emit('close');
      });
      socket.on('data', (chunk: Buffer) => {
        let frames: HubFrame[];
        try {
          frames = reader.push(chunk).map(parseHubFrame);
        } catch (e) {
          socket.destroy();
          return fail('BAD_FRAME', (e as Error).message);
        }
        for (const f of frames) {
          switch (f.tag) {
            case Tag.WELCOME:
              client.robotId = f.robotId;
              client.heartbeatMs = f.heartbeatMs;
              client.lastStored = new Map(f.lastStored ?? []);
              client.startHeartbeat();
              welcomed = true;
              resolve(client);
              break;
            case Tag.ERROR:
              client.lastError = { code: f.code, message: f.message };
              client.emit('hubError', { code: f.code, message: f.message, ref: f.ref });
              break;
            case Tag.COMMAND:
              client.emit('command', f);
              break;
            case Tag.ESTOP:
              client.emit('estop', f.command);
              break;
            case Tag.CERTIFICATE:
              client.emit('certificate', { certPem: f.certPem, caPem: f.caPem });
              break;
            case Tag.ACK:
              client.emit('ack', f.channel, f.seq);
              break;
            case Tag.HEARTBEAT:
              break;
          }
        }
      });
    });
  }

  get closed(): boolean {
    return this.socket.destroyed || !this.socket.writable;
  }

  /** Sends one telemetry sample; false when the socket's buffer is full (wait for 'drain' on a real robot). */
  telemetry(channel: number, payload: unknown, ts: number = Date.now()): boolean {
    return this.write(encodeRobotFrame({ tag: Tag.TELEMETRY, channel, ts, payload }));
  }

  /** Sends a numbered sample of a reliable channel: the hub stores it and answers with an `ack` (cumulative). */
  reliable(channel: number, seq: number, payload: unknown, ts: number = Date.now()): boolean {
    return this.write(encodeRobotFrame({ tag: Tag.TELEMETRY, channel, ts, payload, seq }));
  }

  /** Resolves once the socket's write buffer has drained (after telemetry() returned false). */
  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Reports a command's stage: accepted, then completed or failed with a result / error; or rejected. */
  status(command: string, stage: RobotStage, detail: unknown = null): boolean {
    return this.write(encodeRobotFrame({ tag: Tag.STATUS, command, stage, detail }));
  }

  /** Adds channels (or replaces those with the same id) after WELCOME; the hub's watchers get the new list. */
  advertise(channels: Channel[]): boolean {
    return this.write(encodeRobotFrame({ tag: Tag.ADVERTISE, channels }));
  }

  /** Withdraws channels by id: their telemetry is refused from now on. */
  withdraw(ids: number[]): boolean {
    return this.write(encodeRobotFrame({ tag: Tag.WITHDRAW, channels: ids }));
  }

  /**
   * Asks the hub, over this link and so with the current certificate, for a certificate for the
   * key of `csrDer` (a DER PKCS#10 request made with a new key on the robot). Resolves with it and
   * the CA's certificate; rejects with RobotRenewError: the hub's refusal (its ERROR with ref
   * "renew", e.g. RATE_LIMITED, CSR_KEY_UNSUPPORTED) or CLOSED. Keep using the current certificate
   * until the new one and its key are stored: the current one is revoked when the new one is first
   * used to connect.
   */
  renew(csrDer: Uint8Array): Promise<{ certPem: string; caPem: string }> {
    return new Promise((resolve, reject) => {
      const offs = [
        this.once('certificate', (c) => settle(() => resolve(c))),
        this.on('hubError', (e) => {
          if (e.ref === 'renew') settle(() => reject(new RobotRenewError(e.code, e.message)));
        }),
        this.once('close', () => settle(() => reject(new RobotRenewError('CLOSED', 'the link closed before the hub answered')))),
      ];
      const settle = (fn: () => void) => {
        for (const off of offs) off();
        fn();
      };
      this.write(encodeRobotFrame({ tag: Tag.RENEW, csr: csrDer }));
    });
  }

  /** Raw bytes, for tests of what the hub does with malformed frames. */
  write(bytes: Buffer): boolean {
    this.lastWrite = Date.now();
    return this.socket.write(bytes);
  }

  /** Closes the link (gracefully: the hub sees the robot go offline at once). */
  close(): Promise<void> {
    clearInterval(this.timer);
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  /** Drops the link without a goodbye, as a crashed robot or a cut cable would. */
  destroy(): void {
    clearInterval(this.timer);
    this.socket.destroy();
  }

  private startHeartbeat(): void {
    this.timer = setInterval(() => {
      if (Date.now() - this.lastWrite >= this.heartbeatMs) this.write(encodeRobotFrame({ tag: Tag.HEARTBEAT }));
    }, this.heartbeatMs);
    this.timer.unref();
  }
}
