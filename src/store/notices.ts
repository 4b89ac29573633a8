// Each person's own stream (migration 12): numbered notices of what concerns them, so any of their
// devices resumes after the last number it has, and their notification level in each room. A
// notice is appended after the change it reports committed (a crash between the two loses that
// notice, never the change), in a transaction that locks the person's head row, so each person's
// numbers run 1, 2, 3... with no gap and no repeat.

import type { NotifyLevel, StreamFrame, UnreadRoom } from '../protocol/frames.js';
import type { Sql } from './db.js';

/** A frame of the stream before it has its number. */
export type Unnumbered = StreamFrame extends infer F ? (F extends unknown ? Omit<F, 'n'> : never) : never;

/** A local person's room, for the live notices: their level there, and the room's last seq. */
export interface Membership {
  roomId: string;
  level: NotifyLevel;
  lastSeq: number;
}

export class Notices {
  constructor(private readonly sql: Sql) {}

  /** Appends `frame` to the person's stream; its number, or undefined when the person is gone. */
  async append(userId: string, frame: Unnumbered): Promise<number | undefined> {
    const [row] = await this.sql<{ n: string }[]>`
      WITH head AS (
        INSERT INTO notice_heads (user_id, n) SELECT id, 1 FROM users WHERE id = ${userId}
        ON CONFLICT (user_id) DO UPDATE SET n = notice_heads.n + 1
        RETURNING n
      )
      INSERT INTO notices (user_id, n, frame) SELECT ${userId}, head.n, ${JSON.stringify(frame)} FROM head
      RETURNING n`;
    return row && Number(row.n);
  }

  /**
   * The person's frames after `since`, in order, at most `limit`; their last number; and whether
   * `since` cannot be caught up from (the oldest kept is past `since + 1`, or `since` is past the last).
   */
  async after(userId: string, since: number, limit: number): Promise<{ head: number; frames: StreamFrame[]; pruned: boolean }> {
    const [head] = await this.sql<{ n: string }[]>`SELECT n FROM notice_heads WHERE user_id = ${userId}`;
    const last = head ? Number(head.n) : 0;
    // Past the head: not this stream's number (another account's, or from before a restore).
    if (since >= last) return { head: last, frames: [], pruned: since > last };
    const rows = await this.sql<{ n: string; frame: string }[]>`
      SELECT n, frame FROM notices WHERE user_id = ${userId} AND n > ${since} ORDER BY n LIMIT ${limit}`;
    const frames = rows.map((r) => ({ ...(JSON.parse(r.frame) as Unnumbered), n: Number(r.n) }) as StreamFrame);
    return { head: last, frames, pruned: (frames[0]?.n ?? last + 1) > since + 1 };
  }

  /** Drops notices older than `days`; returns how many. */
  async prune(days: number): Promise<number> {
    const r = await this.sql`DELETE FROM notices WHERE created_at < now() - make_interval(days => ${days})`;
    return r.count;
  }

  /** Sets the member's level in the room: whether it changed, or they are not a member. */
  async setLevel(roomId: string, userId: string, level: NotifyLevel): Promise<'changed' | 'unchanged' | 'not_member'> {
    const [row] = await this.sql<{ before: NotifyLevel }[]>`
      UPDATE room_members m SET notify = ${level}
      FROM (SELECT notify FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId} FOR UPDATE) old
      WHERE m.room_id = ${roomId} AND m.user_id = ${userId}
      RETURNING old.notify AS before`;
    if (!row) return 'not_member';
    return row.before === level ? 'unchanged' : 'changed';
  }

  /** Every room of the person, with their level and its last seq. */
  async memberships(userId: string): Promise<Membership[]> {
    const rows = await this.sql<{ room_id: string; notify: NotifyLevel; last_seq: string }[]>`
      SELECT m.room_id, m.notify, r.last_seq FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ${userId}`;
    return rows.map((r) => ({ roomId: r.room_id, level: r.notify, lastSeq: Number(r.last_seq) }));
  }

  /** Which of `userIds` are members of the room, with their levels. */
  async members(roomId: string, userIds: string[]): Promise<Map<string, NotifyLevel>> {
    const rows = await this.sql<{ user_id: string; notify: NotifyLevel }[]>`
      SELECT user_id, notify FROM room_members WHERE room_id = ${roomId} AND user_id = ANY(${userIds}::uuid[])`;
    return new Map(rows.map((r) => [r.user_id, r.notify]));
  }

  /**
   * The person's rooms with unread messages, at most `limit`, most unread first. Only those rooms'
   * mentions are counted: the counters (migration 11) pick them without reading any history.
   */
  async unread(userId: string, limit: number): Promise<UnreadRoom[]> {
    const rows = await this.sql<{ room_id: string; last_seq: string; unread: string; mentions: number }[]>`
      SELECT m.room_id, r.last_seq, r.msg_count - m.read_no AS unread,
        (SELECT count(*)::int FROM mentions x WHERE x.user_id = ${userId} AND x.room_id = r.id AND x.seq > m.read_seq) AS mentions
      FROM room_members m JOIN rooms r ON r.id = m.room_id
      WHERE m.user_id = ${userId} AND r.msg_count > m.read_no
      ORDER BY r.msg_count - m.read_no DESC, m.room_id LIMIT ${limit}`;
    return rows.map((r) => ({ room: r.room_id, seq: Number(r.last_seq), unread: Number(r.unread), mentions: r.mentions }));
  }
}
