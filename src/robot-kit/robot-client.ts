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

export interface RobotClientEvents {
  command: (c: CommandFrame) => void;
  estop: (commandId: string) => void;
  hubError: (e: { code: string; message: string; ref: string | null }) => void;
  close: () => void;
}

export class RobotClient extends Emitter<RobotClientEvents> {
  robotId = '';
  heartbeatMs = 0;
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
