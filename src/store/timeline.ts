// A room's timeline events: joins, leaves, removals, bans, role changes, renames and message
// deletions, kept in the room's log beside its messages so they take seqs in the same order (a late
// reader sees what happened, and a resume replays them like messages). Each is written in the
// transaction of the change it records, after taking the room's row lock first (the lock a group
// commit takes first too), so the change and its event are one atomic step and never deadlock.

import type { TimelineEvent, TimelineKind } from '../protocol/frames.js';
import type { Tx } from './db.js';
import type { Message } from './messages.js';
import type { WebhookEvent } from './webhooks.js';

export type { TimelineEvent, TimelineKind };

/** The event's details as stored in the row's body (its kind has a column of its own); of a person, only their id and username. */
export function eventBody(e: TimelineEvent): string {
  const { kind: _, ...rest } = e;
  if ('user' in rest) rest.user = { id: rest.user.id, username: rest.user.username };
  return JSON.stringify(rest);
}

/** The event a stored row holds. */
export function parseEvent(kind: TimelineKind, body: string): TimelineEvent {
  return { kind, ...(JSON.parse(body) as object) } as TimelineEvent;
}

/**
 * Locks the room's row for this transaction; false when the room does not exist. Every change that
 * writes an event calls this first.
 */
export async function lockRoom(tx: Tx, roomId: string): Promise<boolean> {
  const rows = await tx`SELECT 1 FROM rooms WHERE id = ${roomId} FOR NO KEY UPDATE`;
  return rows.length > 0;
}

/** Appends the event at the room's next seq, under the lock `lockRoom` took. `by` is who did it. */
export async function appendEvent(tx: Tx, id: string, roomId: string, by: string | null, event: TimelineEvent): Promise<Message> {
  const body = eventBody(event);
  const [row] = await tx<{ seq: string; created_at: Date }[]>`
    WITH next AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ${roomId} RETURNING last_seq)
    INSERT INTO messages (room_id, seq, id, sender_id, client_msg_id, body, kind)
    SELECT ${roomId}, next.last_seq, ${id}, ${by}, ${`ev:${id}`}, ${body}, ${event.kind} FROM next
    RETURNING seq, created_at`;
  const r = row as { seq: string; created_at: Date };
  const hook = WEBHOOK_OF[event.kind];
  if (hook) {
    // The details as stored: of a person, only their id and username.
    const details = JSON.parse(body) as object;
    const data = { roomId, seq: Number(r.seq), id, by, ...details, ...(hook === 'member.left' ? { reason: LEFT_REASON[event.kind] } : {}) };
    await tx`SELECT sb_webhook_event(${hook}, ${id}, ${roomId}, ${JSON.stringify(data)})`;
  }
  return { id, roomId, seq: Number(r.seq), senderId: by, cid: `ev:${id}`, body: '', createdAt: r.created_at, event: parseEvent(event.kind, body) };
}

/** The webhook event a timeline event is, if any (webhooks.ts); written in the same transaction. */
const WEBHOOK_OF: Partial<Record<TimelineKind, WebhookEvent>> = {
  member_joined: 'member.joined',
  member_left: 'member.left',
  member_removed: 'member.left',
  member_banned: 'member.left',
  message_edited: 'message.edited',
  message_deleted: 'message.deleted',
};
const LEFT_REASON: Partial<Record<TimelineKind, string>> = { member_left: 'left', member_removed: 'removed', member_banned: 'banned' };
