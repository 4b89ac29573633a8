// The open room: its history, read older page by page as the reader scrolls up, then the live
// stream from the SDK's subscription (gapless and in order: it resumes from the last seq after a
// reconnect). Messages being sent show at the end as pending until their ack, and stay there,
// marked, if the hub refuses them. Typing notices expire after a few seconds; presence follows the
// room's presence frames.

import { signal } from '@preact/signals';
import type { MessageFrame, SwitchboardClient } from '../../../src/client/index.js';
import type { Attachment, ReactionCount, TimelineEvent, TimelineFrame, UserRef } from '../../../src/protocol/frames.js';
import { api } from '../api.js';
import type { Member } from '../types.js';
import { learnName, readHere, resolveNames, sawSeq } from './rooms.js';

export interface Line {
  /** Stable render key: the message id, or the cid while pending. */
  key: string;
  /** Undefined while pending. */
  seq: number | undefined;
  from: string | null;
  ts: number;
  body: string;
  cid?: string;
  att?: Attachment[];
  deleted?: boolean;
  edited?: boolean;
  reactions?: ReactionCount[];
  /** A timeline event (joined, renamed, …) instead of a message. */
  event?: TimelineEvent;
  /** A message of ours not yet stored, or refused. */
  status?: 'pending' | 'failed';
  error?: string;
}

const PAGE = 50;
/** A typing notice shows this long unless renewed (the hub relays at most one a second per person). */
export const TYPING_SHOWN_MS = 5000;
/** Typing notices we send while the person types: at most one per interval. */
const TYPING_EVERY_MS = 2500;
/** Read markers we send while messages stream in: at most one per interval. */
const READ_EVERY_MS = 300;

function lineOf(f: TimelineFrame | (Omit<MessageFrame, 't' | 'room'> & { reactions?: ReactionCount[] })): Line {
  if ('kind' in f) {
    const { t: _t, room: _r, seq, mid, from, ts, ...event } = f as TimelineFrame & { kind: string };
    return { key: mid, seq, from, ts, body: '', event: event as unknown as TimelineEvent };
  }
  const m = f as MessageFrame & { reactions?: ReactionCount[] };
  return { key: m.mid, seq: m.seq, from: m.from, ts: m.ts, body: m.body, cid: m.cid, att: m.att, deleted: m.deleted, edited: m.edited, reactions: m.reactions };
}

export class Timeline {
  readonly lines = signal<Line[]>([]);
  readonly loading = signal(true);
  readonly hasOlder = signal(false);
  readonly error = signal<string | undefined>(undefined);
  readonly present = signal<UserRef[]>([]);
  readonly typing = signal<UserRef[]>([]);
  /** Counts the membership changes seen live (joins, leaves, removals, bans, roles): the member list reloads on each. */
  readonly memberChanges = signal(0);
  /** In a direct room: how far the other person has read (their read marker). */
  readonly peerRead = signal(0);
  private typingUntil = new Map<string, { user: UserRef; until: number }>();
  private typingTimer: ReturnType<typeof setInterval> | undefined;
  private lastTypingSent = 0;
  private offs: (() => void)[] = [];
  private closed = false;
  private olderPromise: Promise<void> | undefined;
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  private readSent = 0;

  constructor(
    private readonly client: SwitchboardClient,
    readonly room: string,
    private readonly myId: string,
    /** Whether the reader sees new messages as they come (page visible, scrolled to the end). */
    private readonly reading: () => boolean,
  ) {}

  get lastSeq(): number {
    const ls = this.lines.value;
    for (let i = ls.length - 1; i >= 0; i--) {
      const s = ls[i]?.seq;
      if (s !== undefined) return s;
    }
    return 0;
  }

  async open(): Promise<void> {
    const c = this.client;
    this.offs.push(
      c.on('message', (m) => m.room === this.room && this.add(lineOf(m))),
      c.on('event', (e) => e.room === this.room && e.kind !== 'room_deleted' && this.add(lineOf(e))),
      c.on('presence', (p) => p.room === this.room && this.presence(p.op, p.users)),
      c.on('typing', (t) => t.room === this.room && t.user.id !== this.myId && this.someoneTyping(t.user)),
      c.on('receipt', (r) => {
        if (r.room === this.room && r.user.id !== this.myId && r.seq > this.peerRead.value) this.peerRead.value = r.seq;
      }),
    );
    try {
      const page = await c.history(this.room, { limit: PAGE });
      if (this.closed) return;
      // Anything sent before the page came stays at the end, pending.
      this.lines.value = [...page.messages.map(lineOf), ...this.lines.value.filter((l) => l.status)];
      void resolveNames(page.messages.map((m) => m.from));
      this.hasOlder.value = (page.messages[0]?.seq ?? 1) > 1;
      // Everything after the page arrives through the subscription, in order, then live.
      await c.subscribe(this.room, { since: page.lastSeq });
      this.markRead();
    } catch (e) {
      this.error.value = (e as Error).message;
    } finally {
      this.loading.value = false;
    }
  }

  /** A direct room's receipts: the other person's marker now (frames move it on from there). */
  async loadReceipts(): Promise<void> {
    const { members } = await api<{ members: Member[] }>('GET', `/rooms/${this.room}/members`);
    const theirs = Math.max(0, ...members.filter((m) => m.userId !== this.myId).map((m) => m.readSeq ?? 0));
    if (theirs > this.peerRead.value) this.peerRead.value = theirs;
  }

  close(): void {
    this.closed = true;
    for (const off of this.offs) off();
    clearInterval(this.typingTimer);
    clearTimeout(this.readTimer);
    void this.client.unsubscribe(this.room).catch(() => {});
  }

  /** Reads the page before the oldest line; resolves with the number of lines added. */
  older(): Promise<void> {
    const first = this.lines.value.find((l) => l.seq !== undefined)?.seq;
    if (!this.hasOlder.value || first === undefined) return Promise.resolve();
    this.olderPromise ??= this.client
      .history(this.room, { before: first, limit: PAGE })
      .then((page) => {
        const have = new Set(this.lines.value.map((l) => l.seq));
        this.lines.value = [...page.messages.map(lineOf).filter((l) => !have.has(l.seq)), ...this.lines.value];
        void resolveNames(page.messages.map((m) => m.from));
        this.hasOlder.value = (page.messages[0]?.seq ?? 1) > 1;
      })
      .catch((e: Error) => {
        this.error.value = e.message;
      })
      .finally(() => {
        this.olderPromise = undefined;
      });
    return this.olderPromise;
  }

  /** Sends a message: shown at once as pending, then as stored when the hub acks it. */
  send(body: string, attachments: Attachment[] = []): void {
    const cid = crypto.randomUUID();
    this.lines.value = [...this.lines.value, { key: cid, seq: undefined, from: this.myId, ts: Date.now(), body, cid, att: attachments, status: 'pending' }];
    this.publish(cid, body, attachments);
  }

  /** Sends a refused message again (with a new cid: the old one was refused). */
  retry(cid: string): void {
    const line = this.lines.value.find((l) => l.cid === cid && l.status === 'failed');
    if (!line) return;
    this.lines.value = this.lines.value.filter((l) => l !== line);
    this.send(line.body, line.att);
  }

  discard(cid: string): void {
    this.lines.value = this.lines.value.filter((l) => !(l.cid === cid && l.status === 'failed'));
  }

  typed(): void {
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_EVERY_MS) return;
    this.lastTypingSent = now;
    void this.client.typing(this.room).catch(() => {});
  }

  /** Moves the read marker to the last line, if the reader sees it; at most one request per READ_EVERY_MS. */
  markRead(): void {
    if (this.lastSeq === 0 || !this.reading() || this.readTimer) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = undefined;
      const seq = this.lastSeq;
      if (this.closed || seq <= this.readSent || !this.reading()) return;
      readHere(this.room, seq);
      // Remembered once the hub has it: a marker lost with the connection is sent again later.
      this.client.markRead(this.room, seq).then(
        () => {
          this.readSent = Math.max(this.readSent, seq);
        },
        () => {},
      );
    }, READ_EVERY_MS);
  }

  private publish(cid: string, body: string, attachments: Attachment[]): void {
    this.client.publish(this.room, body, { cid, attachments: attachments.map((a) => a.id) }).then(
      (ack) => {
        // The stored message normally arrives through the subscription first; if the ack wins, it
        // stands in until then (same key, so no flicker).
        this.lines.value = this.lines.value.map((l) =>
          l.cid === cid && l.status === 'pending' ? { ...l, status: undefined, seq: ack.seq, key: ack.mid, ts: ack.ts } : l,
        );
      },
      (e: Error & { code?: string }) => {
        this.lines.value = this.lines.value.map((l) => (l.cid === cid && l.status === 'pending' ? { ...l, status: 'failed', error: e.message } : l));
      },
    );
  }

  private add(line: Line): void {
    const ls = this.lines.value;
    sawSeq(this.room, line.seq ?? 0);
    if (line.event) this.apply(line.event);
    if (line.cid !== undefined) {
      const mine = ls.findIndex((l) => l.cid === line.cid && l.from === line.from);
      if (mine >= 0) {
        const next = ls.filter((_, i) => i !== mine);
        this.lines.value = insertBySeq(next, line);
        this.markRead();
        return;
      }
    }
    if (ls.some((l) => l.seq === line.seq)) return;
    if (line.from) {
      this.typingUntil.delete(line.from);
      void resolveNames([line.from]);
    }
    this.refreshTyping();
    this.lines.value = insertBySeq(this.lines.value, line);
    this.markRead();
  }

  /** An edit, deletion or reaction changes the message it targets. */
  private apply(ev: TimelineEvent): void {
    if ('user' in ev && !('target' in ev)) {
      learnName(ev.user.id, ev.user.username);
      this.memberChanges.value++;
    }
    if (!('target' in ev)) return;
    this.lines.value = this.lines.value.map((l) => {
      if (l.seq !== ev.target) return l;
      if (ev.kind === 'message_deleted') return { ...l, deleted: true, body: '', att: undefined, reactions: undefined };
      if (ev.kind === 'message_edited') return { ...l, body: ev.body, edited: true };
      const rs = [...(l.reactions ?? [])];
      const i = rs.findIndex((r) => r.emoji === ev.emoji);
      const me = ev.user.id === this.myId;
      const delta = ev.kind === 'reaction_added' ? 1 : -1;
      if (i < 0 && delta > 0) rs.push({ emoji: ev.emoji, count: 1, me });
      else if (i >= 0) {
        const r = rs[i] as ReactionCount;
        const count = r.count + delta;
        if (count <= 0) rs.splice(i, 1);
        else rs[i] = { ...r, count, me: me ? delta > 0 : r.me };
      }
      return { ...l, reactions: rs };
    });
  }

  private presence(op: 'snapshot' | 'join' | 'leave', users: UserRef[]): void {
    for (const u of users) learnName(u.id, u.username);
    if (op === 'snapshot') this.present.value = users;
    else if (op === 'join') this.present.value = [...this.present.value.filter((u) => !users.some((x) => x.id === u.id)), ...users];
    else this.present.value = this.present.value.filter((u) => !users.some((x) => x.id === u.id));
  }

  private someoneTyping(user: UserRef): void {
    learnName(user.id, user.username);
    this.typingUntil.set(user.id, { user, until: Date.now() + TYPING_SHOWN_MS });
    this.refreshTyping();
    this.typingTimer ??= setInterval(() => this.refreshTyping(), 1000);
  }

  private refreshTyping(): void {
    const now = Date.now();
    for (const [id, t] of this.typingUntil) if (t.until <= now) this.typingUntil.delete(id);
    const users = [...this.typingUntil.values()].map((t) => t.user);
    if (users.length !== this.typing.value.length || users.some((u, i) => u.id !== this.typing.value[i]?.id)) this.typing.value = users;
    if (this.typingUntil.size === 0 && this.typingTimer) {
      clearInterval(this.typingTimer);
      this.typingTimer = undefined;
    }
  }
}

/** Inserts a stored line in seq order, before any pending ones. */
function insertBySeq(lines: Line[], line: Line): Line[] {
  const seq = line.seq ?? Number.POSITIVE_INFINITY;
  let i = lines.length;
  while (i > 0) {
    const prev = lines[i - 1] as Line;
    if (prev.seq !== undefined && prev.seq < seq) break;
    i--;
  }
  return [...lines.slice(0, i), line, ...lines.slice(i)];
}
