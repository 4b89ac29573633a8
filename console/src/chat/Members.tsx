// A room's people beside its log: who is a member, in which role, who is here now; and what your
// rank allows: rename the room, make moderators, remove or ban members; your notification level.

import { useEffect, useState } from 'preact/hooks';
import type { UserRef } from '../../../src/protocol/frames.js';
import { api } from '../api.js';
import type { Me, Member, Role } from '../types.js';
import { Alert, useAction } from '../ui.js';
import { learnName, type RoomEntry } from './rooms.js';

const RANK: Record<Role, number> = { owner: 3, moderator: 2, member: 1 };

/** Reloads when remounted: the room gives it a new key on each membership change. */
export function Members({ room, me, present, onClose }: { room: RoomEntry; me: Me; present: UserRef[]; onClose: () => void }) {
  const [members, setMembers] = useState<Member[]>([]);
  const [more, setMore] = useState<string | null>(null);
  const { error, act: guard } = useAction();
  const mine = me.isAdmin ? 3 : RANK[room.role ?? 'member'];
  const group = room.kind === 'group';

  const load = async (cursor?: string) => {
    const r = await api<{ members: Member[]; nextCursor: string | null }>('GET', `/rooms/${room.id}/members`, undefined, {
      query: { limit: '100', ...(cursor ? { cursor } : {}) },
    });
    for (const m of r.members) learnName(m.userId, m.username);
    setMembers((ms) => (cursor ? [...ms, ...r.members] : r.members));
    setMore(r.nextCursor);
  };
  useEffect(
    guard(() => load()),
    [room.id, room.lastSeq],
  );

  function rename(e: Event) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget as HTMLFormElement).get('name') ?? '').trim();
    guard(() => api('PATCH', `/rooms/${room.id}`, { name }))();
  }

  const here = new Set(present.map((u) => u.id));
  return (
    <aside class="members" aria-label="Members">
      <div class="dialog-head">
        <h3>People</h3>
        <button type="button" onClick={onClose} aria-label="Close the member list">
          ✕
        </button>
      </div>
      {room.role && (
        <label>
          Notify me of
          <select
            value={room.notify}
            onChange={(e) => guard(() => api('PUT', `/rooms/${room.id}/notifications`, { level: (e.currentTarget as HTMLSelectElement).value }))()}
          >
            <option value="all">every message</option>
            <option value="mentions">mentions only</option>
            <option value="muted">nothing (muted)</option>
          </select>
        </label>
      )}
      {group && mine >= 2 && (
        <form class="row" onSubmit={rename}>
          <label class="grow">
            Room name
            <input name="name" defaultValue={room.name ?? ''} required maxLength={100} />
          </label>
          <button type="submit">Rename</button>
        </form>
      )}
      <ul class="pick">
        {members.map((m) => {
          const lower = group && m.userId !== me.id && RANK[m.role] < mine;
          return (
            <li key={m.userId}>
              <span class={here.has(m.userId) ? 'dot on' : 'dot'} title={here.has(m.userId) ? 'here now' : 'away'} aria-hidden="true" />
              <span class="grow">
                {m.username} {m.role !== 'member' && <span class="muted">{m.role}</span>}
                <span class="sr">{here.has(m.userId) ? ', here now' : ''}</span>
              </span>
              {lower && mine === 3 && m.role !== 'owner' && (
                <button
                  type="button"
                  onClick={guard(() => api('PATCH', `/rooms/${room.id}/members/${m.userId}`, { role: m.role === 'moderator' ? 'member' : 'moderator' }))}
                >
                  {m.role === 'moderator' ? 'Make member' : 'Make moderator'}
                </button>
              )}
              {lower && (
                <>
                  <button type="button" aria-label={`Remove ${m.username}`} onClick={guard(() => api('DELETE', `/rooms/${room.id}/members/${m.userId}`))}>
                    Remove
                  </button>
                  <button type="button" class="danger" aria-label={`Ban ${m.username}`} onClick={guard(() => api('PUT', `/rooms/${room.id}/bans/${m.userId}`))}>
                    Ban
                  </button>
                </>
              )}
            </li>
          );
        })}
      </ul>
      {more && (
        <button type="button" onClick={guard(() => load(more))}>
          More
        </button>
      )}
      <Alert error={error} />
    </aside>
  );
}
