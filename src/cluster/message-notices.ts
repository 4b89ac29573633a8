// Live notices of new messages, to the people they concern wherever they are connected. The node
// that committed a batch (or wrote a timeline event) announces a compact digest of it on one
// cluster-wide subject (`sb.<cluster>.notices`; in-process on a single node): per entry its seq,
// sender, a preview and the names it mentions, or for an event its kind and whom it concerns.
// Every node keeps an index of the rooms of the people connected to it (loaded from the store when
// a person's first socket opens, then kept current by the digests' membership events and their own
// stream's notices), and sends each local member a `notice` per digest, by their level in the room.
//
// The digests are at most once, like all core NATS news. What guards privacy is the room's seq:
// each digest carries every seq it covers, so a node that sees a gap (it missed a digest, which may
// have held a removal) reads the room's local members again from the store before sending
// anything more of that room, one room at a time in order. Messages are never stored per person:
// a device that was offline asks `feed` for the rooms it has unread messages in.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import type { MessageNoticeFrame, NotifyLevel, StreamFrame, UserRef } from '../protocol/frames.js';
import type { Message } from '../store/messages.js';
import type { Store } from '../store/store.js';
import { publishPlain, subscribePlain } from './nats.js';

/** One entry of a digest: a message (with its preview and the names it mentions), or an event. */
export interface DigestEntry {
  seq: number;
  from: string | null;
  /** A message's first 100 characters. */
  preview?: string;
  /** The names a message mentions, lowercased (at most 20). */
  names?: string[];
  /** An event's kind, and whom it concerns. */
  event?: string;
  user?: string;
}
export interface Digest {
  room: string;
  entries: DigestEntry[];
}

/** Characters of a message a notice previews. */
export const PREVIEW_CHARS = 100;
/** Different names a message mentions at most (the store's rule too, migration 11). */
const MAX_NAMES = 20;
/** @name as the store finds it: a whole run of username characters after a non-name character. */
const MENTION = /(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9][A-Za-z0-9_.-]{2,31})(?![A-Za-z0-9_.-])/g;
const JOINED = new Set(['member_joined']);
const GONE = new Set(['member_left', 'member_removed', 'member_banned']);

/** The names `body` mentions, lowercased; a name may end with `.` or `-` as a sentence does, so both readings are kept. */
export function mentionedNames(body: string): string[] {
  if (!body.includes('@')) return [];
  const names = new Set<string>();
  for (const m of body.matchAll(MENTION)) {
    if (names.size >= MAX_NAMES) break;
    names.add((m[1] as string).toLowerCase());
  }
  return [...names];
}

/** The first PREVIEW_CHARS characters (code points) of a body, without splitting the whole of it. */
function preview(body: string): string {
  let end = 0;
  let chars = 0;
  for (const c of body) {
    if (chars++ === PREVIEW_CHARS) break;
    end += c.length;
  }
  return body.slice(0, end);
}

/** The digest of a committed batch. */
export function digest(roomId: string, batch: Message[]): Digest {
  return {
    room: roomId,
    entries: batch.map((m) => {
      if (m.event) return { seq: m.seq, from: m.senderId, event: m.event.kind, ...('user' in m.event ? { user: m.event.user.id } : {}) };
      const names = mentionedNames(m.body);
      return { seq: m.seq, from: m.senderId, preview: preview(m.body), ...(names.length ? { names } : {}) };
    }),
  };
}

interface Person {
  username: string;
  sockets: number;
  rooms: Map<string, NotifyLevel>;
  /** Bumped by every change to their rooms: a load that saw one happen meanwhile reads again. */
  version: number;
  loading?: Promise<void> | undefined;
}
interface LocalRoom {
  members: Set<string>;
  /** Highest seq seen (a digest starting past it reveals a gap); -1 until known, which checks the members first. */
  last: number;
  /** Digests of this room (and checks of its members) are handled one at a time, in arrival order. */
  chain: Promise<void>;
}

/** Tries of a load that keeps seeing the person's rooms change while it reads them. */
const LOAD_TRIES = 3;

export class MessageNotices {
  private readonly people = new Map<string, Person>();
  private readonly rooms = new Map<string, LocalRoom>();
  private readonly sub: Subscription | undefined;

  constructor(
    private readonly store: Store,
    private readonly deliver: (userId: string, frame: MessageNoticeFrame) => void,
    private readonly log: Logger,
    private readonly cluster?: { nc: NatsConnection; subject: string },
  ) {
    this.sub = cluster && subscribePlain<Digest>(cluster.nc, cluster.subject, log, 'message notices', {}, (d) => this.receive(d));
  }

  /** A committed batch, on the node that committed it: to this node's people, and the others'. */
  announce(roomId: string, batch: Message[]): void {
    if (batch.length === 0) return;
    const d = digest(roomId, batch);
    this.receive(d);
    if (this.cluster) publishPlain(this.cluster.nc, this.cluster.subject, d, this.log, 'message notices', { room: roomId });
  }

  /** A socket of `user` opened on this node; the first one loads their rooms. */
  attach(user: UserRef): void {
    const p = this.people.get(user.id);
    if (p) {
      p.sockets++;
      return;
    }
    this.people.set(user.id, { username: user.username.toLowerCase(), sockets: 1, rooms: new Map(), version: 0 });
    void this.load(user.id);
  }

  /** A socket of the user closed; the last one drops them from the index. */
  detach(userId: string): void {
    const p = this.people.get(userId);
    if (!p || --p.sockets > 0) return;
    this.people.delete(userId);
    for (const roomId of p.rooms.keys()) this.leave(roomId, userId);
  }

  /**
   * Reads the person's rooms again (their device resumed: it may have seen a gap in their stream).
   * One read at a time per person; a read that raced a change of their rooms is read again, and a
   * room this node has seen past the read's snapshot is checked in the room's own order instead.
   */
  load(userId: string): Promise<void> {
    const p = this.people.get(userId);
    if (!p) return Promise.resolve();
    p.loading ??= this.read(userId, p).finally(() => {
      p.loading = undefined;
    });
    return p.loading;
  }

  private async read(userId: string, p: Person): Promise<void> {
    try {
      for (let i = 0; i < LOAD_TRIES; i++) {
        const version = p.version;
        const rooms = await this.store.notices.memberships(userId);
        if (this.people.get(userId) !== p) return;
        if (p.version !== version && i < LOAD_TRIES - 1) continue;
        const now = new Set(rooms.map((m) => m.roomId));
        for (const roomId of [...p.rooms.keys()]) {
          if (now.has(roomId)) continue;
          p.rooms.delete(roomId);
          this.leave(roomId, userId);
        }
        for (const m of rooms) {
          const r = this.rooms.get(m.roomId);
          if (r && (r.last < 0 || r.last > m.lastSeq)) this.check(m.roomId, r, [userId]);
          else {
            p.rooms.set(m.roomId, m.level);
            this.room(m.roomId, m.lastSeq).members.add(userId);
          }
        }
        return;
      }
    } catch (e) {
      this.log.warn({ err: e, user: userId }, "could not read a person's rooms for their notices");
    }
  }

  /**
   * A frame of a local person's own stream. A removal holds at once; an addition is checked against
   * the store in the room's order (the frames of one person may come out of order across nodes).
   */
  personal(userId: string, frame: StreamFrame): void {
    const p = this.people.get(userId);
    if (!p || frame.t !== 'notice') return;
    if (frame.kind === 'room_added') {
      this.check(frame.room.id, this.room(frame.room.id, -1), [userId]);
    } else if (frame.kind === 'room_removed') {
      p.version++;
      p.rooms.delete(frame.room);
      this.leave(frame.room, userId);
    } else if (frame.kind === 'notify' && p.rooms.has(frame.room)) p.rooms.set(frame.room, frame.level);
  }

  close(): void {
    this.sub?.unsubscribe();
  }

  /** People and rooms in the index. */
  get size(): { people: number; rooms: number } {
    return { people: this.people.size, rooms: this.rooms.size };
  }

  private room(roomId: string, lastSeq: number): LocalRoom {
    let r = this.rooms.get(roomId);
    if (!r) {
      r = { members: new Set(), last: lastSeq, chain: Promise.resolve() };
      this.rooms.set(roomId, r);
    }
    return r;
  }

  private leave(roomId: string, userId: string): void {
    const r = this.rooms.get(roomId);
    if (!r) return;
    r.members.delete(userId);
    if (r.members.size === 0) this.rooms.delete(roomId);
  }

  private receive(d: Digest): void {
    if (!Array.isArray(d.entries) || d.entries.length === 0) return;
    // A local person who just joined a room nobody here is in: the room starts at their join.
    const joined = d.entries.find((e) => e.event !== undefined && JOINED.has(e.event) && e.user !== undefined && this.people.has(e.user));
    const r = this.rooms.get(d.room) ?? (joined && this.room(d.room, joined.seq - 1));
    if (!r) return;
    this.enqueue(d.room, r, () => this.handle(d, r));
  }

  private enqueue(roomId: string, r: LocalRoom, step: () => Promise<void>): void {
    r.chain = r.chain.then(step).catch((e: unknown) => this.log.warn({ err: e, room: roomId }, 'message notices failed'));
  }

  /** Checks, in the room's order, whether `userIds` are members now (and at what level). */
  private check(roomId: string, r: LocalRoom, userIds: string[]): void {
    this.enqueue(roomId, r, () => this.verify(roomId, r, userIds));
  }

  private async handle(d: Digest, r: LocalRoom): Promise<void> {
    const first = d.entries[0] as DigestEntry;
    const fresh = d.entries.filter((e) => e.seq > r.last);
    if (fresh.length === 0) return; // seen already (announced again after a retried publish)
    // A gap (or a room whose last seq is not known yet): a digest this node missed may have
    // removed someone, so who is a member is read again before anything is sent.
    if (r.last < 0 || first.seq > r.last + 1) await this.verify(d.room, r, [...r.members]);
    r.last = Math.max(r.last, ...fresh.map((e) => e.seq));
    const posted: (DigestEntry & { named?: Set<string> })[] = [];
    for (const e of fresh) {
      if (e.event === undefined) posted.push(Array.isArray(e.names) ? { ...e, named: nameSet(e.names) } : e);
      else if (e.user !== undefined && this.people.has(e.user)) this.membership(d.room, r, e.event, e.user);
    }
    if (posted.length === 0) return;
    for (const userId of r.members) {
      const p = this.people.get(userId);
      const level = p?.rooms.get(d.room);
      if (!p || level === undefined || level === 'muted') continue;
      // Never your own messages; at `mentions`, only those that mention you.
      const own = posted.filter((e) => e.from !== userId && (level === 'all' || e.named?.has(p.username)));
      const at = own.at(-1);
      if (!at) continue;
      const mention = level === 'mentions' || own.some((e) => e.named?.has(p.username));
      this.deliver(userId, {
        t: 'notice',
        kind: 'message',
        room: d.room,
        seq: at.seq,
        count: own.length,
        from: at.from,
        preview: at.preview ?? '',
        ...(mention ? { mention: true as const } : {}),
      });
    }
  }

  /** A membership event of a local person, in the room's order. */
  private membership(roomId: string, r: LocalRoom, kind: string, userId: string): void {
    const p = this.people.get(userId) as Person;
    if (JOINED.has(kind) && !p.rooms.has(roomId)) {
      p.version++;
      p.rooms.set(roomId, 'all');
      r.members.add(userId);
    } else if (GONE.has(kind)) {
      p.version++;
      p.rooms.delete(roomId);
      this.leave(roomId, userId);
    }
  }

  /** Reads which of `userIds` (local people) are members of the room now, and at what level. */
  private async verify(roomId: string, r: LocalRoom, userIds: string[]): Promise<void> {
    const local = userIds.filter((id) => this.people.has(id));
    const members = local.length ? await this.store.notices.members(roomId, local) : new Map<string, NotifyLevel>();
    for (const userId of local) {
      const p = this.people.get(userId);
      if (!p) continue;
      p.version++;
      const level = members.get(userId);
      if (level === undefined) {
        p.rooms.delete(roomId);
        r.members.delete(userId);
      } else {
        p.rooms.set(roomId, level);
        r.members.add(userId);
      }
    }
    if (r.members.size === 0 && this.rooms.get(roomId) === r) this.rooms.delete(roomId);
    else if (r.members.size > 0 && !this.rooms.has(roomId)) this.rooms.set(roomId, r);
  }
}

/** A message's mentioned names as a person's lowercased username is looked up: each name, and without a trailing . or -. */
function nameSet(names: string[]): Set<string> {
  const out = new Set<string>();
  for (const n of names) {
    out.add(n);
    out.add(n.replace(/[.-]+$/, ''));
  }
  return out;
}
