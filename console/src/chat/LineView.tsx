// One line of a room's log: a message (with its files, reactions and actions), or a timeline event.

import { useState } from 'preact/hooks';
import type { Attachment } from '../../../src/protocol/frames.js';
import { api } from '../api.js';
import type { Me, Role } from '../types.js';
import { Alert, useAction } from '../ui.js';
import { nameOf } from './rooms.js';
import type { Line, Timeline } from './timeline.js';

/** Messages of one sender closer together than this share one heading. */
const GROUP_MS = 5 * 60_000;
const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];

const time = (ts: number) => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function eventText(l: Line): string | undefined {
  const ev = l.event;
  if (!ev) return undefined;
  switch (ev.kind) {
    case 'member_joined':
      return `${ev.user.username} joined`;
    case 'member_left':
      return `${ev.user.username} left`;
    case 'member_removed':
      return `${nameOf(l.from)} removed ${ev.user.username}`;
    case 'member_banned':
      return `${nameOf(l.from)} banned ${ev.user.username}`;
    case 'role_changed':
      return `${ev.user.username} is now ${ev.role}`;
    case 'room_renamed':
      return `${nameOf(l.from)} renamed the room to ${ev.name}`;
    default:
      // Edits, deletions and reactions show on the message they change.
      return undefined;
  }
}

function Files({ files }: { files: Attachment[] }) {
  return (
    <div class="files">
      {files.map((a) =>
        a.type.startsWith('image/') && a.width && a.height ? (
          <a key={a.id} href={`/api/v1/attachments/${a.id}`} target="_blank" rel="noopener">
            <img src={`/api/v1/attachments/${a.id}`} alt={a.name} width={a.width} height={a.height} loading="lazy" />
          </a>
        ) : (
          <a key={a.id} class="file" href={`/api/v1/attachments/${a.id}`} download={a.name}>
            {a.name} <span class="muted">({size(a.size)})</span>
          </a>
        ),
      )}
    </div>
  );
}

export function LineView({
  line: l,
  prev,
  me,
  room,
  role,
  timeline,
  seen,
}: {
  line: Line;
  prev: Line | undefined;
  me: Me;
  room: string;
  role: Role | null;
  timeline: Timeline;
  seen: boolean;
}) {
  const [editing, setEditing] = useState(false);
  const { error, act } = useAction();
  if (l.event) {
    const text = eventText(l);
    return text ? <p class="event">{text}</p> : null;
  }
  const mine = l.from === me.id;
  const grouped = prev && !prev.event && prev.from === l.from && l.ts - prev.ts < GROUP_MS;
  const mentionsMe = new RegExp(`(^|[^A-Za-z0-9_.-])@${me.username.replace(/[.]/g, '\\.')}(?![A-Za-z0-9_])`, 'i').test(l.body);
  const react = (emoji: string, on: boolean) =>
    act(() => api(on ? 'DELETE' : 'PUT', `/rooms/${room}/messages/${l.seq}/reactions/${encodeURIComponent(emoji)}`));

  function saveEdit(e: Event) {
    e.preventDefault();
    const body = String(new FormData(e.currentTarget as HTMLFormElement).get('body') ?? '');
    act(async () => {
      await api('PATCH', `/rooms/${room}/messages/${l.seq}`, { body });
      setEditing(false);
    })();
  }

  const cls = ['msg', grouped ? 'grouped' : '', mine ? 'mine' : '', l.status ?? '', mentionsMe ? 'mention' : ''].filter(Boolean).join(' ');
  return (
    <article class={cls} aria-label={`${nameOf(l.from)} at ${time(l.ts)}`} data-seq={l.seq}>
      {!grouped && (
        <header>
          <b>{mine ? (me.displayName ?? me.username) : nameOf(l.from)}</b> <time dateTime={new Date(l.ts).toISOString()}>{time(l.ts)}</time>
        </header>
      )}
      {l.deleted ? (
        <p class="body muted">message deleted</p>
      ) : editing ? (
        <form class="edit" onSubmit={saveEdit}>
          <input name="body" defaultValue={l.body} maxLength={16384} aria-label="Edit message" />
          <button type="submit">Save</button>
          <button type="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        l.body && (
          <p class="body">
            {l.body}
            {l.edited && <span class="muted"> (edited)</span>}
          </p>
        )
      )}
      {!l.deleted && l.att && l.att.length > 0 && <Files files={l.att} />}
      {l.status === 'pending' && <span class="state">sending…</span>}
      {seen && <span class="state seen">Seen</span>}
      {l.status === 'failed' && (
        <span class="state failed" role="alert">
          not sent: {l.error}{' '}
          <button type="button" class="link" onClick={() => timeline.retry(l.cid as string)}>
            Retry
          </button>{' '}
          <button type="button" class="link" onClick={() => timeline.discard(l.cid as string)}>
            Discard
          </button>
        </span>
      )}
      {l.reactions && l.reactions.length > 0 && (
        <div class="reactions">
          {l.reactions.map((r) => (
            <button type="button" key={r.emoji} class={r.me ? 'on' : undefined} aria-pressed={r.me} onClick={react(r.emoji, r.me)}>
              {r.emoji} {r.count}
            </button>
          ))}
        </div>
      )}
      {l.seq !== undefined && !l.deleted && !l.status && (
        <div class="actions">
          {QUICK_REACTIONS.map((e) => {
            const on = l.reactions?.some((r) => r.emoji === e && r.me) ?? false;
            return (
              <button type="button" key={e} aria-label={`React ${e}`} onClick={react(e, on)}>
                {e}
              </button>
            );
          })}
          {mine && (
            <button type="button" onClick={() => setEditing(true)}>
              Edit
            </button>
          )}
          {(mine || role === 'owner' || role === 'moderator') && (
            <button type="button" onClick={act(() => api('DELETE', `/rooms/${room}/messages/${l.seq}`))}>
              Delete
            </button>
          )}
        </div>
      )}
      <Alert error={error} />
    </article>
  );
}
