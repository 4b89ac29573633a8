// The robot endpoint: a TLS listener that requires a client certificate chained to the robot CA
// (Node's TLS stack: the uWS build cannot require or expose client certificates). A missing,
// foreign, expired or not-yet-valid certificate completes the handshake but gets an ERROR frame with
// a terminal code and is closed before any of its frames is read: a TLS alert alone reads as a
// network failure to a robot (under TLS 1.3 it only shows on the first read), which would retry it
// forever. Then the certificate's fingerprint must name a registered, unrevoked certificate of the
// robot in its CN, or the link is refused the same way. Then the robot says HELLO (its channels)
// and its frames go to its actor. Until it is welcomed a connection is *pending*: pending ones are
// capped per client IP and in all, and each must reach WELCOME within the handshake deadline, so
// no one without a certificate can make the node hold more than the caps' worth of sockets.
// A welcomed robot may RENEW its certificate: the link limits it and hands the request to `renew`.
// This module knows the robot wire protocol and the link's limits, nothing of commands or watchers.

import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { RobotConnection } from '../actors/ports.js';
import { SbError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  advertised,
  type Channel,
  encodeHubFrame,
  FrameReader,
  type HubFrame,
  parseRobotFrame,
  type RobotFrame,
  RobotProtocolError,
  Tag,
  withdrawn,
} from '../protocol/robot.js';

/** Why a certificate that passed the handshake is still refused; the robot gets the code in an ERROR frame. */
export class RobotRefused extends Error {
  constructor(
    readonly code:
      | 'UNKNOWN_CERTIFICATE'
      | 'CERTIFICATE_REVOKED'
      | 'CERTIFICATE_REQUIRED'
      | 'CERTIFICATE_UNTRUSTED'
      | 'CERTIFICATE_EXPIRED'
      | 'CERTIFICATE_NOT_YET_VALID'
      | 'UNAVAILABLE',
    message: string,
  ) {
    super(message);
    this.name = 'RobotRefused';
  }
}

/** What a robot's frames after HELLO go to. */
export interface RobotLinkHandler {
  onFrame(f: Exclude<RobotFrame, { tag: typeof Tag.HELLO | typeof Tag.HEARTBEAT | typeof Tag.ADVERTISE | typeof Tag.WITHDRAW | typeof Tag.RENEW }>): void;
  /** The robot advertised or withdrew channels: its whole channel set now. */
  onChannels(channels: Channel[]): void;
  /** [channelId, lastStoredSeq] of its reliable channels with stored samples: WELCOME's 4th element. */
  readonly lastStored?: [number, number][];
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
  /** From TCP accept to the end of the TLS handshake, and again from then to HELLO, ms. */
  handshakeTimeoutMs: number;
  /** Connections not yet welcomed, from one client IP and in all; more are closed at accept. */
  maxPendingPerIp: number;
  maxPending: number;
  log: Logger;
  /** Maps a verified certificate (SHA-256 of its DER, its subject CN) to its robot, or throws RobotRefused. */
  authenticate(fingerprint: Buffer, commonName: string): Promise<{ robotId: string }>;
  /** The robot said HELLO: attach it. WELCOME is sent once this resolves; if it rejects the link is refused with UNAVAILABLE. */
  connect(conn: RobotConnection, channels: Channel[]): Promise<RobotLinkHandler>;
  /**
   * A welcomed robot sent RENEW: a certificate for the key of its CSR (DER), asked with the
   * certificate of this link. Rejects with an error carrying a `code` (SbError, RobotRefused):
   * the robot gets it in an ERROR with ref "renew".
   */
  renew(link: { robotId: string; fingerprint: Buffer }, csrDer: Uint8Array): Promise<{ certPem: string; caPem: string }>;
  /** Least time between two RENEWs on one link, ms (default 60 000); the hub also limits them per robot. */
  renewIntervalMs?: number;
}

/** ADVERTISE and WITHDRAW frames per second per link (sustained), and the burst: each costs a store read and a frame to every watcher. */
export const CHANNEL_CHANGES_PER_SECOND = 10;
export const CHANNEL_CHANGES_BURST = 20;

/** Refusal log lines per second; past it they are counted and summed up in the next line. */
const REFUSAL_LOGS_PER_SECOND = 10;

/** What a certificate that failed verification is told, by OpenSSL's verdict. */
function untrusted(verdict: string): RobotRefused {
  switch (verdict) {
    case 'CERT_HAS_EXPIRED':
      return new RobotRefused('CERTIFICATE_EXPIRED', 'this certificate has expired; the robot needs a new one (do not retry with this one)');
    case 'CERT_NOT_YET_VALID':
      return new RobotRefused('CERTIFICATE_NOT_YET_VALID', "this certificate is not valid yet; check the robot's clock");
    default:
      return new RobotRefused('CERTIFICATE_UNTRUSTED', `this certificate is not signed by the hub's robot CA (${verdict}); do not retry with it`);
  }
}

/** Counts connections not yet welcomed per client IP and in all, refusing past the caps. */
class PendingLinks {
  private readonly perIp = new Map<string, number>();
  total = 0;
  refused = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  /** Takes a slot for a connection from `ip`; false when a cap is reached. Every slot taken is released once. */
  admit(ip: string): boolean {
    const n = this.perIp.get(ip) ?? 0;
    if (this.total >= this.maxTotal || n >= this.maxPerIp) {
      this.refused++;
      return false;
    }
    this.perIp.set(ip, n + 1);
    this.total++;
    return true;
  }

  release(ip: string): void {
    const n = this.perIp.get(ip) ?? 1;
    if (n <= 1) this.perIp.delete(ip);
    else this.perIp.set(ip, n - 1);
    this.total--;
  }
}

/** At most `perSecond` lines a second; the next line after a full second says how many were dropped. */
class LogBudget {
  private windowStart = 0;
  private used = 0;
  private dropped = 0;

  constructor(private readonly perSecond: number) {}

  /** Whether to log now; `suppressed` is how many lines were dropped since the last one logged. */
  take(now = Date.now()): { ok: boolean; suppressed: number } {
    if (now - this.windowStart >= 1_000) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perSecond) {
      this.dropped++;
      return { ok: false, suppressed: 0 };
    }
    this.used++;
    const suppressed = this.dropped;
    this.dropped = 0;
    return { ok: true, suppressed };
  }
}

const linkKey = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress ?? ''}|${s.remotePort ?? 0}`;

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
  /** Handshakes that failed or whose certificate did not verify (none, foreign, expired), and registered-certificate refusals. */
  readonly refusals = { handshake: 0, certificate: 0 };
  private readonly pending: PendingLinks;
  /** Releases a pending connection's slot, by its client address and port (the TLS socket and the TCP one share them). */
  private readonly pendingRelease = new Map<string, () => void>();
  private readonly logBudget = new LogBudget(REFUSAL_LOGS_PER_SECOND);

  constructor(private readonly opts: RobotListenerOptions) {
    this.pending = new PendingLinks(opts.maxPending, opts.maxPendingPerIp);
  }

  /** Connections not yet welcomed, and how many were closed at accept for the caps. */
  get pendingConnections(): { open: number; refused: number } {
    return { open: this.pending.total, refused: this.pending.refused };
  }

  /** Logs a refusal at info, within the log budget, so a flood cannot flood the log. */
  private logRefusal(fields: Record<string, unknown>, msg: string): void {
    const { ok, suppressed } = this.logBudget.take();
    if (ok) this.opts.log.info(suppressed ? { ...fields, suppressed } : fields, msg);
  }

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
      // Verified below, so that a refused certificate gets a readable ERROR frame, not a bare close.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      handshakeTimeout: o.handshakeTimeoutMs,
    });
    // Before TLS: the raw TCP connection takes a pending slot or is closed at once.
    server.on('connection', (raw: Socket) => {
      const ip = raw.remoteAddress ?? '';
      if (!this.pending.admit(ip)) {
        raw.destroy();
        this.logRefusal({ remote: ip, pending: this.pending.total }, 'robot connection refused: too many pending connections');
        return;
      }
      const key = linkKey(raw);
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        this.pending.release(ip);
        this.pendingRelease.delete(key);
      };
      this.pendingRelease.set(key, release);
      raw.once('close', release);
    });
    server.on('secureConnection', (socket) => this.accept(socket));
    server.on('tlsClientError', (err, socket) => {
      this.refusals.handshake++;
      // With a listener here Node leaves the socket open (a handshake timeout included): close it.
      socket.destroy();
      this.logRefusal({ reason: (err as NodeJS.ErrnoException).code ?? err.message, remote: socket.remoteAddress }, 'robot TLS handshake failed');
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
    if (!socket.authorized) {
      this.refusals.handshake++;
      const verdict = String(socket.authorizationError ?? '');
      const noCert = Object.keys(socket.getPeerCertificate()).length === 0;
      const refused = noCert
        ? new RobotRefused('CERTIFICATE_REQUIRED', 'the robot endpoint needs a client certificate signed by the robot CA')
        : untrusted(verdict);
      this.logRefusal({ code: refused.code, reason: verdict, remote: socket.remoteAddress }, 'robot refused');
      endWithError(socket, refused.code, refused.message);
      return;
    }
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
        this.logRefusal({ code: refused.code, fingerprint: fingerprint.toString('hex'), remote: socket.remoteAddress }, 'robot refused');
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
    let channels = new Map<number, Channel>();
    let violations = 0;
    let tokens = o.telemetryPerSecond;
    let refilled = Date.now();
    let lastLimitError = 0;
    const log = o.log.child({ robot: conn.robotId, link: conn.id });

    const helloTimer = setTimeout(() => conn.close('TIMEOUT', `send HELLO within ${o.handshakeTimeoutMs} ms`), o.handshakeTimeoutMs);
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

    // ADVERTISE / WITHDRAW: their own bucket; one refused is dropped (the channels stay as they
    // were), and the robot told so at most once a second, like telemetry.
    let changeTokens = CHANNEL_CHANGES_BURST;
    let changesRefilled = Date.now();
    let lastChangeLimitError = 0;
    const channelChangeAllowed = (): boolean => {
      const now = Date.now();
      changeTokens = Math.min(CHANNEL_CHANGES_BURST, changeTokens + ((now - changesRefilled) / 1000) * CHANNEL_CHANGES_PER_SECOND);
      changesRefilled = now;
      if (changeTokens >= 1) {
        changeTokens -= 1;
        return true;
      }
      if (now - lastChangeLimitError >= 1_000) {
        lastChangeLimitError = now;
        conn.send({
          tag: Tag.ERROR,
          code: 'RATE_LIMITED',
          message: `at most ${CHANNEL_CHANGES_PER_SECOND} ADVERTISE and WITHDRAW frames per second (bursts of ${CHANNEL_CHANGES_BURST}); excess frames are dropped and change nothing`,
          ref: null,
        });
      }
      return false;
    };

    // RENEW: one at a time and one per renewIntervalMs on a link, refused before any work is done.
    let renewing = false;
    let lastRenew = Number.NEGATIVE_INFINITY;
    const renewal = (csr: Uint8Array) => {
      const now = Date.now();
      const interval = o.renewIntervalMs ?? 60_000;
      if (renewing || now - lastRenew < interval) {
        conn.send({ tag: Tag.ERROR, code: 'RATE_LIMITED', message: `at most one RENEW per ${interval} ms`, ref: 'renew' });
        return;
      }
      renewing = true;
      lastRenew = now;
      const refused = (e: unknown) => {
        // Only our own coded errors (SbError, RobotRefused) are the robot's to read: a driver's
        // `code` (a SQLSTATE such as 40P01) or any other failure is logged and sent as UNAVAILABLE.
        if ((e instanceof SbError && e.code !== 'INTERNAL') || e instanceof RobotRefused) {
          return conn.send({ tag: Tag.ERROR, code: e.code, message: e.message, ref: 'renew' });
        }
        log.error({ err: e }, 'robot renewal failed');
        return conn.send({ tag: Tag.ERROR, code: 'UNAVAILABLE', message: 'the hub could not renew the certificate now; retry later', ref: 'renew' });
      };
      o.renew({ robotId: conn.robotId, fingerprint: Buffer.from(conn.fingerprint, 'hex') }, csr)
        .then(({ certPem, caPem }) => conn.send({ tag: Tag.CERTIFICATE, certPem, caPem }), refused)
        .finally(() => {
          renewing = false;
        });
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
        if (!(e instanceof RobotProtocolError)) throw e;
        // Before HELLO, a frame that is not even a frame means the robot speaks something else:
        // closed. A HELLO that fails validation may still be corrected.
        return handler || e.code === 'VALIDATION' ? violation(e) : conn.close(e.code, e.message);
      }
      if (f.tag === Tag.HEARTBEAT) return;
      if (!handler) {
        if (f.tag !== Tag.HELLO) return conn.close('BAD_FRAME', 'the first frame must be HELLO');
        clearTimeout(helloTimer);
        channels = new Map(f.channels.map((c) => [c.id, c]));
        const held: Buffer[] = [];
        attaching = held;
        o.connect(conn, f.channels).then(
          (h) => {
            attaching = undefined;
            if (conn.closed) return h.onClose(); // gone while attaching: detach at once
            handler = h;
            this.pendingRelease.get(linkKey(socket))?.();
            conn.send({ tag: Tag.WELCOME, robotId: conn.robotId, heartbeatMs: o.heartbeatMs, lastStored: h.lastStored ?? [] });
            for (const b of held) if (!conn.closed) onBody(b);
          },
          (e: unknown) => {
            log.warn({ err: e }, 'robot could not be attached');
            conn.close('UNAVAILABLE', 'the hub could not take this robot right now; reconnect shortly');
          },
        );
        return;
      }
      if (f.tag === Tag.HELLO) return violation(new RobotProtocolError('VALIDATION', 'HELLO was already received; change channels with ADVERTISE'));
      if (f.tag === Tag.RENEW) return renewal(f.csr);
      if (f.tag === Tag.ADVERTISE || f.tag === Tag.WITHDRAW) {
        if (!channelChangeAllowed()) return;
        try {
          channels = f.tag === Tag.ADVERTISE ? advertised(channels, f.channels) : withdrawn(channels, f.channels);
        } catch (e) {
          if (!(e instanceof RobotProtocolError)) throw e;
          return violation(e);
        }
        return handler.onChannels([...channels.values()]);
      }
      if (f.tag === Tag.TELEMETRY) {
        const channel = channels.get(f.channel);
        if (!channel) return violation(new RobotProtocolError('VALIDATION', `TELEMETRY: channel ${f.channel} is not advertised`));
        if (f.seq !== undefined && channel.delivery !== 'reliable')
          return violation(new RobotProtocolError('VALIDATION', `TELEMETRY: channel ${f.channel} is a latest channel; only reliable samples carry a seq`));
        if (!telemetryAllowed()) return;
      }
      handler.onFrame(f);
    };

    socket.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = reader.push(chunk);
      } catch (e) {
        if (!(e instanceof RobotProtocolError)) throw e;
        conn.close(e.code, e.message); // the stream cannot be resynchronised after a bad length
        return;
      }
      // Only whole frames count as hearing from the robot: a frame trickled a byte at a time
      // cannot keep a link open past 3 heartbeats.
      if (bodies.length) conn.lastRead = Date.now();
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
