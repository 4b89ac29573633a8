// One client connection's frames: each request is checked against the connection's limits, sent
// to the room actor or service it concerns, and answered with exactly one reply frame carrying its
// id. The session also keeps the connection authenticated: when the access token expires it asks
// for a fresh one (`reauth`) and closes the connection if none comes within the grace period.

import type { AccessClaims } from '../auth/access-tokens.js';
import type { NoticesService } from '../chat/notices-service.js';
import type { PublishBudget } from '../chat/publish-budget.js';
import type { RoomsService } from '../chat/rooms-service.js';
import { type ErrorCode, RateLimitedError, SbError } from '../errors.js';
import type { Logger } from '../log.js';
import { type ClientFrame, CloseCode, type ServerFrame } from '../protocol/frames.js';
import type { ClientConnection } from './ports.js';
import type { RobotMsg, RobotReplies, RobotReply } from './robot.js';
import type { RoomMsg, RoomReplies, RoomReply } from './room.js';
import { toFrame } from './room-tail.js';
import { ActorLimitError, type ActorRef, AskTimeoutError, type Clock, MailboxFullError } from './runtime.js';

export interface SessionLimits {
  maxSubscriptions: number;
  /** Every other request shares one bucket: a flood of `sub`s (each may start a room actor) is refused. */
  requestsPerSecond: number;
  /** How long a client has to answer `reauth` with a fresh token, ms. */
  reauthGraceMs: number;
}

/** Where a person's live message notices come from: told when each of their sockets opens and closes. */
export interface NoticeAudience {
  attach(user: { id: string; username: string }): void;
  detach(userId: string): void;
  /** Their device resumed its stream: read their rooms again. */
  load(userId: string): Promise<void>;
}

export interface SessionDeps {
  rooms: RoomsService;
  notices: NoticesService;
  audience: NoticeAudience;
  /** The user's publish budget on this node, shared with REST posting and the user's other sockets. */
  publishBudget: PublishBudget;
  room(id: string): ActorRef<RoomMsg, RoomReply, RoomReplies>;
  robot(id: string): ActorRef<RobotMsg, RobotReply, RobotReplies>;
  verify(token: string): Promise<AccessClaims>;
  limits: SessionLimits;
  log: Logger;
  clock: Clock;
}

/** Token bucket: `burst` publishes at once, refilled at `perSecond`. */
class TokenBucket {
  private tokens: number;
  private at: number;
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.at = clock.now();
  }
  /** Takes a token: 0 when one was there, else the ms until one will be. */
  take(): number {
    const t = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) / 1000) * this.perSecond);
    this.at = t;
    if (this.tokens < 1) return Math.max(1, Math.ceil(((1 - this.tokens) / this.perSecond) * 1000));
    this.tokens -= 1;
    return 0;
  }
}

/** Typing notices are ephemeral: at most one per room per this many ms is fanned out. */
const TYPING_INTERVAL_MS = 1_000;
/** A subscription whose replay reads history may take longer than an ordinary request. */
const SUBSCRIBE_TIMEOUT_MS = 30_000;

/** Defaults for robot requests that leave them out. */
const COMMAND_TIMEOUT_MS = 10_000;
const LEASE_TTL_MS = 30_000;
/** How long a watch, lease or e-stop may wait for the robot actor, and how long its ask waits. */
const ROBOT_DEADLINE_MS = 5_000;
const ROBOT_ASK_MS = ROBOT_DEADLINE_MS + 1_000;

export class Session {
  // Made on first use: most connections of a large node sit idle, and each empty collection costs
  // about a hundred bytes (see the idle bench).
  private subs: Set<string> | undefined;
  private watches: Set<string> | undefined;
  private readonly admin: boolean;
  /** The login session of its latest token: the transport closes the socket when it ends. */
  sid: string | undefined;
  private readonly requests: TokenBucket;
  private lastTyping: Map<string, number> | undefined;
  private exp: number;
  private timer: unknown;
  private closed = false;

  constructor(
    private readonly conn: ClientConnection,
    claims: AccessClaims,
    private readonly deps: SessionDeps,
  ) {
    this.exp = claims.exp * 1000;
    this.admin = claims.admin;
    this.sid = claims.sid;
    const L = deps.limits;
    this.requests = new TokenBucket(L.requestsPerSecond, Math.max(2 * L.requestsPerSecond, L.maxSubscriptions + 10), deps.clock);
    this.armReauth();
    deps.audience.attach(conn.user);
  }

  get expiresAt(): number {
    return this.exp;
  }

  /** Handles one validated frame; never throws (errors become reply frames). */
  async onFrame(f: ClientFrame): Promise<void> {
    try {
      const reply = await this.dispatch(f);
      if (reply) this.conn.send(reply);
    } catch (e) {
      this.conn.send(this.failure(f, e));
    }
  }

  /** The connection is gone: leave every room. */
  onClose(): void {
    if (!this.closed) this.deps.audience.detach(this.conn.user.id);
    this.closed = true;
    this.deps.clock.clearTimeout(this.timer);
    for (const room of this.subs ?? []) this.deps.room(room).tell({ type: 'unsubscribe', conn: this.conn });
    this.subs = undefined;
    for (const robot of this.watches ?? []) this.deps.robot(robot).tell({ type: 'unwatch', conn: this.conn });
    this.watches = undefined;
  }

  /** Rooms subscribed and robots watched: what maxSubscriptions bounds. */
  private get following(): number {
    return (this.subs?.size ?? 0) + (this.watches?.size ?? 0);
  }

  private async dispatch(f: ClientFrame): Promise<ServerFrame | undefined> {
    const user = this.conn.user;
    // Publishes have their own (per-user) budget; an emergency stop is never refused for rate.
    const waitMs = f.t !== 'pub' && f.t !== 'estop' ? this.requests.take() : 0;
    if (waitMs > 0) {
      throw new RateLimitedError(Math.ceil(waitMs / 1000), `at most ${this.deps.limits.requestsPerSecond} requests per second besides publishes`, waitMs);
    }
    switch (f.t) {
      case 'ping':
        return { t: 'pong', id: f.id };
      case 'sub': {
        if (!this.subs?.has(f.room) && this.following >= this.deps.limits.maxSubscriptions) {
          throw new SbError('RATE_LIMITED', `at most ${this.deps.limits.maxSubscriptions} subscriptions per connection`);
        }
        // Counted (and cancellable by `unsub`) from now: frames are handled concurrently, and the
        // room's mailbox keeps this subscribe ahead of any later unsubscribe.
        const added = !this.subs?.has(f.room);
        this.subs ??= new Set();
        this.subs.add(f.room);
        try {
          // The room actor replays, joins the topic and sends `subscribed` itself, so the reply can
          // never overtake the replayed messages.
          await this.deps.room(f.room).ask({ type: 'subscribe', conn: this.conn, reqId: f.id, since: f.since }, SUBSCRIBE_TIMEOUT_MS);
        } catch (e) {
          if (added) this.subs?.delete(f.room);
          throw e;
        }
        if (this.closed) this.deps.room(f.room).tell({ type: 'unsubscribe', conn: this.conn });
        return undefined;
      }
      case 'unsub':
        if (this.subs?.delete(f.room)) await this.deps.room(f.room).ask({ type: 'unsubscribe', conn: this.conn });
        return { t: 'ok', id: f.id };
      case 'pub': {
        this.deps.publishBudget.take(user.id);
        const post = await this.deps.rooms.compose(user.id, f.cid, f.body, f.att, 'att');
        const reply = await this.deps.room(f.room).ask({ type: 'publish', sender: user, ...post });
        const { message, duplicate } = await reply.pending;
        return {
          t: 'ack',
          id: f.id,
          cid: f.cid,
          seq: message.seq,
          mid: message.id,
          ts: message.createdAt.getTime(),
          ...(duplicate ? { dup: true as const } : {}),
        };
      }
      case 'hist': {
        const { room, messages } = await this.deps.rooms.history(user.id, f.room, { before: f.before, after: f.after, limit: f.limit ?? 50 });
        return {
          t: 'history',
          id: f.id,
          room: f.room,
          lastSeq: room.lastSeq,
          messages: messages.map((m) => {
            const { t: _t, room: _r, ...rest } = toFrame(m);
            return m.reactions ? { ...rest, reactions: m.reactions } : rest;
          }),
        };
      }
      case 'read':
        await this.deps.rooms.markRead(user, f.room, f.seq);
        return { t: 'ok', id: f.id };
      case 'feed': {
        if (f.since !== undefined) await this.deps.audience.load(user.id);
        return { t: 'feed', id: f.id, ...(await this.deps.notices.feed(user.id, f.since)) };
      }
      case 'typing': {
        const now = this.deps.clock.now();
        if (now - (this.lastTyping?.get(f.room) ?? 0) >= TYPING_INTERVAL_MS) {
          this.lastTyping ??= new Map();
          this.lastTyping.set(f.room, now);
          try {
            await this.deps.room(f.room).ask({ type: 'typing', conn: this.conn });
          } catch (e) {
            // Not throttled after a refusal: the next one is checked (and answered) again.
            this.lastTyping?.delete(f.room);
            throw e;
          }
        }
        return { t: 'ok', id: f.id };
      }
      case 'watch': {
        if (!this.watches?.has(f.robot) && this.following >= this.deps.limits.maxSubscriptions) {
          throw new SbError('RATE_LIMITED', `at most ${this.deps.limits.maxSubscriptions} subscriptions and watches per connection`);
        }
        const added = !this.watches?.has(f.robot);
        this.watches ??= new Set();
        this.watches.add(f.robot);
        try {
          // The robot actor sends `watching` itself, before any live frame of the robot.
          await this.deps
            .robot(f.robot)
            .ask(
              { type: 'watch', conn: this.conn, by: this.requester(), reqId: f.id, deadline: this.deadline(), channels: f.channels, since: f.since },
              ROBOT_ASK_MS,
            );
        } catch (e) {
          if (added) this.watches?.delete(f.robot);
          throw e;
        }
        if (this.closed) this.deps.robot(f.robot).tell({ type: 'unwatch', conn: this.conn });
        return undefined;
      }
      case 'unwatch':
        if (this.watches?.delete(f.robot)) await this.deps.robot(f.robot).ask({ type: 'unwatch', conn: this.conn });
        return { t: 'ok', id: f.id };
      case 'cmd': {
        const timeoutMs = f.timeoutMs ?? COMMAND_TIMEOUT_MS;
        const deadline = this.deps.clock.now() + timeoutMs;
        // The actor answers itself once the command is audited (`queued`, ahead of its later stages, or
        // an error); it refuses a command whose deadline passed, so a TIMEOUT here means it was not sent.
        // The ask outlives the deadline for the same reason: a message handled later is refused there.
        await this.deps
          .robot(f.robot)
          .ask({ type: 'command', conn: this.conn, by: this.requester(), reqId: f.id, name: f.name, args: f.args, deadline }, timeoutMs + 1_000);
        return undefined;
      }
      case 'estop':
        await this.deps.robot(f.robot).ask({ type: 'estop', conn: this.conn, by: this.requester(), reqId: f.id, deadline: this.deadline() }, ROBOT_ASK_MS);
        return undefined;
      case 'lease':
        return await this.deps.robot(f.robot).ask(
          {
            type: 'lease',
            by: this.requester(),
            op: f.op,
            ttlMs: f.ttlMs ?? LEASE_TTL_MS,
            force: f.force ?? false,
            reqId: f.id,
            deadline: this.deadline(),
          },
          ROBOT_ASK_MS,
        );
      case 'auth': {
        const claims = await this.deps.verify(f.token);
        if (claims.sub !== user.id) throw new SbError('FORBIDDEN', 'the token belongs to another user; open a new connection instead');
        // A refresh stays in its session; a new login moves the socket to the new one. (A token
        // from before sessions were kept names none: the socket keeps the one it had.)
        this.sid = claims.sid ?? this.sid;
        this.exp = claims.exp * 1000;
        this.armReauth();
        return { t: 'ok', id: f.id };
      }
    }
  }

  /** When a robot request must have been taken; its ask (ROBOT_ASK_MS) outlives it, so a late one is refused, not answered twice. */
  private deadline(): number {
    return this.deps.clock.now() + ROBOT_DEADLINE_MS;
  }

  private requester() {
    return { user: this.conn.user, admin: this.admin };
  }

  private failure(f: ClientFrame, e: unknown): ServerFrame {
    let code: ErrorCode = 'INTERNAL';
    let message = 'internal error';
    const retry = e instanceof RateLimitedError ? { retryAfterMs: e.retryAfterMs } : {};
    if (e instanceof SbError) {
      code = e.code;
      message = e.message;
      // The runtime's refusals carry their code; here they are worded for the request they refused.
      if (e instanceof MailboxFullError) {
        message =
          f.t === 'pub' || f.t === 'sub' || f.t === 'typing' ? 'the room is overloaded; retry with backoff' : 'the robot is overloaded; retry with backoff';
      } else if (e instanceof ActorLimitError) {
        message = 'the node is at its limit of active rooms and robots; retry with backoff or connect to another node';
      } else if (e instanceof AskTimeoutError) {
        message =
          f.t === 'cmd'
            ? 'the robot did not take the command before its deadline; it was not sent'
            : 'the request timed out; retry (publishes with the same cid)';
      }
    } else {
      this.deps.log.error({ err: e, frame: f.t, conn: this.conn.id }, 'request failed');
    }
    if (f.t === 'pub') return { t: 'nack', id: f.id, cid: f.cid, code, message, ...retry };
    return { t: 'error', id: f.id, code, message, ...retry };
  }

  /** At expiry, ask for a fresh token; after the grace period without one, close. */
  private armReauth(): void {
    const { clock, limits } = this.deps;
    clock.clearTimeout(this.timer);
    this.timer = clock.setTimeout(
      () => {
        if (this.closed) return;
        const deadline = clock.now() + limits.reauthGraceMs;
        this.conn.send({ t: 'reauth', deadline });
        this.timer = clock.setTimeout(() => {
          if (!this.closed && clock.now() >= this.exp) this.conn.close(CloseCode.AUTH_FAILED, 'access token expired');
        }, limits.reauthGraceMs);
      },
      Math.max(0, this.exp - clock.now()),
    );
  }
}
