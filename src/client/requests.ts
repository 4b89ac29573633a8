// Request/reply bookkeeping: ids, routing each reply to its request, timeouts, and requests that
// wait for a connection. Invariant: every request settles exactly once — by its reply, its
// timeout, or the client's end. When the connection drops, idempotent requests wait for the next
// one (still within their original timeout); the others fail with DISCONNECTED.

import type {
  AckFrame,
  ClientFrame,
  ErrorFrame,
  FeedFrame,
  HistoryReplyFrame,
  LeasedFrame,
  NackFrame,
  OkFrame,
  PongFrame,
  QueuedFrame,
  SubscribedFrame,
  WatchingFrame,
} from '../protocol/frames.js';
import { asSwitchboardError, SwitchboardError } from './errors.js';

/** The frames that answer a request (they carry its `id`). */
export type ReplyFrame =
  | SubscribedFrame
  | OkFrame
  | AckFrame
  | NackFrame
  | HistoryReplyFrame
  | FeedFrame
  | PongFrame
  | ErrorFrame
  | WatchingFrame
  | LeasedFrame
  | QueuedFrame;

/** A client frame before it is given its id. */
export type RequestBody = ClientFrame extends infer F ? (F extends ClientFrame ? Omit<F, 'id'> : never) : never;

/** Where a sent request's fate is reported. */
export interface ReplyHandler {
  reply(f: ReplyFrame): void;
  /** The connection dropped before the reply came. */
  lost(): void;
  /** The client ended for good. */
  fail(err: SwitchboardError): void;
}

export interface RequestHost {
  /** A `hello` came on the current socket. */
  isOpen(): boolean;
  /** Encodes and sends a frame; throws a SwitchboardError when it cannot be sent (too large). */
  send(frame: ClientFrame): void;
  readonly timeoutMs: number;
}

interface Call {
  body: RequestBody;
  resend: boolean;
  id: number | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  settled: boolean;
  resolve(f: ReplyFrame): void;
  reject(e: SwitchboardError): void;
}

/** The hub's refusal of a request, as a SwitchboardError carrying the request's id. */
export const serverError = (f: ErrorFrame | NackFrame, room?: string, robot?: string): SwitchboardError =>
  new SwitchboardError(f.code, f.message, { room, robot, requestId: f.id ?? undefined });

/** The room or robot a request concerns, for its errors. */
const subject = (body: RequestBody): { room?: string; robot?: string } => ({
  room: 'room' in body ? body.room : undefined,
  robot: 'robot' in body ? body.robot : undefined,
});

export class Requests {
  private nextId = 1;
  private readonly inFlight = new Map<number, ReplyHandler>();
  /** Calls made while disconnected, or lost with a connection: sent on the next `hello`. */
  private readonly waiting = new Set<Call>();

  constructor(private readonly host: RequestHost) {}

  /** Sends `body` now with a fresh id and routes its reply to `handler`. Throws when it cannot be sent. */
  send(body: RequestBody, handler: ReplyHandler): number {
    const id = this.nextId++;
    this.inFlight.set(id, handler);
    try {
      this.host.send({ ...body, id } as ClientFrame);
    } catch (e) {
      this.inFlight.delete(id);
      throw e;
    }
    return id;
  }

  /** Stops waiting for the reply to `id` (a late reply is then ignored). */
  forget(id: number): void {
    this.inFlight.delete(id);
  }

  /** Routes a reply to its request; replies to forgotten requests are dropped. */
  settle(f: ReplyFrame & { id: number }): void {
    const h = this.inFlight.get(f.id);
    if (!h) return;
    this.inFlight.delete(f.id);
    h.reply(f);
  }

  /**
   * A request that resolves with its reply (an `error` reply rejects with the server's code) within
   * the host's timeout, waiting for a connection if there is none. `resend: false` fails it with
   * DISCONNECTED instead when no connection is up (or it drops) before the reply.
   */
  call(body: RequestBody, { resend = true }: { resend?: boolean } = {}): Promise<ReplyFrame> {
    return new Promise<ReplyFrame>((resolve, reject) => {
      const call: Call = { body, resend, id: undefined, timer: undefined, settled: false, resolve, reject };
      call.timer = setTimeout(() => {
        if (call.id !== undefined) this.forget(call.id);
        this.finish(call, new SwitchboardError('TIMEOUT', `no reply to ${body.t} within ${this.host.timeoutMs} ms`));
      }, this.host.timeoutMs);
      if (this.host.isOpen()) this.dispatch(call);
      else if (resend) this.waiting.add(call);
      else this.finish(call, new SwitchboardError('DISCONNECTED', `not connected: ${body.t} not sent`));
    });
  }

  /** A connection is up: send the calls that waited. */
  flush(): void {
    const calls = [...this.waiting];
    this.waiting.clear();
    for (const c of calls) if (!c.settled) this.dispatch(c);
  }

  /** The connection dropped: every request in flight learns it. */
  lost(): void {
    const handlers = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const h of handlers) h.lost();
  }

  /** The client ended: every request fails with `err`. */
  failAll(err: SwitchboardError): void {
    const handlers = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const h of handlers) h.fail(err);
    const calls = [...this.waiting];
    this.waiting.clear();
    for (const c of calls) this.finish(c, err);
  }

  private dispatch(call: Call): void {
    try {
      call.id = this.send(call.body, {
        reply: (f) => {
          if (f.t !== 'error') return this.finish(call, undefined, f);
          const { room, robot } = subject(call.body);
          this.finish(call, serverError(f, room, robot));
        },
        lost: () => {
          call.id = undefined;
          if (call.resend) this.waiting.add(call);
          else this.finish(call, new SwitchboardError('DISCONNECTED', `the connection dropped before the reply to ${call.body.t}`));
        },
        fail: (err) => this.finish(call, err),
      });
    } catch (e) {
      this.finish(call, asSwitchboardError(e, 'DISCONNECTED', `${call.body.t} not sent`));
    }
  }

  private finish(call: Call, err: SwitchboardError | undefined, reply?: ReplyFrame): void {
    if (call.settled) return;
    call.settled = true;
    clearTimeout(call.timer);
    this.waiting.delete(call);
    if (err) call.reject(err);
    else call.resolve(reply as ReplyFrame);
  }
}
