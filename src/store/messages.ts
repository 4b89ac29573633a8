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
   * Group commit for a room's sequencer: inserts a batch of already-sequenced messages and advances
   * the room's `last_seq` in one transaction, only if `last_seq` still equals `expectedLastSeq` (a
   * fence: a sequencer that lost track of the room is refused with StaleSequenceError).
   */
  async insertSequenced(roomId: string, batch: SequencedMessage[], expectedLastSeq: number): Promise<void> {
    if (batch.length === 0) return;
    const last = (batch[batch.length - 1] as SequencedMessage).seq;
    await this.sql.begin(async (tx) => {
      const moved = await tx`UPDATE rooms SET last_seq = ${last} WHERE id = ${roomId} AND last_seq = ${expectedLastSeq}`;
      if (moved.count !== 1) throw new StaleSequenceError(`room ${roomId} is not at seq ${expectedLastSeq}`);
      const rows = batch.map((m) => ({
        room_id: m.roomId,
        seq: m.seq,
        id: m.id,
        sender_id: m.senderId,
        client_msg_id: m.cid,
        body: m.body,
        created_at: m.createdAt,
      }));
      await tx`INSERT INTO messages ${tx(rows, 'room_id', 'seq', 'id', 'sender_id', 'client_msg_id', 'body', 'created_at')}`;
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

export class StaleSequenceError extends Error {
  override name = 'StaleSequenceError';
  readonly code = 'STALE_SEQUENCE';
}
