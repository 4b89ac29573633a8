// The actor runtime hosting room, robot and session actors: actors are addressed by (kind, id) and
// created on the first message. Invariants: one message at a time per actor, in arrival order;
// mailboxes are bounded; every ask times out; an actor failure is supervised, never a process crash.
// The number of live actors is bounded too: an address holds runtime state only while it has an
// instance or queued messages, and a message that would create one past the limit is refused.

import { SbError } from '../errors.js';
import type { Logger } from '../log.js';

/** Time and timers, injectable so tests drive ask timeouts and passivation deterministically. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The wall clock; timers are unref'd so a pending ask or idle timer never keeps the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** After a failed `handle`: keep the state, replace the instance (state reloaded by `start`), or drop it. */
export type SupervisionDecision = 'resume' | 'restart' | 'stop';

/** One actor instance; its state lives in the object and `start` (re)loads it, e.g. from the store. */
export interface Actor<M, R = void> {
  /** Loads state; awaited before the first message. On failure the queued messages get its error, the instance is discarded (no stop()). */
  start?(): Promise<void>;
  /** Handles one message; never called concurrently for one actor, even when async. */
  handle(msg: M): Promise<R> | R;
  /** Releases resources on passivation, restart, a 'stop' decision or shutdown; errors are logged, not thrown. */
  stop?(): Promise<void>;
  /** Decides what happens after `handle` threw or rejected; 'restart' when absent (or if it throws). */
  onError?(err: unknown): SupervisionDecision;
  /** Vetoes passivation while false (e.g. live subscribers); asked again after another idle period. */
  canPassivate?(): boolean;
  /**
   * Asked whenever the mailbox runs empty: true stops and forgets the actor at once instead of after
   * the idle period (its entity does not exist, so keeping it would only hold memory for a stranger).
   */
  passivateNow?(): boolean;
}

/** An actor whose every message answers with the same type. */
export type NoReplies = Record<never, never>;

/**
 * The reply an ask of `msg` gets: `Replies[msg.type]` for the message types that map names (an
 * actor whose messages answer differently), else `R`.
 */
export type AskReply<M, R, Replies> = M extends { type: infer K } ? (K extends keyof Replies ? Replies[K] : R) : R;

/**
 * The address of an actor: stays valid across passivation and restarts (the instance behind it
 * changes). `Replies` maps message types to their replies, so each ask is typed by what it asks.
 */
export interface ActorRef<M, R = void, Replies = NoReplies> {
  readonly kind: string;
  readonly id: string;
  /** Messages queued and not yet being handled. */
  readonly depth: number;
  /** Fire and forget; false when the mailbox is full or the system is stopping. */
  tell(msg: M): boolean;
  /**
   * Sends and awaits the reply; rejects with the handler's (or start()'s) error, MailboxFullError, ActorStoppedError,
   * or AskTimeoutError after `timeoutMs` (default: the system's askTimeoutMs). A timed-out message
   * stays queued and may still be handled later; only its reply is dropped.
   */
  ask<T extends M>(msg: T, timeoutMs?: number): Promise<AskReply<T, R, Replies>>;
}

/** What a factory gets: the actor's address, a logger bound to kind and id, and the clock. */
export interface ActorContext<M = unknown, R = unknown, Replies = NoReplies> {
  readonly kind: string;
  readonly id: string;
  readonly self: ActorRef<M, R, Replies>;
  readonly log: Logger;
  readonly clock: Clock;
}

/** What a part of an actor (a class it delegates to) needs of its context: telling the actor, the log, the clock. */
export interface PartContext<M> {
  readonly self: Pick<ActorRef<M>, 'tell'>;
  readonly log: Logger;
  readonly clock: Clock;
}

export type ActorFactory<M, R, Replies = NoReplies> = (id: string, ctx: ActorContext<M, R, Replies>) => Actor<M, R>;

export interface ActorSystemOptions {
  clock?: Clock; // default systemClock
  /** Queued messages per actor before tell/ask fail fast. */
  mailboxLimit?: number; // default 10_000 messages
  askTimeoutMs?: number; // default 5_000 ms
  /** An actor that received no message for this long is stopped and forgotten (Orleans-style). */
  idleMs?: number; // default 60_000 ms
  /** Addresses with an instance or queued messages; a message to a new address beyond it is refused. */
  maxActors?: number; // default 100_000 actors
}

export interface ActorMetrics {
  /** Live instances (started or starting). */
  actors: number;
  mailboxDepth: { max: number; total: number };
  /** Messages handled successfully, and handler failures. */
  handled: number;
  failed: number;
  /** Time spent in `handle` by the clock, failures included. */
  handleMs: { count: number; sum: number; max: number };
}

// The runtime's refusals are SbErrors with the codes clients see, so a room or robot that sheds
// load answers the same over REST and WebSocket. Their messages name the actor, for the logs, and
// end with what the client should do.

/** Seconds a client should wait before retrying a shed request (REST: `Retry-After`). */
const SHED_RETRY_AFTER_S = 1;

/** The mailbox is full: shed load, retry later. */
export class MailboxFullError extends SbError {
  declare readonly code: 'OVERLOADED';
  constructor(kind: string, id: string, limit: number) {
    super('OVERLOADED', `actor ${kind}/${id}: mailbox full (${limit} messages); retry with backoff`, undefined, { retryAfterS: SHED_RETRY_AFTER_S });
    this.name = 'MailboxFullError';
  }
}

/** The node hosts as many actors as it may: shed load, retry later. */
export class ActorLimitError extends SbError {
  declare readonly code: 'OVERLOADED';
  constructor(kind: string, id: string, limit: number) {
    super('OVERLOADED', `actor ${kind}/${id}: not started, the node hosts its limit of ${limit} actors; retry with backoff or on another node`, undefined, {
      retryAfterS: SHED_RETRY_AFTER_S,
    });
    this.name = 'ActorLimitError';
  }
}

/** No reply within the ask timeout; the message may still be handled later. */
export class AskTimeoutError extends SbError {
  declare readonly code: 'TIMEOUT';
  constructor(kind: string, id: string, timeoutMs: number) {
    super('TIMEOUT', `actor ${kind}/${id}: no reply within ${timeoutMs} ms; the request may still take effect`, undefined, {
      retryAfterS: SHED_RETRY_AFTER_S,
    });
    this.name = 'AskTimeoutError';
  }
}

/** The actor was stopped (a 'stop' decision or system shutdown) before the message was handled. */
export class ActorStoppedError extends SbError {
  declare readonly code: 'STOPPED';
  constructor(kind: string, id: string, options?: { cause?: unknown }) {
    super('STOPPED', `actor ${kind}/${id}: stopped`, undefined, { cause: options?.cause, retryAfterS: SHED_RETRY_AFTER_S });
    this.name = 'ActorStoppedError';
  }
}

interface Envelope {
  msg: unknown;
  resolve?: (reply: unknown) => void;
  reject?: (err: unknown) => void;
}

/** Runtime state of one address; outlives instances (restart) until passivated or shut down. */
interface Cell {
  readonly key: string;
  readonly factory: ActorFactory<any, any, any>;
  readonly ctx: ActorContext;
  actor: Actor<unknown, unknown> | undefined;
  readonly mailbox: Envelope[];
  /** Set while messages are processed or the actor is passivating; a non-empty mailbox implies it is set. */
  running: Promise<void> | undefined;
  lastIncoming: number;
  idleTimer: unknown;
}

/** Hosts actors of registered kinds; see the module comment for the guarantees. */
export class ActorSystem {
  private readonly clock: Clock;
  private readonly mailboxLimit: number;
  private readonly askTimeoutMs: number;
  private readonly idleMs: number;
  private readonly maxActors: number;
  private readonly factories = new Map<string, ActorFactory<any, any, any>>();
  private readonly cells = new Map<string, Cell>();
  private closing: Promise<void> | undefined;
  private handled = 0;
  private failed = 0;
  private readonly handleMs = { count: 0, sum: 0, max: 0 };

  constructor(
    private readonly log: Logger,
    options: ActorSystemOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.mailboxLimit = options.mailboxLimit ?? 10_000;
    this.askTimeoutMs = options.askTimeoutMs ?? 5_000;
    this.idleMs = options.idleMs ?? 60_000;
    this.maxActors = options.maxActors ?? 100_000;
  }

  /** Registers the factory for a kind; the factory is called on an address's first message and on restarts. */
  register<M, R = void, Replies = NoReplies>(kind: string, factory: ActorFactory<M, R, Replies>): void {
    if (this.factories.has(kind)) throw new Error(`actor kind already registered: ${kind}`);
    this.factories.set(kind, factory);
  }

  /** The address of an actor; the instance is created on its first message (a bare address holds nothing). */
  ref<M, R = void, Replies = NoReplies>(kind: string, id: string): ActorRef<M, R, Replies> {
    if (!this.factories.has(kind)) throw new Error(`unknown actor kind: ${kind}`);
    return (this.cells.get(`${kind}\u0000${id}`)?.ctx.self ?? this.makeRef(kind, id)) as unknown as ActorRef<M, R, Replies>;
  }

  /** The ids of the live actors of a kind (started, or with messages queued). */
  live(kind: string): string[] {
    const ids: string[] = [];
    for (const cell of this.cells.values()) if (cell.ctx.kind === kind && (cell.actor || cell.mailbox.length)) ids.push(cell.ctx.id);
    return ids;
  }

  metrics(): ActorMetrics {
    // Addresses holding state (an instance, or messages waiting for one): what maxActors bounds.
    let actors = 0;
    let max = 0;
    let total = 0;
    for (const cell of this.cells.values()) {
      if (cell.actor || cell.mailbox.length) actors++;
      max = Math.max(max, cell.mailbox.length);
      total += cell.mailbox.length;
    }
    return { actors, mailboxDepth: { max, total }, handled: this.handled, failed: this.failed, handleMs: { ...this.handleMs } };
  }

  /**
   * Refuses new messages, lets every actor handle what is queued, then awaits its stop(). Resolves
   * by `deadlineMs`: messages still queued then are rejected with ActorStoppedError and busy actors
   * are abandoned. Idempotent: later calls return the same promise.
   */
  stopAll(deadlineMs: number): Promise<void> {
    if (this.closing) return this.closing;
    let finish!: () => void;
    this.closing = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const cells = [...this.cells.values()];
    for (const cell of cells) this.clock.clearTimeout(cell.idleTimer);
    const timer = this.clock.setTimeout(() => {
      this.log.warn({ actors: this.cells.size }, 'actor shutdown deadline passed; abandoning busy actors');
      for (const cell of this.cells.values()) this.refuseQueued(cell, new ActorStoppedError(cell.ctx.kind, cell.ctx.id));
      finish();
    }, deadlineMs);
    void Promise.all(cells.map((cell) => this.drainAndStop(cell))).then(() => {
      this.clock.clearTimeout(timer);
      finish();
    });
    return this.closing;
  }

  private makeRef(kind: string, id: string): ActorRef<unknown, unknown, any> {
    const cells = this.cells;
    const key = `${kind}\u0000${id}`;
    return {
      kind,
      id,
      get depth() {
        return cells.get(key)?.mailbox.length ?? 0;
      },
      tell: (msg) => this.enqueue(kind, id, { msg }) === undefined,
      // The reply's type is the caller's ActorRef's to state: the runtime only carries it.
      ask: (msg, timeoutMs) => this.ask(kind, id, msg, timeoutMs ?? this.askTimeoutMs) as Promise<never>,
    };
  }

  private cell(kind: string, id: string): Cell | undefined {
    const key = `${kind}\u0000${id}`;
    const existing = this.cells.get(key);
    if (existing) return existing;
    if (this.cells.size >= this.maxActors) return undefined;
    const factory = this.factories.get(kind);
    if (!factory) throw new Error(`unknown actor kind: ${kind}`);
    const ctx = { kind, id, self: this.makeRef(kind, id), log: this.log.child({ kind, id }), clock: this.clock };
    const cell: Cell = { key, factory, ctx, actor: undefined, mailbox: [], running: undefined, lastIncoming: this.clock.now(), idleTimer: undefined };
    this.cells.set(key, cell);
    this.armIdle(cell, this.idleMs);
    return cell;
  }

  /** Queues a message; returns why it was refused, if it was. Processing starts on a microtask, never inside the caller. */
  private enqueue(kind: string, id: string, env: Envelope): 'stopped' | 'full' | 'limit' | undefined {
    if (this.closing) return 'stopped';
    const cell = this.cell(kind, id);
    if (!cell) return 'limit';
    if (cell.mailbox.length >= this.mailboxLimit) return 'full';
    cell.lastIncoming = this.clock.now();
    cell.mailbox.push(env);
    cell.running ??= Promise.resolve().then(() => this.processNext(cell));
    return undefined;
  }

  private ask(kind: string, id: string, msg: unknown, timeoutMs: number): Promise<unknown> {
    let timer: unknown;
    const reply = new Promise((resolve, reject) => {
      const refused = this.enqueue(kind, id, { msg, resolve, reject });
      if (refused === 'full') return reject(new MailboxFullError(kind, id, this.mailboxLimit));
      if (refused === 'limit') return reject(new ActorLimitError(kind, id, this.maxActors));
      if (refused) return reject(new ActorStoppedError(kind, id));
      timer = this.clock.setTimeout(() => reject(new AskTimeoutError(kind, id, timeoutMs)), timeoutMs);
    });
    return reply.finally(() => this.clock.clearTimeout(timer));
  }

  /** The mailbox loop: starts the instance if needed, then handles queued messages one at a time. */
  private async processNext(cell: Cell): Promise<void> {
    try {
      while (cell.mailbox.length > 0) {
        if (!cell.actor && !(await this.startActor(cell))) continue;
        await this.deliver(cell, cell.actor!, cell.mailbox.shift()!);
      }
    } finally {
      cell.running = undefined;
    }
    if (!this.closing && cell.mailbox.length === 0 && this.cells.get(cell.key) === cell && this.wantsOut(cell)) {
      this.clock.clearTimeout(cell.idleTimer);
      cell.running = this.passivate(cell);
    }
  }

  /** An actor whose start failed, or that asks to go (passivateNow), leaves as soon as its mailbox is empty. */
  private wantsOut(cell: Cell): boolean {
    if (!cell.actor) return true;
    try {
      return cell.actor.passivateNow?.() ?? false;
    } catch (err) {
      cell.ctx.log.error({ err }, 'actor passivateNow threw; staying alive');
      return false;
    }
  }

  /** Creates an instance and awaits its start(); on failure rejects the queued messages and discards it. */
  private async startActor(cell: Cell): Promise<boolean> {
    try {
      cell.actor = cell.factory(cell.ctx.id, cell.ctx);
      await cell.actor.start?.();
      return true;
    } catch (err) {
      cell.actor = undefined;
      cell.ctx.log.error({ err }, 'actor start failed');
      this.refuseQueued(cell, err);
      return false;
    }
  }

  private async deliver(cell: Cell, actor: Actor<unknown, unknown>, env: Envelope): Promise<void> {
    const t0 = this.clock.now();
    let reply: unknown;
    let failure: { err: unknown } | undefined;
    try {
      reply = await actor.handle(env.msg);
    } catch (err) {
      failure = { err };
    }
    const ms = this.clock.now() - t0;
    this.handleMs.count++;
    this.handleMs.sum += ms;
    this.handleMs.max = Math.max(this.handleMs.max, ms);
    if (!failure) {
      this.handled++;
      env.resolve?.(reply);
      return;
    }
    this.failed++;
    let decision: SupervisionDecision = 'restart';
    try {
      decision = actor.onError?.(failure.err) ?? 'restart';
    } catch (err) {
      cell.ctx.log.error({ err }, 'actor onError threw; restarting');
    }
    // 'resume' means the actor judged the failure harmless to its state (typically the caller's
    // mistake, already answered to the caller): not worth an error-level line.
    if (decision === 'resume') cell.ctx.log.debug({ err: failure.err }, 'actor handle refused a message');
    else cell.ctx.log.error({ err: failure.err, decision }, 'actor handle failed');
    env.reject?.(failure.err);
    if (decision === 'resume') return;
    // 'stop' refuses what is queued now; messages arriving during stop() go to a fresh instance.
    if (decision === 'stop') this.refuseQueued(cell, new ActorStoppedError(cell.ctx.kind, cell.ctx.id, { cause: failure.err }));
    await this.stopActor(cell, decision);
    if (decision === 'restart') await this.startActor(cell);
  }

  private async stopActor(cell: Cell, reason: string): Promise<void> {
    const actor = cell.actor;
    cell.actor = undefined;
    try {
      await actor?.stop?.();
      cell.ctx.log.debug({ reason }, 'actor stopped');
    } catch (err) {
      cell.ctx.log.error({ err, reason }, 'actor stop failed');
    }
  }

  private refuseQueued(cell: Cell, err: unknown): void {
    for (const env of cell.mailbox.splice(0)) env.reject?.(err);
  }

  private armIdle(cell: Cell, ms: number): void {
    cell.idleTimer = this.clock.setTimeout(() => this.onIdle(cell), ms);
  }

  /** One timer per cell, re-armed for the remainder instead of reset on every message (cheap under load). */
  private onIdle(cell: Cell): void {
    const idleFor = this.clock.now() - cell.lastIncoming;
    if (idleFor >= this.idleMs && !cell.running && this.mayPassivate(cell)) cell.running = this.passivate(cell);
    else this.armIdle(cell, idleFor < this.idleMs ? this.idleMs - idleFor : this.idleMs);
  }

  private mayPassivate(cell: Cell): boolean {
    try {
      return cell.actor?.canPassivate?.() ?? true;
    } catch (err) {
      cell.ctx.log.error({ err }, 'actor canPassivate threw; staying alive');
      return false;
    }
  }

  private async passivate(cell: Cell): Promise<void> {
    await this.stopActor(cell, 'idle');
    if (cell.mailbox.length === 0) {
      this.cells.delete(cell.key);
      cell.running = undefined;
      return;
    }
    // Messages arrived during stop(): keep the cell and hand them to a fresh instance.
    this.armIdle(cell, this.idleMs);
    await this.processNext(cell);
  }

  private async drainAndStop(cell: Cell): Promise<void> {
    while (cell.running) await cell.running;
    this.clock.clearTimeout(cell.idleTimer); // passivate() may have re-armed it during the drain
    await this.stopActor(cell, 'shutdown');
    this.cells.delete(cell.key);
  }
}
