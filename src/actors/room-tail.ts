// A room's log as frames: what subscribers receive (a message, or a timeline event), and the recent
// tail the room actor keeps in memory so most resumes need no database read. A deleted message's
// frame in the tail becomes its tombstone, as the store's row did.

import type { Attachment, MessageFrame, TimelineEventFrame, TimelineFrame } from '../protocol/frames.js';
import type { Message, SequencedMessage } from '../store/messages.js';

export function toFrame(m: Message | SequencedMessage): TimelineFrame {
  const ts = m.createdAt.getTime();
  if ('event' in m && m.event) return { t: 'event', room: m.roomId, seq: m.seq, mid: m.id, from: m.senderId, ts, ...m.event };
  const frame: MessageFrame = { t: 'msg', room: m.roomId, seq: m.seq, mid: m.id, from: m.senderId, cid: m.cid, ts, body: m.body };
  if ('deletedAt' in m && m.deletedAt) frame.deleted = true;
  else {
    if (m.attachments) frame.att = m.attachments;
    if ('editedAt' in m && m.editedAt) frame.edited = true;
  }
  return frame;
}

/** Whether a stored message is this post again (a retry of its cid): its text and its files (by id, in order). */
export function samePost(m: Message, body: string, attachments: Attachment[] | undefined): boolean {
  const ids = (a: Attachment[] | undefined) => (a ?? []).map((x) => x.id).join();
  return m.body === body && ids(m.attachments) === ids(attachments);
}

function tombstone(f: MessageFrame): MessageFrame {
  const { att: _, edited: __, ...rest } = f;
  return { ...rest, body: '', deleted: true };
}

export class RoomTail {
  private readonly frames: TimelineFrame[] = [];

  constructor(private readonly max: number) {}

  push(frame: TimelineFrame): void {
    this.frames.push(frame);
    if (this.frames.length > this.max) this.frames.shift();
  }

  /** The frames after `since`, when the tail reaches back that far; otherwise undefined (read the store). */
  after(since: number): TimelineFrame[] | undefined {
    const first = this.frames[0];
    return first && first.seq <= since + 1 ? this.frames.filter((f) => f.seq > since) : undefined;
  }

  /**
   * A message was edited or deleted: a resume from here on sends it as it is now (a tombstone, or
   * the new text), and a deletion empties the edits that carried its earlier texts, as the store does.
   */
  changed(e: TimelineEventFrame & { kind: 'message_deleted' | 'message_edited' }): void {
    const first = this.frames[0];
    if (!first) return;
    const i = e.target - first.seq;
    const f = this.frames[i];
    if (f?.seq === e.target && f.t === 'msg') this.frames[i] = e.kind === 'message_edited' ? { ...f, body: e.body, edited: true } : tombstone(f);
    if (e.kind !== 'message_deleted') return;
    for (const [j, g] of this.frames.entries()) {
      if (g.t === 'event' && g.kind === 'message_edited' && g.target === e.target) this.frames[j] = { ...g, body: '' };
    }
  }
}
