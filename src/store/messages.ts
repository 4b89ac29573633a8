// Messages: a room's ordered log. Seqs are assigned by the room's sequencer (its actor) and written
// in groups behind a fence on rooms.last_seq, so every room's seqs are contiguous from 1; a sender's
// client message id (`cid`) is unique per sender, so a retry finds the message it already created.

import type { Sql } from './db.js';

export interface Message {
  id: string;
  roomId: string;
  seq: number;
  senderId: string | null;
  cid: string;
  body: string;
  createdAt: Date;
}

interface Row {
  id: string;
  room_id: string;
  seq: string;
  sender_id: string | null;
  client_msg_id: string;
  body: string;
  created_at: Date;
}

const toMessage = (r: Row): Message => ({
  id: r.id,
  roomId: r.room_id,
  seq: Number(r.seq),
  senderId: r.sender_id,
  cid: r.client_msg_id,
  body: r.body,
  createdAt: r.created_at,
});

export class Messages {
  constructor(private readonly sql: Sql) {}

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
   * Group commit for a room's sequencers: inserts a batch and advances the room's `last_seq` in one
   * transaction. The store has the last word on both order and membership, so contending sequencers
   * (one per node in a cluster) never fail each other and a removal holds everywhere at once:
   * - the `UPDATE ... RETURNING` takes the room row's lock, so commits to a room run one after the
   *   other, each taking the seqs right after the last committed one: a batch numbered from a stale
   *   `last_seq` (another node wrote meanwhile) is renumbered, and the committed batch is returned;
   * - under that lock, every sender must still be a member (the rows are read `FOR SHARE`, so a
   *   concurrent leave waits for this commit, and one that committed first is seen): otherwise, as
   *   when the room is gone, nothing is written and CommitRefusedError names who was refused.
   */
  async insertSequenced(roomId: string, batch: SequencedMessage[]): Promise<SequencedMessage[]> {
    if (batch.length === 0) return batch;
    return this.sql.begin(async (tx) => {
      const [moved] = await tx<{ last_seq: string }[]>`
        UPDATE rooms SET last_seq = last_seq + ${batch.length} WHERE id = ${roomId} RETURNING last_seq`;
      if (!moved) throw new CommitRefusedError(roomId, true, []);
      const senders = [...new Set(batch.map((m) => m.senderId))];
      const members = await tx<{ user_id: string }[]>`
        SELECT user_id FROM room_members WHERE room_id = ${roomId} AND user_id = ANY(${senders}::uuid[]) FOR SHARE`;
      if (members.length !== senders.length) {
        const still = new Set(members.map((r) => r.user_id));
        throw new CommitRefusedError(
          roomId,
          false,
          senders.filter((s) => !still.has(s)),
        );
      }
      const first = Number(moved.last_seq) - batch.length + 1;
      const committed = (batch[0] as SequencedMessage).seq === first ? batch : batch.map((m, i) => ({ ...m, seq: first + i }));
      const rows = committed.map((m) => ({
        room_id: m.roomId,
        seq: m.seq,
        id: m.id,
        sender_id: m.senderId,
        client_msg_id: m.cid,
        body: m.body,
        created_at: m.createdAt,
      }));
      await tx`INSERT INTO messages ${tx(rows, 'room_id', 'seq', 'id', 'sender_id', 'client_msg_id', 'body', 'created_at')}`;
      return committed;
    });
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
