// The room actor: one per active room on a node, and the only writer of its messages. It checks
// membership (cached; told of joins, leaves and deletion on any node; a miss re-checks the store
// before refusing, and the commit itself refuses a sender who is no longer a member, so a change
// made through any node holds here by the time its reply is sent), sequences publishes and commits
// them to the store in groups (the messages that arrive while a commit is in flight go together in
// the next one; each sender's promise resolves only once its message is durable), then announces
// them on the Bus, which only carries news; it dedups by (sender, cid), reads from the store what the
// Bus says was missed, fans deliveries out once per encoding, and serves resume: a subscriber gets
// every message after `since`, then the live ones, with no gap and no duplicate (the replay runs
// beside the mailbox at the socket's pace; deliveries meanwhile are held for that connection and
// sent in the mailbox step that joins it to the live topic). Timeline events (joins, removals,
// deletions: written by RoomsService with the change) arrive on the Bus like messages and take
// their place in the same order; delivering one updates the membership cache. direct-block.ts:
// blocked direct rooms; room-tail.ts: frames and the in-memory tail.

import { randomUUID } from 'node:crypto';
import { assertMember, notMember } from '../chat/room-rules.js';
import type { Bus } from '../cluster/bus.js';
import type { Presence } from '../cluster/presence.js';
import { notFound, SbError } from '../errors.js';
import type { Attachment } from '../protocol/frames.js';
import { CloseCode, type TimelineFrame, type UserRef } from '../protocol/frames.js';
import { StoreUnavailableError, UniqueViolationError } from '../store/errors.js';
import { CommitRefusedError, type Message, type SequencedMessage } from '../store/messages.js';
import type { Store } from '../store/store.js';
import { DirectBlock, unblocked } from './direct-block.js';
import { type Connection, type Fanout, roomTopic } from './ports.js';
import { storedHead } from './room-heads.js';
import { RoomPresence } from './room-presence.js';
import { type CatchUp, type Ended, NO_LONGER_MEMBER, REPLACED, ROOM_DELETED, replay } from './room-replay.js';
import { RoomTail, samePost, toFrame } from './room-tail.js';
import type { Actor, ActorContext } from './runtime.js';

export interface PublishResult {
  message: Message;
  duplicate: boolean;
}

export type RoomMsg =
  | { type: 'publish'; sender: UserRef; cid: string; body: string; attachments?: Attachment[] | undefined }
  | { type: 'subscribe'; conn: Connection; reqId: number; since: number | undefined }
  | { type: 'unsubscribe'; conn: Connection }
  | { type: 'typing'; conn: Connection }
  | { type: 'deliver'; batch: Message[] }
  /** The store holds messages up to `head` that this node was not given (the Bus missed them). */
  | { type: 'behind'; head: number }
  | { type: 'caughtUp'; connId: string; entry: CatchUp }
  /** The store refused these senders at commit: they left (the notice may not have arrived yet). */
  | { type: 'evict'; userIds: string[] }
  | { type: 'remotePresence'; node: string; users: UserRef[]; ask: boolean }
  | { type: 'presenceTick' }
  | { type: 'remoteTyping'; user: UserRef }
  | { type: 'deleted' }
  | { type: 'blocked'; blocked: boolean };

/** `publish` answers at once with the pending durability promise, so the mailbox keeps moving. */
/** The reply to each message that has one: a publish answers with the promise of its ack. */
export interface RoomReplies {
  publish: { pending: Promise<PublishResult> };
}
export type RoomReply = RoomReplies['publish'] | undefined;

export interface RoomDeps {
  store: Store;
  bus: Bus;
  presence: Presence;
  fanout: Fanout;
  /** Wraps each group commit of `size` messages (metrics time it and count its outcome). */
  observeCommit?: <T>(size: number, commit: () => Promise<T>) => Promise<T>;
}

export { PRESENCE_SHARE_MS } from './room-presence.js';

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
/** Live messages held for one catching-up connection before it is cut off as too slow. */
const MAX_HELD = 10_000;

interface Pending {
  sender: UserRef;
  cid: string;
  body: string;
  attachments: Attachment[] | undefined;
  resolve(r: PublishResult): void;
  reject(e: unknown): void;
}

interface Recent {
  promise: Promise<PublishResult>;
  settled: boolean;
  /** Its seq, once committed (a deletion forgets it: a retry then finds the tombstone in the store). */
  seq?: number;
}

export class RoomActor implements Actor<RoomMsg, RoomReply> {
  private readonly topic: string;
  private gone = false;
  /** For a direct room: whether its members blocked each other (then nobody may post or type). */
  private block: DirectBlock | undefined;
  private members = new Set<string>();
  /** Highest seq assigned (durable or in flight). */
  private lastSeq = 0;
  /** Highest seq fanned out on this node. */
  private lastDelivered = 0;
  private readonly tail = new RoomTail(TAIL);
  private readonly subs = new Map<string, Connection>();
  private readonly catchingUp = new Map<string, CatchUp>();
  private readonly presence: RoomPresence;
  private readonly recent = new Map<string, Recent>();
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private unlisten: (() => void) | undefined;
  private unlistenPresence: (() => void) | undefined;

  constructor(
    private readonly id: string,
    private readonly ctx: ActorContext<RoomMsg, RoomReply, RoomReplies>,
    private readonly deps: RoomDeps,
  ) {
    this.topic = roomTopic(id);
    this.presence = new RoomPresence(id, this.topic, { presence: deps.presence, fanout: deps.fanout, clock: ctx.clock }, () =>
      this.ctx.self.tell({ type: 'presenceTick' }),
    );
  }

  async start(): Promise<void> {
    // Listening first: news announced while the room is read waits in the mailbox (handled once
    // start is done, and skipped if the read already covers it), so none falls between the two.
    this.unlisten = this.deps.bus.listen(this.id, {
      messages: (batch) => {
        // A lost delivery is repaired from the store by the next one (see deliver).
        if (!this.ctx.self.tell({ type: 'deliver', batch })) this.ctx.log.error({ room: this.id, seq: batch[0]?.seq }, 'room mailbox full; delivery deferred');
      },
      missed: () => void this.compareHead(),
      // A lost notice leaves only a live subscription running longer: the commit refuses a sender
      // of a deleted room.
      deleted: () => this.ctx.self.tell({ type: 'deleted' }),
    });
    // Presence is shared in full and periodically: a dropped update is healed by the next.
    this.unlistenPresence = this.deps.presence.listen(this.id, (node, news) =>
      this.ctx.self.tell(
        news.kind === 'present' ? { type: 'remotePresence', node, users: news.users, ask: news.ask } : { type: 'remoteTyping', user: news.user },
      ),
    );
    try {
      const room = await this.deps.store.rooms.byId(this.id);
      if (!room) {
        this.gone = true;
        this.unlistenAll();
        return;
      }
      this.members = new Set(await this.deps.store.rooms.memberIds(this.id));
      if (room.kind === 'direct') {
        this.block = new DirectBlock(this.id, this.deps.store, this.ctx.clock, (blocked) => this.presence.setHidden(blocked, this.connections()));
        await this.block.load();
      }
      this.lastSeq = room.lastSeq;
      this.lastDelivered = room.lastSeq;
    } catch (e) {
      this.unlistenAll(); // a failed start is never stopped
      throw e;
    }
  }

  private unlistenAll(): void {
    this.unlisten?.();
    this.unlistenPresence?.();
    this.unlisten = this.unlistenPresence = undefined;
  }

  async stop(): Promise<void> {
    this.presence.stop();
    await this.flushing;
    this.unlistenAll();
  }

  /**
   * The Bus may have missed news of this room: compares the stored head with what was delivered.
   * Outside the mailbox (the mailbox step re-checks), so a room that is not behind costs no message
   * (which would keep it from passivating) and all rooms' heads are read in one query.
   */
  private async compareHead(): Promise<void> {
    try {
      const head = await storedHead(this.deps.store, this.id);
      if (this.unlisten && head !== undefined && head > this.lastDelivered) this.ctx.self.tell({ type: 'behind', head });
    } catch (e) {
      this.ctx.log.warn({ err: e, room: this.id }, 'could not compare with the stored head; the next check retries');
    }
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
        return this.checked(msg.sender.id, () => unblocked(this.block, () => ({ pending: this.publish(msg.sender, msg.cid, msg.body, msg.attachments) })));
      case 'blocked':
        this.block?.set(msg.blocked);
        return;
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
        return this.checked(msg.conn.user.id, () => unblocked(this.block, () => this.typing(msg.conn)));
      case 'deliver':
        return this.deliver(msg.batch);
      case 'behind':
        if (msg.head <= this.lastDelivered) return;
        // A store that cannot be read now is asked again at the Bus's next `missed`: failing the
        // step would restart the actor, and a restart during an outage would leave its subscribers
        // with nobody listening for the room.
        return this.deps.store.messages.range(this.id, this.lastDelivered, msg.head).then(
          (missing) => {
            this.fanOut(missing);
            return undefined;
          },
          (e: unknown) => {
            this.ctx.log.warn({ err: e, room: this.id }, 'could not read the messages the Bus missed; the next check retries');
            return undefined;
          },
        );
      case 'remotePresence':
        this.presence.remoteShared(msg.node, msg.users, msg.ask, this.subs.size > 0 || this.catchingUp.size > 0);
        return undefined;
      case 'presenceTick':
        this.presence.tick();
        return undefined;
      case 'remoteTyping':
        this.deps.fanout.publish(this.topic, { t: 'typing', room: this.id, user: msg.user });
        return undefined;
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
  private checked<T>(userId: string, then: () => T | Promise<T>): T | Promise<T> {
    if (this.gone) throw notFound('room');
    if (this.members.has(userId)) return then();
    return this.deps.store.rooms.withRole(this.id, userId).then(
      (found) => {
        if (this.gone) throw notFound('room');
        // Deleted through another node, and the notice has not arrived (or was lost).
        if (!found) this.deleted();
        assertMember(found);
        this.members.add(userId);
        return then();
      },
      (e: unknown) => {
        throw new SbError('UNAVAILABLE', 'membership could not be checked; retry', undefined, { cause: e });
      },
    );
  }

  private typing(conn: Connection): undefined {
    this.deps.fanout.publish(this.topic, { t: 'typing', room: this.id, user: conn.user }, conn);
    this.deps.presence.typing(this.id, conn.user);
  }

  private publish(sender: UserRef, cid: string, body: string, attachments: Attachment[] | undefined): Promise<PublishResult> {
    const key = `${sender.id}\u0000${cid}`;
    const known = this.recent.get(key);
    if (known) {
      return known.promise.then((r) => {
        if (!samePost(r.message, body, attachments) && !r.message.deletedAt && !r.message.editedAt) throw conflict();
        return { message: r.message, duplicate: true };
      });
    }
    let pending!: Pending;
    const promise = new Promise<PublishResult>((resolve, reject) => {
      pending = { sender, cid, body, attachments, resolve, reject };
    });
    const entry: Recent = { promise, settled: false };
    promise.then(
      (r) => {
        entry.settled = true;
        entry.seq = r.message.seq;
      },
      () => this.recent.delete(key),
    );
    this.remember(key, entry);
    this.queue.push(pending);
    this.flushing ??= this.flush();
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

  /**
   * Commits the queue in batches until it is empty. Runs beside the mailbox, never inside it. It
   * clears `flushing` in the same step that finds the queue empty: a publish queued after that
   * check must start a new flush, not join one that is ending.
   */
  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.commitGroup(this.queue.splice(0, MAX_BATCH));
    } finally {
      this.flushing = undefined;
    }
  }

  private async commitGroup(batch: Pending[]): Promise<void> {
    try {
      await this.commitWithRetries(batch);
    } catch (e) {
      if (e instanceof CommitRefusedError && e.roomGone) {
        for (const p of batch) p.reject(notFound('room'));
        this.ctx.self.tell({ type: 'deleted' });
        return;
      }
      this.ctx.log.error({ err: e, room: this.id, batch: batch.length }, 'group commit failed; publishers get a retryable nack');
      const failure = new SbError('UNAVAILABLE', 'the message could not be stored; retry with the same cid', undefined, { cause: e });
      for (const p of batch) p.reject(failure);
      // Re-read where the room really is before sequencing anything else.
      const room = await this.deps.store.rooms.byId(this.id).catch(() => undefined);
      if (room) this.lastSeq = Math.max(room.lastSeq, this.lastDelivered);
    }
  }

  /**
   * Commits, retrying what a retry fixes: a cid the store already has (read what is stored, then
   * commit the rest: a repeat gets its original, a cid from another room a conflict), and senders the store
   * refused as no longer members (they get NOT_MEMBER, the others are committed without them).
   * Another node's sequencer having written meanwhile needs no retry: the store renumbers the
   * batch after it. Already settled promises ignore a retry.
   */
  private async commitWithRetries(initial: Pending[]): Promise<void> {
    let batch = initial;
    for (let attempt = 1; ; ) {
      try {
        return await this.commit(batch, attempt > 1);
      } catch (e) {
        if (e instanceof CommitRefusedError && !e.roomGone) {
          // Each refusal shrinks the batch, so this ends.
          const refused = new Set(e.notMembers);
          const refusal = notMember();
          for (const p of batch) if (refused.has(p.sender.id)) p.reject(refusal);
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

  /**
   * One group commit. The first attempt writes straight away: the actor already answers the cids it
   * remembers, so a cid the store has (a retry after a restart, or one used in another room) is
   * rare, and the store refuses it with a unique violation. Then `dedup` reads what is stored first.
   */
  private async commit(batch: Pending[], dedup: boolean): Promise<void> {
    const stored = dedup ? await this.deps.store.messages.byCids(batch.map((p) => ({ senderId: p.sender.id, cid: p.cid }))) : [];
    const byKey = new Map(stored.map((m) => [`${m.senderId}\u0000${m.cid}`, m]));
    const fresh: Pending[] = [];
    for (const p of batch) {
      const m = byKey.get(`${p.sender.id}\u0000${p.cid}`);
      if (!m) fresh.push(p);
      // The same cid and text, or a message changed since (edited, deleted): a retry of it.
      else if (m.roomId !== this.id || (!samePost(m, p.body, p.attachments) && !m.deletedAt && !m.editedAt)) p.reject(conflict());
      else {
        p.resolve({ message: m, duplicate: true });
        // Its first attempt may have committed on a node that failed before fanning it out.
        if (m.seq > this.lastDelivered) this.deps.bus.announce(this.id, [m]);
      }
    }
    if (fresh.length === 0) return;
    const expected = this.lastSeq;
    const now = new Date();
    const sequenced: SequencedMessage[] = fresh.map((p, i) => {
      const m: SequencedMessage = { id: randomUUID(), roomId: this.id, seq: expected + i + 1, senderId: p.sender.id, cid: p.cid, body: p.body, createdAt: now };
      if (p.attachments?.length) m.attachments = p.attachments;
      return m;
    });
    let committed: SequencedMessage[];
    try {
      // Durable, in order, right after the room's last durable message (renumbered if another
      // node's sequencer wrote since `expected`); refused when the room is gone or a sender left.
      const insert = () => this.deps.store.messages.insertSequenced(this.id, sequenced);
      committed = await (this.deps.observeCommit ? this.deps.observeCommit(sequenced.length, insert) : insert());
    } catch (e) {
      this.lastSeq = expected;
      throw e;
    }
    this.deps.bus.announce(this.id, committed);
    // Renumbered when another node wrote meanwhile; its messages reach this node as a gap to repair.
    this.lastSeq = Math.max((committed.at(-1) as SequencedMessage).seq, this.lastDelivered);
    for (const [i, p] of fresh.entries()) p.resolve({ message: committed[i] as SequencedMessage, duplicate: false });
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
    // As for `behind`: a store that cannot be read now leaves the gap open, not skipped, for the
    // next batch or the Bus's next `missed` to repair; failing the step would restart the actor,
    // whose new instance would start from the stored head and never deliver the gap.
    return this.deps.store.messages.range(this.id, this.lastDelivered, next.seq - 1).then(
      (missing) => {
        this.fanOut(missing);
        if (this.lastDelivered + 1 >= next.seq) this.fanOut(batch);
        else this.ctx.log.warn({ room: this.id, expected: this.lastDelivered + 1, got: next.seq }, 'the gap is not all stored yet; the next check retries');
        return undefined;
      },
      (e: unknown) => {
        this.ctx.log.warn({ err: e, room: this.id }, 'could not read a delivery gap; the next check retries');
        return undefined;
      },
    );
  }

  private fanOut(batch: (Message | SequencedMessage)[]): void {
    for (const m of batch) {
      if (m.seq <= this.lastDelivered) continue;
      const frame = toFrame(m);
      this.tail.push(frame);
      this.deps.fanout.publish(this.topic, frame);
      if (frame.t === 'event') this.applied(frame);
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
    const fromTail = this.tail.after(since);
    const entry: CatchUp = { conn, reqId, held: [], wasLive };
    this.catchingUp.set(conn.id, entry);
    const live = () => !conn.closed && this.catchingUp.get(conn.id) === entry;
    replay(this.deps.store, this.id, entry, { since, upTo, fromTail }, live).then(
      () => this.ctx.self.tell({ type: 'caughtUp', connId: conn.id, entry }),
      (e: unknown) => {
        this.ctx.log.warn({ err: e, room: this.id, conn: conn.id }, 'replay failed');
        if (this.catchingUp.get(conn.id) === entry) this.catchingUp.delete(conn.id);
        conn.send({ t: 'error', id: reqId, code: 'UNAVAILABLE', message: 'could not read the history to resume; subscribe again' });
      },
    );
  }

  private caughtUp(connId: string, entry: CatchUp): void {
    if (this.catchingUp.get(connId) !== entry) return;
    this.catchingUp.delete(connId);
    if (entry.conn.closed) return;
    for (const f of entry.held) entry.conn.send(f);
    this.join(entry.conn, entry.reqId, entry.wasLive);
  }

  /** Cancels a replay in progress; its `sub` request still gets its one reply, saying `why`. Returns whether there was one. */
  private leaveCatchUp(connId: string, why: Ended = REPLACED): boolean {
    const entry = this.catchingUp.get(connId);
    if (!entry) return false;
    this.catchingUp.delete(connId);
    entry.conn.send({ t: 'error', id: entry.reqId, ...why });
    return true;
  }

  /** Joins the live stream: from here on deliveries reach the connection through the topic. */
  private join(conn: Connection, reqId: number, wasLive = false): void {
    conn.subscribe(this.topic);
    const first = !wasLive && !this.subs.has(conn.id);
    this.subs.set(conn.id, conn);
    conn.send({ t: 'subscribed', id: reqId, room: this.id, seq: this.lastDelivered });
    if (first) this.presence.arrive(conn);
  }

  private unsubscribe(conn: Connection, why?: Ended): void {
    const wasCatchingUp = this.leaveCatchUp(conn.id, why);
    const wasLive = this.subs.delete(conn.id);
    if (!wasCatchingUp && !wasLive) return;
    if (wasLive) conn.unsubscribe(this.topic);
    this.presence.depart(conn);
  }

  /** A timeline event was delivered (its subject saw it first): the caches follow. */
  private applied(e: TimelineFrame & { t: 'event' }): void {
    switch (e.kind) {
      case 'member_joined':
        this.members.add(e.user.id);
        return;
      case 'member_left':
      case 'member_removed':
      case 'member_banned':
        this.evict(e.user.id);
        return;
      case 'message_deleted':
      case 'message_edited':
        this.tail.changed(e);
        // A retry of its cid finds the current state in the store.
        for (const [k, v] of this.recent) if (v.seq === e.target) this.recent.delete(k);
        return;
    }
  }

  /**
   * Forgets a member and ends their subscriptions here: a live one is told (`unsubscribed`), a
   * replay in progress ends its `sub` with NOT_MEMBER.
   */
  private evict(userId: string): void {
    this.members.delete(userId);
    for (const conn of this.connections()) {
      if (conn.user.id !== userId) continue;
      const live = this.subs.has(conn.id);
      this.unsubscribe(conn, NO_LONGER_MEMBER);
      if (live) conn.send({ t: 'unsubscribed', room: this.id, ...NO_LONGER_MEMBER });
    }
  }

  /** Every connection subscribed or catching up, as a snapshot. */
  private connections(): Connection[] {
    return [...this.subs.values(), ...[...this.catchingUp.values()].map((e) => e.conn)];
  }

  private deleted(): void {
    if (this.gone) return;
    this.deps.fanout.publish(this.topic, { t: 'event', room: this.id, kind: 'room_deleted' });
    for (const conn of this.connections()) this.unsubscribe(conn, ROOM_DELETED);
    this.gone = true;
    this.members.clear();
  }
}

const conflict = () => new SbError('CONFLICT', 'this cid was already used for a different message', { field: 'cid' });
