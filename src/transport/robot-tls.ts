// The robot endpoint: a TLS listener that requires a client certificate chained to the robot CA
// (Node's TLS stack: the uWS build cannot require or expose client certificates). The handshake
// fails for a missing, foreign or expired certificate; after it, the certificate's fingerprint must
// name a registered, unrevoked certificate of the robot in its CN, or the link is refused before any
// of its frames is read. Then the robot says HELLO (its channels) and its frames go to its actor.
// This module knows the robot wire protocol and the link's limits, nothing of commands or watchers.

import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { RobotConnection } from '../actors/ports.js';
import type { Logger } from '../log.js';
import { type Channel, encodeHubFrame, FrameReader, type HubFrame, parseRobotFrame, type RobotFrame, RobotProtocolError, Tag } from '../protocol/robot.js';

/** Why a certificate that passed the handshake is still refused; the robot gets the code in an ERROR frame. */
export class RobotRefused extends Error {
  constructor(
    readonly code: 'UNKNOWN_CERTIFICATE' | 'CERTIFICATE_REVOKED' | 'UNAVAILABLE',
    message: string,
  ) {
    super(message);
    this.name = 'RobotRefused';
  }
}

/** What a robot's frames after HELLO go to. */
export interface RobotLinkHandler {
  onFrame(f: Exclude<RobotFrame, { tag: typeof Tag.HELLO | typeof Tag.HEARTBEAT }>): void;
  onClose(): void;
}

export interface RobotListenerOptions {
  host: string;
  port: number;
  /** PEM: the listener's own certificate chain and key, and the CA robot certificates must chain to. */
  cert: string;
  key: string;
  ca: string;
  maxFrameBytes: number;
  /** Each side sends a heartbeat after this long without sending anything; 3× without hearing anything closes the link. */
  heartbeatMs: number;
  /** Telemetry frames per second per robot (sustained; the burst is one second's worth). */
  telemetryPerSecond: number;
  /** Bytes queued towards one robot before the link is closed as too slow. */
  maxWriteBufferBytes: number;
  /** Bad frames tolerated before the link is closed. */
  maxViolations: number;
  log: Logger;
  /** Maps a verified certificate (SHA-256 of its DER, its subject CN) to its robot, or throws RobotRefused. */
  authenticate(fingerprint: Buffer, commonName: string): Promise<{ robotId: string }>;
  /** The robot said HELLO: attach it. WELCOME is sent once this resolves; if it rejects the link is refused with UNAVAILABLE. */
  connect(conn: RobotConnection, channels: Channel[]): Promise<RobotLinkHandler>;
}

const HELLO_TIMEOUT_MS = 10_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

class TlsRobotConnection implements RobotConnection {
  readonly id = randomBytes(8).toString('base64url');
  closed = false;
  lastRead = Date.now();
  lastWrite = Date.now();

  constructor(
    readonly socket: tls.TLSSocket,
    readonly robotId: string,
    readonly fingerprint: string,
    private readonly maxWriteBufferBytes: number,
  ) {}

  send(frame: HubFrame): boolean {
    if (this.closed) return false;
    this.socket.write(encodeHubFrame(frame));
    this.lastWrite = Date.now();
    if (this.socket.writableLength > this.maxWriteBufferBytes) {
      this.close('SLOW_CONSUMER', 'the robot is not reading its frames');
      return false;
    }
    return true;
  }

  close(code: string, message: string): void {
    if (this.closed) return;
    this.closed = true;
    endWithError(this.socket, code, message);
  }
}

/** Sends an ERROR frame, then ends the link; a peer that does not close its side is cut off shortly after. */
function endWithError(socket: tls.TLSSocket, code: string, message: string): void {
  if (socket.destroyed) return;
  socket.end(encodeHubFrame({ tag: Tag.ERROR, code, message, ref: null }));
  setTimeout(() => socket.destroy(), 2_000).unref();
}

export class RobotListener {
  private server: tls.Server | undefined;
  private readonly sockets = new Set<tls.TLSSocket>();
  /** Handshakes refused (no, foreign or expired certificate) and links refused after it. */
  readonly refusals = { handshake: 0, certificate: 0 };

  constructor(private readonly opts: RobotListenerOptions) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get connections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<void> {
    const o = this.opts;
    const server = tls.createServer({
      cert: o.cert,
      key: o.key,
      ca: o.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    server.on('secureConnection', (socket) => this.accept(socket));
    server.on('tlsClientError', (err, socket) => {
      this.refusals.handshake++;
      // The certificate check's verdict, when there was one, says more than the socket error it caused.
      const reason = (socket as tls.TLSSocket).authorizationError ?? (err as NodeJS.ErrnoException).code ?? err.message;
      o.log.info({ reason: String(reason), remote: socket.remoteAddress }, 'robot TLS handshake refused');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => o.log.error({ err: e }, 'robot listener error'));
    this.server = server;
  }

  /** Stops accepting and closes every robot link (their actors mark them offline). */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) endWithError(s, 'SHUTDOWN', 'the node is shutting down: reconnect');
    await closed;
  }

  private accept(socket: tls.TLSSocket): void {
    const o = this.opts;
    socket.setNoDelay(true);
    socket.pause(); // nothing the robot sends is read before its certificate is checked
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (e) => o.log.debug({ err: e }, 'robot socket error'));
    const peer = socket.getPeerCertificate();
    const fingerprint = Buffer.from((peer.fingerprint256 ?? '').replaceAll(':', ''), 'hex');
    const cn = typeof peer.subject?.CN === 'string' ? peer.subject.CN : '';
    o.authenticate(fingerprint, cn).then(
      ({ robotId }) => {
        if (socket.destroyed) return;
        this.run(new TlsRobotConnection(socket, robotId, fingerprint.toString('hex'), o.maxWriteBufferBytes));
      },
      (e: unknown) => {
        this.refusals.certificate++;
        const refused = e instanceof RobotRefused ? e : new RobotRefused('UNAVAILABLE', 'the hub cannot check certificates right now; retry later');
        if (!(e instanceof RobotRefused)) o.log.error({ err: e }, 'robot authentication failed');
        o.log.info({ code: refused.code, fingerprint: fingerprint.toString('hex'), remote: socket.remoteAddress }, 'robot refused');
        endWithError(socket, refused.code, refused.message);
      },
    );
  }

  /** The link's life after authentication: HELLO first, then frames to the handler, heartbeats both ways. */
  private run(conn: TlsRobotConnection): void {
    const o = this.opts;
    const { socket } = conn;
    const reader = new FrameReader(o.maxFrameBytes);
    let handler: RobotLinkHandler | undefined;
    let channels = new Set<number>();
    let violations = 0;
    let tokens = o.telemetryPerSecond;
    let refilled = Date.now();
    let lastLimitError = 0;
    const log = o.log.child({ robot: conn.robotId, link: conn.id });

    const helloTimer = setTimeout(() => conn.close('TIMEOUT', `send HELLO within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
    helloTimer.unref();
    const beat = setInterval(() => {
      const now = Date.now();
      if (now - conn.lastRead > 3 * o.heartbeatMs) conn.close('TIMEOUT', `nothing received for ${3 * o.heartbeatMs} ms`);
      else if (now - conn.lastWrite >= o.heartbeatMs) conn.send({ tag: Tag.HEARTBEAT });
    }, o.heartbeatMs);
    beat.unref();

    const violation = (e: RobotProtocolError) => {
      conn.send({ tag: Tag.ERROR, code: e.code, message: e.message, ref: null });
      if (++violations > o.maxViolations) conn.close('PROTOCOL_VIOLATION', 'too many bad frames');
    };

    const telemetryAllowed = (): boolean => {
      const now = Date.now();
      tokens = Math.min(o.telemetryPerSecond, tokens + ((now - refilled) / 1000) * o.telemetryPerSecond);
      refilled = now;
      if (tokens >= 1) {
        tokens -= 1;
        return true;
      }
      if (now - lastLimitError >= 1_000) {
        lastLimitError = now;
        conn.send({
          tag: Tag.ERROR,
          code: 'RATE_LIMITED',
          message: `at most ${o.telemetryPerSecond} telemetry frames per second; excess frames are dropped`,
          ref: null,
        });
      }
      return false;
    };

    /** Frames that arrived while the robot was being attached: handled, in order, once it is. */
    let attaching: Buffer[] | undefined;
    const onBody = (body: Buffer) => {
      if (attaching) {
        attaching.push(body);
        return;
      }
      let f: RobotFrame;
      try {
        f = parseRobotFrame(body);
      } catch (e) {
        if (e instanceof RobotProtocolError) return violation(e);
        throw e;
      }
      if (f.tag === Tag.HEARTBEAT) return;
      if (!handler) {
        if (f.tag !== Tag.HELLO) return conn.close('BAD_FRAME', 'the first frame must be HELLO');
        clearTimeout(helloTimer);
        channels = new Set(f.channels.map((c) => c.id));
        const held: Buffer[] = [];
        attaching = held;
        o.connect(conn, f.channels).then(
          (h) => {
            attaching = undefined;
            if (conn.closed) return h.onClose(); // gone while attaching: detach at once
            handler = h;
            conn.send({ tag: Tag.WELCOME, robotId: conn.robotId, heartbeatMs: o.heartbeatMs });
            for (const b of held) if (!conn.closed) onBody(b);
          },
          (e: unknown) => {
            log.warn({ err: e }, 'robot could not be attached');
            conn.close('UNAVAILABLE', 'the hub could not take this robot right now; reconnect shortly');
          },
        );
        return;
      }
      if (f.tag === Tag.HELLO) return violation(new RobotProtocolError('VALIDATION', 'HELLO was already received; reconnect to change channels'));
      if (f.tag === Tag.TELEMETRY) {
        if (!channels.has(f.channel)) return violation(new RobotProtocolError('VALIDATION', `TELEMETRY: channel ${f.channel} was not advertised in HELLO`));
        if (!telemetryAllowed()) return;
      }
      handler.onFrame(f);
    };

    socket.on('data', (chunk: Buffer) => {
      conn.lastRead = Date.now();
      let bodies: Buffer[];
      try {
        bodies = reader.push(chunk);
      } catch (e) {
        if (!(e instanceof RobotProtocolError)) throw e;
        conn.close(e.code, e.message); // the stream cannot be resynchronised after a bad length
        return;
      }
      for (const b of bodies) {
        if (conn.closed) return;
        try {
          onBody(b);
        } catch (e) {
          log.error({ err: e }, 'robot frame handler failed');
          conn.close('INTERNAL', 'internal error');
        }
      }
    });
    socket.on('close', () => {
      conn.closed = true;
      clearTimeout(helloTimer);
      clearInterval(beat);
      handler?.onClose();
    });
    socket.resume();
  }
}
