// Messages: a room's ordered log. Seqs are assigned by the room's sequencer (its actor) and written
// in groups behind a fence on rooms.last_seq, so every room's seqs are contiguous from 1; a sender's
// client message id (`cid`) is unique per sender, so a retry finds the message it already created.

import type { Attachment } from '../protocol/frames.js';
import type { Sql } from './db.js';
import { translateDriverError } from './errors.js';
import { GroupCommit, type GroupCommitStats, type RoomBatch, type RoomVerdict } from './group-commit.js';
import { parseEvent, type TimelineEvent, type TimelineKind } from './timeline.js';

export interface Message {
  id: string;
  roomId: string;
  seq: number;
  senderId: string | null;
  cid: string;
  body: string;
  createdAt: Date;
  /** A timeline event (timeline.ts), whose body is then empty; absent for what someone posted. */
  event?: TimelineEvent;
  /** When the message was deleted: it stays in history as a tombstone, with an empty body. */
  deletedAt?: Date;
  /** When the message was last edited: its body is the current text. */
  editedAt?: Date;
  /** The files it carries (none once deleted). */
  attachments?: Attachment[];
}

interface Row {
  id: string;
  room_id: string;
  seq: string;
  sender_id: string | null;
  client_msg_id: string;
  body: string;
  created_at: Date;
  kind: 'message' | TimelineKind;
  deleted_at: Date | null;
  edited_at: Date | null;
  attachments: string | null;
}

function toMessage(r: Row): Message {
  const m: Message = { id: r.id, roomId: r.room_id, seq: Number(r.seq), senderId: r.sender_id, cid: r.client_msg_id, body: r.body, createdAt: r.created_at };
  if (r.kind !== 'message') {
    m.event = parseEvent(r.kind, r.body);
    m.body = '';
  }
  if (r.deleted_at) m.deletedAt = r.deleted_at;
  else if (r.edited_at) m.editedAt = r.edited_at;
  // A tombstone shows no files (a node of the previous version may have left them on the row).
  if (r.attachments && !r.deleted_at) m.attachments = JSON.parse(r.attachments) as Attachment[];
  return m;
}

/** Bytes of bodies (and ~100 B of the rest per message) in one commit call, at most: bounds the statement and the transaction. */
const MAX_BYTES_PER_CALL = 8 * 1024 * 1024;
const weigh = (b: RoomBatch<SequencedMessage>) => b.messages.reduce((n, m) => n + 100 + m.body.length + (m.attachments ? 200 * m.attachments.length : 0), 0);

export class Messages {
  private readonly commits: GroupCommit<SequencedMessage>;

  constructor(
    private readonly sql: Sql,
    /** Commit calls on their way at once. */
    commitsInFlight = 1,
  ) {
    this.commits = new GroupCommit((batches) => this.commitRooms(batches), { maxInFlight: commitsInFlight, weigh, maxWeight: MAX_BYTES_PER_CALL });
  }

  /** Commit calls since start, and the room batches they carried. */
  get commitStats(): GroupCommitStats {
    return this.commits.stats;
  }

  /** Messages already stored for these (sender, cid) pairs, in any room. */
  async byCids(pairs: { senderId: string; cid: string }[]): Promise<Message[]> {
    if (pairs.length === 0) return [];
    const senders = pairs.map((p) => p.senderId);
    const cids = pairs.map((p) => p.cid);
    const rows = await this.sql<Row[]>`
      SELECT m.* FROM messages m
      JOIN unnest(${senders}::uuid[], ${cids}::text[]) AS k(sender_id, cid)
        ON m.sender_id = k.sender_id AND m.client_msg_id = k.cid`;
    return rows.map(toMessage);
  }

  /**
   * Group commit for a room's sequencer: the batch is written and the room's `last_seq` advanced in
   * one transaction, together with other rooms' batches handed in meanwhile (group-commit.ts). The
   * store has the last word on both order and membership, so contending sequencers (one per node in
   * a cluster) never fail each other and a removal holds everywhere at once:
   * - the room's row is locked, so commits to a room run one after the other, each taking the seqs
   *   right after the last committed one: a batch numbered from a stale `last_seq` (another node
   *   wrote meanwhile) is renumbered, and the committed batch is returned;
   * - under that lock, every sender must still be a member (memberships are read `FOR KEY SHARE`, so a
   *   concurrent leave waits for this commit, and one that committed first is seen): otherwise, as
   *   when the room is gone, nothing of the room's batch is written and CommitRefusedError names who
   *   was refused;
   * - a (sender, cid) already stored fails with UniqueViolationError (the caller dedups and retries).
   * The work is one call of `sb_commit_messages` (migration 4): one round trip.
   */
  async insertSequenced(roomId: string, batch: SequencedMessage[]): Promise<SequencedMessage[]> {
    if (batch.length === 0) return batch;
    const v = await this.commits.submit({ roomId, messages: batch });
    if (v.kind === 'gone') throw new CommitRefusedError(roomId, true, []);
    if (v.kind === 'refused') throw new CommitRefusedError(roomId, false, v.notMembers);
    return (batch[0] as SequencedMessage).seq === v.firstSeq ? batch : batch.map((m, i) => ({ ...m, seq: v.firstSeq + i }));
  }

  /** One call, one transaction, for every room's batch; driver errors come out translated. */
  private async commitRooms(batches: RoomBatch<SequencedMessage>[]): Promise<Map<string, RoomVerdict>> {
    const rooms: string[] = [];
    const ids: string[] = [];
    const senders: string[] = [];
    const cids: string[] = [];
    const bodies: string[] = [];
    // Each message keeps the time its actor gave it (and its ack announces).
    const ats: string[] = [];
    const atts: (string | null)[] = [];
    for (const b of batches) {
      for (const m of b.messages) {
        rooms.push(b.roomId);
        ids.push(m.id);
        senders.push(m.senderId);
        cids.push(m.cid);
        bodies.push(m.body);
        ats.push(m.createdAt.toISOString());
        atts.push(m.attachments ? JSON.stringify(m.attachments) : null);
      }
    }
    let rows: { out_room: string; out_first_seq: string | null; out_gone: boolean; out_refused: string[] | null }[];
    try {
      rows = await this.sql`
        SELECT * FROM sb_commit_messages(${rooms}::uuid[], ${ids}::uuid[], ${senders}::uuid[], ${cids}::text[], ${bodies}::text[], ${ats}::timestamptz[], ${atts}::text[])`;
    } catch (e) {
      throw translateDriverError(e);
    }
    const verdicts = new Map<string, RoomVerdict>();
    for (const r of rows) {
      verdicts.set(
        r.out_room,
        r.out_gone
          ? { kind: 'gone' }
          : r.out_refused
            ? { kind: 'refused', notMembers: r.out_refused }
            : { kind: 'committed', firstSeq: Number(r.out_first_seq) },
      );
    }
    return verdicts;
  }

  /** Messages with seq in (after, upTo], ascending. */
  async range(roomId: string, after: number, upTo: number): Promise<Message[]> {
    const rows = await this.sql<Row[]>`
      SELECT * FROM messages WHERE room_id = ${roomId} AND seq > ${after} AND seq <= ${upTo} ORDER BY seq`;
    return rows.map(toMessage);
  }

  /**
   * A page of a room's history in ascending seq order: the `limit` messages just after `after`,
   * or else just before `before` (both bounds apply when both are given), or else the latest.
   */
  async page(roomId: string, q: { before?: number | undefined; after?: number | undefined; limit: number }): Promise<Message[]> {
    const sql = this.sql;
    const lower = q.after === undefined ? sql`` : sql`AND seq > ${q.after}`;
    const upper = q.before === undefined ? sql`` : sql`AND seq < ${q.before}`;
    if (q.after !== undefined) {
      const rows = await sql<Row[]>`
        SELECT * FROM messages WHERE room_id = ${roomId} ${lower} ${upper} ORDER BY seq ASC LIMIT ${q.limit}`;
      return rows.map(toMessage);
    }
    const rows = await sql<Row[]>`
      SELECT * FROM messages WHERE room_id = ${roomId} ${upper} ORDER BY seq DESC LIMIT ${q.limit}`;
    return rows.reverse().map(toMessage);
  }
}

/** A message with its seq assigned by the room's sequencer, ready to be made durable. */
export interface SequencedMessage {
  id: string;
  roomId: string;
  seq: number;
  senderId: string;
  cid: string;
  body: string;
  createdAt: Date;
  attachments?: Attachment[];
}

/** A commit the store refused: the room no longer exists, or these senders are no longer its members. */
export class CommitRefusedError extends Error {
  override name = 'CommitRefusedError';
  constructor(
    roomId: string,
    readonly roomGone: boolean,
    /** Senders of the batch who are not members (when the room exists). */
    readonly notMembers: string[],
  ) {
    super(roomGone ? `room ${roomId} does not exist` : `${notMembers.length} sender(s) are not members of room ${roomId}`);
  }
}
