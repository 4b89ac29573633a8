// The room actor: one per active room on a node, and the only writer of its messages. It checks
// membership (cached; told of joins, leaves and deletion on any node; a miss re-checks the store
// before refusing, and the commit itself refuses a sender who is no longer a member, so a change
// made through any node holds here by the time its reply is sent), sequences publishes and makes them
// durable in groups through the Bus (the messages that arrive while a commit is in flight go
// together in the next one; each sender's promise resolves only once its message is durable), dedups
// by (sender, cid), fans deliveries out once per encoding, and serves resume: a subscriber gets
// every message after `since`, then the live ones, with no gap and no duplicate. The replay runs
// beside the mailbox at the socket's pace; deliveries meanwhile are held for that connection and
// sent in the mailbox step that joins it to the live topic.

import { randomUUID } from 'node:crypto';
import type { Bus } from '../cluster/bus.js';
import { notFound, SbError } from '../errors.js';
import { CloseCode, type MessageFrame, type UserRef } from '../protocol/frames.js';
import { StoreUnavailableError, UniqueViolationError } from '../store/errors.js';
import { CommitRefusedError, type Message, type SequencedMessage } from '../store/messages.js';
import type { Store } from '../store/store.js';
import { type Connection, type Fanout, roomTopic } from './ports.js';
import type { Actor, ActorContext } from './runtime.js';

export interface PublishResult {
  message: Message;
  duplicate: boolean;
}

export type RoomMsg =
  | { type: 'publish'; sender: UserRef; cid: string; body: string }
  | { type: 'subscribe'; conn: Connection; reqId: number; since: number | undefined }
  | { type: 'unsubscribe'; conn: Connection }
  | { type: 'typing'; conn: Connection }
  | { type: 'deliver'; batch: Message[] }
  | { type: 'caughtUp'; connId: string; entry: CatchUp }
  | { type: 'member'; op: 'joined' | 'left'; user: UserRef }
  /** The store refused these senders at commit: they left (the notice may not have arrived yet). */
  | { type: 'evict'; userIds: string[] }
  | { type: 'remotePresence'; node: string; users: UserRef[]; ask: boolean }
  | { type: 'presenceTick' }
  | { type: 'remoteTyping'; user: UserRef }
  | { type: 'deleted' };

/** `publish` answers at once with the pending durability promise, so the mailbox keeps moving. */
export type RoomReply = { pending: Promise<PublishResult> } | undefined;

export interface RoomDeps {
  store: Store;
  bus: Bus;
  fanout: Fanout;
}

/** In a cluster, each node shares its present users this often; another node's entry lapses after 3 missed shares. */
export const PRESENCE_SHARE_MS = 3_000;
/** Tries per batch when a retry can fix the failure (a cid race). */
const MAX_COMMIT_ATTEMPTS = 5;
/** Largest group commit. */
const MAX_BATCH = 512;
/** Recent deliveries kept in memory so most resumes need no database read. */
const TAIL = 512;
/** Remembered (sender, cid) results, so retries skip the database. */
const RECENT_CIDS = 10_000;
/** Resuming further back than this is refused: page through history instead. */
export const MAX_REPLAY = 10_000;
/** Messages read from the store per replay query. */
const REPLAY_PAGE = 200;
/** Live messages held for one catching-up connection before it is cut off as too slow. */
const MAX_HELD = 10_000;

interface Pending {
  sender: UserRef;
  cid: string;
  body: string;
  resolve(r: PublishResult): void;
  reject(e: unknown): void;
}

/** A connection replaying history before it joins the live stream. */
interface CatchUp {
  conn: Connection;
  reqId: number;
  /** Deliveries that happened during the replay, sent right after it. */
  held: MessageFrame[];
  /** It was live before (a re-subscribe with `since`): already present, so no second snapshot. */
  wasLive: boolean;
}

interface Recent {
  promise: Promise<PublishResult>;
  settled: boolean;
}

export const toMessageFrame = (m: Message | SequencedMessage): MessageFrame => ({
  t: 'msg',
  room: m.roomId,
  seq: m.seq,
  mid: m.id,
  from: m.senderId,
  cid: m.cid,
  ts: m.createdAt.getTime(),
  body: m.body,
});

export class RoomActor implements Actor<RoomMsg, RoomReply> {
  private readonly topic: string;
  private gone = false;
  private direct = false;
  private members = new Set<string>();
  /** Highest seq assigned (durable or in flight). */
  private lastSeq = 0;
  /** Highest seq fanned out on this node. */
  private lastDelivered = 0;
  private readonly tail: MessageFrame[] = [];
  private readonly subs = new Map<string, Connection>();
  private readonly catchingUp = new Map<string, CatchUp>();
  private readonly present = new Map<string, { user: UserRef; conns: Set<string> }>();
  /** Other nodes' present users (cluster only), with when each last shared them. */
  private readonly remote = new Map<string, { users: UserRef[]; at: number }>();
  /** Whether this node has asked the others for their presence in this room yet. */
  private asked = false;
  private presenceTimer: unknown;
  private ticking = false;
  private readonly recent = new Map<string, Recent>();
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly id: string,
    private readonly ctx: ActorContext<RoomMsg, RoomReply>,
    private readonly deps: RoomDeps,
  ) {
    this.topic = roomTopic(id);
  }

  async start(): Promise<void> {
    const room = await this.deps.store.rooms.byId(this.id);
    if (!room) {
      this.gone = true;
      return;
    }
    this.direct = room.kind === 'direct';
    this.members = new Set(await this.deps.store.rooms.memberIds(this.id));
    this.lastSeq = room.lastSeq;
    this.lastDelivered = room.lastSeq;
    this.unlisten = this.deps.bus.listen(
      this.id,
      (batch) => {
        // A lost delivery is repaired from the store by the next one (see deliver).
        if (!this.ctx.self.tell({ type: 'deliver', batch })) this.ctx.log.error({ room: this.id, seq: batch[0]?.seq }, 'room mailbox full; delivery deferred');
      },
      (node, signal) => {
        // Presence is shared in full and periodically: a dropped update is healed by the next.
        if (signal.kind === 'presence') this.ctx.self.tell({ type: 'remotePresence', node, users: signal.users, ask: signal.ask });
        else if (signal.kind === 'typing') this.ctx.self.tell({ type: 'remoteTyping', user: signal.user });
        // A lost membership notice leaves only a live subscription running longer: access is
        // re-checked on a miss and the commit refuses a removed sender.
        else if (signal.kind === 'member') this.ctx.self.tell({ type: 'member', op: signal.op, user: signal.user });
        else this.ctx.self.tell({ type: 'deleted' });
      },
    );
  }

  async stop(): Promise<void> {
    this.ctx.clock.clearTimeout(this.presenceTimer);
    await this.flushing;
    this.unlisten?.();
    this.unlisten = undefined;
  }

  /**
   * A client's mistake (not a member, a conflict) leaves the state valid; anything else reloads it,
   * a store outage included (the store's errors are SbErrors for the clients' sake).
   */
  onError(err: unknown): 'resume' | 'restart' {
    return err instanceof SbError && !(err instanceof StoreUnavailableError) ? 'resume' : 'restart';
  }

  canPassivate(): boolean {
    return this.subs.size === 0 && this.catchingUp.size === 0 && this.queue.length === 0 && !this.flushing;
  }

  /** A room that does not exist (or was deleted) is not kept for whoever asked about it. */
  passivateNow(): boolean {
    return this.gone && this.canPassivate();
  }

  handle(msg: RoomMsg): RoomReply | Promise<RoomReply> {
    switch (msg.type) {
      case 'publish':
        return this.checked(msg.sender.id, () => ({ pending: this.publish(msg.sender, msg.cid, msg.body) }));
      case 'subscribe':
        return this.checked(msg.conn.user.id, () => {
          this.subscribe(msg.conn, msg.reqId, msg.since);
          return undefined;
        });
      case 'caughtUp':
        this.caughtUp(msg.connId, msg.entry);
        return;
      case 'unsubscribe':
        this.unsubscribe(msg.conn);
        return;
      case 'typing':
        return this.checked(msg.conn.user.id, () => {
          this.deps.fanout.publish(this.topic, { t: 'typing', room: this.id, user: msg.conn.user }, msg.conn);
          this.deps.bus.signal(this.id, { kind: 'typing', user: msg.conn.user });
          return undefined;
        });
      case 'deliver':
        return this.deliver(msg.batch);
      case 'remotePresence':
        this.remotePresence(msg.node, msg.users, msg.ask);
        return undefined;
      case 'presenceTick':
        this.presenceTick();
        return undefined;
      case 'remoteTyping':
        this.deps.fanout.publish(this.topic, { t: 'typing', room: this.id, user: msg.user });
        return undefined;
      case 'member':
        this.member(msg.op, msg.user);
        return;
      case 'evict':
        for (const id of msg.userIds) this.evict(id);
        return;
      case 'deleted':
        this.deleted();
        return;
    }
  }

  /**
   * Runs `then` (in this mailbox step) if the user is a member. A cache miss asks the store before
   * refusing: a join through another node may not have reached this cache yet.
   */
  private checked<T>(userId: string, then: () => T): T | Promise<T> {
    if (this.gone) throw notFound('room');
    if (this.members.has(userId)) return then();
    return this.deps.store.rooms.withRole(this.id, userId).then(
      (found) => {
        if (this.gone) throw notFound('room');
        if (!found) {
          // Deleted through another node, and the notice has not arrived (or was lost).
          this.deleted();
          throw notFound('room');
        }
        if (found.role) {
          this.members.add(userId);
          return then();
        }
        // A direct room does not exist for anyone but its two members (as over REST).
        if (this.direct) throw notFound('room');
        throw new SbError('NOT_MEMBER', 'you are not a member of this room');
      },
      (e: unknown) => {
        throw new SbError('UNAVAILABLE', 'membership could not be checked; retry', undefined, { cause: e });
      },
    );
  }

  private publish(sender: UserRef, cid: string, body: string): Promise<PublishResult> {
    const key = `${sender.id}\u0000${cid}`;
    const known = this.recent.get(key);
    if (known) {
      return known.promise.then((r) => {
        if (r.message.body !== body) throw conflict();
        return { message: r.message, duplicate: true };
      });
    }
    let pending!: Pending;
    const promise = new Promise<PublishResult>((resolve, reject) => {
      pending = { sender, cid, body, resolve, reject };
    });
    const entry: Recent = { promise, settled: false };
    promise.then(
      () => {
        entry.settled = true;
      },
      () => this.recent.delete(key),
    );
    this.remember(key, entry);
    this.queue.push(pending);
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
    });
    return promise;
  }

  private remember(key: string, entry: Recent): void {
    this.recent.set(key, entry);
    if (this.recent.size <= RECENT_CIDS) return;
    for (const [k, v] of this.recent) {
      if (this.recent.size <= RECENT_CIDS) break;
      if (v.settled) this.recent.delete(k);
    }
  }

  /** Commits the queue in batches until it is empty. Runs beside the mailbox, never inside it. */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await this.commitWithRetries(batch);
      } catch (e) {
        if (e instanceof CommitRefusedError && e.roomGone) {
          for (const p of batch) p.reject(notFound('room'));
          this.ctx.self.tell({ type: 'deleted' });
          continue;
        }
        this.ctx.log.error({ err: e, room: this.id, batch: batch.length }, 'group commit failed; publishers get a retryable nack');
        const failure = new SbError('UNAVAILABLE', 'the message could not be stored; retry with the same cid', undefined, { cause: e });
        for (const p of batch) p.reject(failure);
        // Re-read where the room really is before sequencing anything else.
        const room = await this.deps.store.rooms.byId(this.id).catch(() => undefined);
        if (room) this.lastSeq = Math.max(room.lastSeq, this.lastDelivered);
      }
    }
  }

  /**
   * Commits, retrying what a retry fixes: a cid that raced into another room between the dedup read
   * and the insert (read again: the loser is answered with a conflict), and senders the store
   * refused as no longer members (they get NOT_MEMBER, the others are committed without them).
   * Another node's sequencer having written meanwhile needs no retry: the store renumbers the
   * batch after it. Already settled promises ignore a retry.
   */
  private async commitWithRetries(initial: Pending[]): Promise<void> {
    let batch = initial;
    for (let attempt = 1; ; ) {
      try {
        return await this.commit(batch);
      } catch (e) {
        if (e instanceof CommitRefusedError && !e.roomGone) {
          // Each refusal shrinks the batch, so this ends.
          const refused = new Set(e.notMembers);
          const notMember = new SbError('NOT_MEMBER', 'you are not a member of this room');
          for (const p of batch) if (refused.has(p.sender.id)) p.reject(notMember);
          batch = batch.filter((p) => !refused.has(p.sender.id));
          this.ctx.self.tell({ type: 'evict', userIds: e.notMembers });
          continue;
        }
        if (!(e instanceof UniqueViolationError) || attempt >= MAX_COMMIT_ATTEMPTS) throw e;
        attempt++;
        this.ctx.log.debug({ room: this.id, attempt }, 'a cid raced into the store; recommitting the batch');
      }
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    // Dedup against what is already stored (a retry after a restart, or a cid used in another room).
    const stored = await this.deps.store.messages.byCids(batch.map((p) => ({ senderId: p.sender.id, cid: p.cid })));
    const byKey = new Map(stored.map((m) => [`${m.senderId}\u0000${m.cid}`, m]));
    const fresh: Pending[] = [];
    for (const p of batch) {
      const m = byKey.get(`${p.sender.id}\u0000${p.cid}`);
      if (!m) fresh.push(p);
      else if (m.roomId !== this.id || m.body !== p.body) p.reject(conflict());
      else {
        p.resolve({ message: m, duplicate: true });
        // Its first attempt may have committed on a node that failed before fanning it out.
        if (m.seq > this.lastDelivered) this.deps.bus.announce(this.id, [m]);
      }
    }
    if (fresh.length === 0) return;
    const expected = this.lastSeq;
    const now = new Date();
    const sequenced: SequencedMessage[] = fresh.map((p, i) => ({
      id: randomUUID(),
      roomId: this.id,
      seq: expected + i + 1,
      senderId: p.sender.id,
      cid: p.cid,
      body: p.body,
      createdAt: now,
    }));
    let committed: SequencedMessage[];
    try {
      committed = await this.deps.bus.append(this.id, sequenced);
    } catch (e) {
      this.lastSeq = expected;
      throw e;
    }
    // Renumbered when another node wrote meanwhile; its messages reach this node as a gap to repair.
    this.lastSeq = Math.max((committed.at(-1) as SequencedMessage).seq, this.lastDelivered);
    fresh.forEach((p, i) => {
      p.resolve({ message: committed[i] as SequencedMessage, duplicate: false });
    });
  }

  /**
   * Fans a committed batch out. A batch that does not follow the last delivered seq (a delivery
   * lost on the way, e.g. to a full mailbox) is preceded by the missing messages, read from the
   * store in this mailbox step, so subscribers never see a gap.
   */
  private deliver(batch: Message[]): Promise<undefined> | undefined {
    const next = batch.find((m) => m.seq > this.lastDelivered);
    if (!next) return;
    if (next.seq === this.lastDelivered + 1) {
      this.fanOut(batch);
      return;
    }
    this.ctx.log.warn({ room: this.id, expected: this.lastDelivered + 1, got: next.seq }, 'delivery gap; repairing from the store');
    return this.deps.store.messages.range(this.id, this.lastDelivered, next.seq - 1).then((missing) => {
      this.fanOut(missing);
      this.fanOut(batch);
      return undefined;
    });
  }

  private fanOut(batch: (Message | SequencedMessage)[]): void {
    for (const m of batch) {
      if (m.seq <= this.lastDelivered) continue;
      const frame = toMessageFrame(m);
      this.tail.push(frame);
      if (this.tail.length > TAIL) this.tail.shift();
      this.deps.fanout.publish(this.topic, frame);
      for (const entry of this.catchingUp.values()) {
        entry.held.push(frame);
        if (entry.held.length > MAX_HELD) {
          this.catchingUp.delete(entry.conn.id);
          entry.conn.close(CloseCode.SLOW_CONSUMER, 'could not catch up with the room: reconnect and resume');
        }
      }
      this.lastDelivered = m.seq;
    }
    if (this.lastSeq < this.lastDelivered) this.lastSeq = this.lastDelivered;
  }

  private subscribe(conn: Connection, reqId: number, since: number | undefined): void {
    this.leaveCatchUp(conn.id);
    if (since === undefined || since >= this.lastDelivered) {
      this.join(conn, reqId);
      return;
    }
    if (this.lastDelivered - since > MAX_REPLAY) {
      throw new SbError('VALIDATION', `since is more than ${MAX_REPLAY} messages back; page through history, then subscribe`, { field: 'since' });
    }
    // Already live (a re-subscribe with `since`): step off the topic so replay and live cannot
    // interleave; `join` puts it back after the replay. Presence is unchanged.
    const wasLive = this.subs.delete(conn.id);
    if (wasLive) conn.unsubscribe(this.topic);
    // Replay (since, upTo] at the pace the socket drains, beside the mailbox; deliveries after upTo
    // are held for this connection meanwhile, and `caughtUp` (a mailbox step) sends them and joins.
    const upTo = this.lastDelivered;
    const first = this.tail[0];
    const fromTail = first && first.seq <= since + 1 ? this.tail.filter((f) => f.seq > since) : undefined;
    const entry: CatchUp = { conn, reqId, held: [], wasLive };
    this.catchingUp.set(conn.id, entry);
    this.replay(entry, since, upTo, fromTail).then(
      () => this.ctx.self.tell({ type: 'caughtUp', connId: conn.id, entry }),
      (e: unknown) => {
        this.ctx.log.warn({ err: e, room: this.id, conn: conn.id }, 'replay failed');
        if (this.catchingUp.get(conn.id) === entry) this.catchingUp.delete(conn.id);
        conn.send({ t: 'error', id: reqId, code: 'UNAVAILABLE', message: 'could not read the history to resume; subscribe again' });
      },
    );
  }

  /** Sends the frames of (since, upTo] from the tail snapshot or the store, waiting for the socket to drain. */
  private async replay(entry: CatchUp, since: number, upTo: number, fromTail: MessageFrame[] | undefined): Promise<void> {
    const live = () => !entry.conn.closed && this.catchingUp.get(entry.conn.id) === entry;
    if (fromTail) {
      for (const f of fromTail) {
        await entry.conn.writable();
        if (!live()) return;
        entry.conn.send(f);
      }
      return;
    }
    for (let after = since; after < upTo; ) {
      const page = await this.deps.store.messages.range(this.id, after, Math.min(upTo, after + REPLAY_PAGE));
      if (page.length === 0) break;
      for (const m of page) {
        await entry.conn.writable();
        if (!live()) return;
        entry.conn.send(toMessageFrame(m));
      }
      after = (page[page.length - 1] as Message).seq;
    }
  }

  private caughtUp(connId: string, entry: CatchUp): void {
    if (this.catchingUp.get(connId) !== entry) return;
    this.catchingUp.delete(connId);
    if (entry.conn.closed) return;
    for (const f of entry.held) entry.conn.send(f);
    this.join(entry.conn, entry.reqId, entry.wasLive);
  }

  /** Cancels a replay in progress; its `sub` request still gets its one reply. Returns whether there was one. */
  private leaveCatchUp(connId: string): boolean {
    const entry = this.catchingUp.get(connId);
    if (!entry) return false;
    this.catchingUp.delete(connId);
    entry.conn.send({ t: 'error', id: entry.reqId, code: 'CANCELLED', message: 'a later sub or unsub for this room replaced this subscription' });
    return true;
  }

  /** Joins the live stream: from here on deliveries reach the connection through the topic. */
  private join(conn: Connection, reqId: number, wasLive = false): void {
    conn.subscribe(this.topic);
    const first = !wasLive && !this.subs.has(conn.id);
    this.subs.set(conn.id, conn);
    conn.send({ t: 'subscribed', id: reqId, room: this.id, seq: this.lastDelivered });
    if (first) this.arrive(conn);
  }

  private unsubscribe(conn: Connection): void {
    const wasCatchingUp = this.leaveCatchUp(conn.id);
    const wasLive = this.subs.delete(conn.id);
    if (!wasCatchingUp && !wasLive) return;
    if (wasLive) conn.unsubscribe(this.topic);
    const p = this.present.get(conn.user.id);
    if (!p) return;
    p.conns.delete(conn.id);
    if (p.conns.size > 0) return;
    this.changePresence(() => this.present.delete(conn.user.id));
    this.sharePresence();
  }

  private arrive(conn: Connection): void {
    let p = this.present.get(conn.user.id);
    if (!p) {
      const fresh = { user: conn.user, conns: new Set<string>() };
      p = fresh;
      this.changePresence(() => this.present.set(conn.user.id, fresh), conn);
      this.sharePresence();
    } else if (!this.asked) this.sharePresence();
    p.conns.add(conn.id);
    conn.send({ t: 'presence', room: this.id, op: 'snapshot', users: [...this.visible().values()] });
  }

  /** Everyone present in the room: here, and on the other nodes of a cluster. */
  private visible(): Map<string, UserRef> {
    const all = new Map<string, UserRef>();
    for (const p of this.present.values()) all.set(p.user.id, p.user);
    for (const r of this.remote.values()) for (const u of r.users) all.set(u.id, u);
    return all;
  }

  /** Keeps the presence timer running while anyone is present, here or elsewhere (and only then: it would keep the actor from passivating). */
  private ensureTick(): void {
    if (this.ticking || (this.present.size === 0 && this.remote.size === 0)) return;
    this.ticking = true;
    this.presenceTimer = this.ctx.clock.setTimeout(() => {
      this.ticking = false;
      this.ctx.self.tell({ type: 'presenceTick' });
    }, PRESENCE_SHARE_MS);
  }

  /** Applies a change and tells the subscribers who appeared (except `arriving`, who gets a snapshot) and who left. */
  private changePresence(change: () => void, arriving?: Connection): void {
    const before = this.visible();
    change();
    const after = this.visible();
    const joined = [...after.values()].filter((u) => !before.has(u.id));
    const left = [...before.values()].filter((u) => !after.has(u.id));
    if (joined.length) this.deps.fanout.publish(this.topic, { t: 'presence', room: this.id, op: 'join', users: joined }, arriving);
    if (left.length) this.deps.fanout.publish(this.topic, { t: 'presence', room: this.id, op: 'leave', users: left });
    this.ensureTick();
  }

  private sharePresence(): void {
    this.deps.bus.signal(this.id, { kind: 'presence', users: [...this.present.values()].map((p) => p.user), ask: !this.asked });
    this.asked = true;
  }

  private remotePresence(node: string, users: UserRef[], ask: boolean): void {
    // With nobody subscribed here, other nodes' presence is nobody's business (and tracking it would
    // keep this actor from passivating); the first arrival asks for it again.
    if (this.subs.size === 0 && this.catchingUp.size === 0) {
      this.remote.clear();
      this.asked = false;
      return;
    }
    if (ask && this.present.size > 0) this.sharePresence();
    const now = this.ctx.clock.now();
    this.changePresence(() => {
      if (users.length) this.remote.set(node, { users, at: now });
      else this.remote.delete(node);
    });
  }

  /** Re-shares this node's presence, and forgets other nodes' that lapsed (a node that died). */
  private presenceTick(): void {
    if (this.present.size > 0) this.sharePresence();
    const stale = this.ctx.clock.now() - 3 * PRESENCE_SHARE_MS;
    this.changePresence(() => {
      for (const [node, r] of this.remote) if (r.at < stale) this.remote.delete(node);
    });
  }

  private member(op: 'joined' | 'left', user: UserRef): void {
    if (this.gone) return;
    if (op === 'joined') {
      this.members.add(user.id);
      this.deps.fanout.publish(this.topic, { t: 'event', room: this.id, kind: 'member_joined', user });
      return;
    }
    this.deps.fanout.publish(this.topic, { t: 'event', room: this.id, kind: 'member_left', user });
    this.evict(user.id);
  }

  /** Forgets a member and ends their subscriptions here. */
  private evict(userId: string): void {
    this.members.delete(userId);
    for (const conn of this.connections()) if (conn.user.id === userId) this.unsubscribe(conn);
  }

  /** Every connection subscribed or catching up, as a snapshot. */
  private connections(): Connection[] {
    return [...this.subs.values(), ...[...this.catchingUp.values()].map((e) => e.conn)];
  }

  private deleted(): void {
    if (this.gone) return;
    this.deps.fanout.publish(this.topic, { t: 'event', room: this.id, kind: 'room_deleted' });
    for (const conn of this.connections()) this.unsubscribe(conn);
    this.gone = true;
    this.members.clear();
  }
}

const conflict = () => new SbError('CONFLICT', 'this cid was already used for a different message', { field: 'cid' });
