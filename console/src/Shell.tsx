// The signed-in app: a header with the connection's state, the room list, and the open room. The
// open room follows the address (#/room/<id>), so the back button and reloads work.

import { useEffect, useState } from 'preact/hooks';
import { NewRoomDialog } from './chat/NewRoom.js';
import { RoomPane } from './chat/RoomPane.js';
import { followRooms, loadRooms, openRoomId, rooms, roomTitle, totalUnread } from './chat/rooms.js';
import { client, connection, logout, problem } from './session.js';
import type { Me } from './types.js';

function roomFromHash(): string | undefined {
  return /^#\/room\/([0-9a-f-]{36})$/.exec(location.hash)?.[1];
}

const STATE_LABEL = { idle: 'Offline', connecting: 'Connecting…', open: 'Connected', reconnecting: 'Reconnecting…', closed: 'Disconnected' } as const;

export function Shell({ me }: { me: Me }) {
  const [dialog, setDialog] = useState(false);
  const c = client.value;

  useEffect(() => {
    const sync = () => {
      openRoomId.value = roomFromHash();
    };
    sync();
    addEventListener('hashchange', sync);
    return () => removeEventListener('hashchange', sync);
  }, []);

  useEffect(() => {
    if (!c) return;
    void loadRooms(me.id).catch((e: Error) => {
      problem.value = e.message;
    });
    return followRooms(c, me.id);
  }, [c, me.id]);

  useEffect(() => {
    const n = totalUnread.value;
    document.title = n > 0 ? `(${n}) Switchboard` : 'Switchboard';
  }, [totalUnread.value]);

  const open = openRoomId.value;
  const state = connection.value;
  return (
    <div class={open ? 'shell room-open' : 'shell'}>
      <header class="top">
        <a href="#/" class="brand">
          <span class="logo" aria-hidden="true" /> Switchboard
        </a>
        <span class={`conn ${state}`} role="status" aria-live="polite">
          {STATE_LABEL[state]}
        </span>
        <span class="spacer" />
        <span class="whoami" title={me.isAdmin ? 'administrator' : undefined}>
          {me.displayName ?? me.username}
        </span>
        <button type="button" onClick={() => void logout()}>
          Sign out
        </button>
      </header>
      {problem.value && (
        <p class="banner" role="alert">
          {problem.value}{' '}
          <button type="button" class="link" onClick={() => (problem.value = undefined)}>
            Dismiss
          </button>
        </p>
      )}
      <nav class="side" aria-label="Rooms">
        <div class="side-head">
          <h2>Rooms</h2>
          <button type="button" onClick={() => setDialog(true)} aria-haspopup="dialog">
            New
          </button>
        </div>
        <ul class="rooms">
          {rooms.value
            .slice()
            .sort((a, b) => b.lastSeq - a.lastSeq || roomTitle(a).localeCompare(roomTitle(b)))
            .map((r) => (
              <li key={r.id}>
                <a href={`#/room/${r.id}`} class={r.id === open ? 'on' : undefined} aria-current={r.id === open ? 'page' : undefined}>
                  <span class={r.kind === 'direct' ? 'kind dm' : 'kind'} aria-hidden="true">
                    {r.kind === 'direct' ? '@' : '#'}
                  </span>
                  <span class="title">{roomTitle(r)}</span>
                  {(r.mentions ?? 0) > 0 && (
                    <span class="badge mention">
                      @{r.mentions}
                      <span class="sr"> mentions</span>
                    </span>
                  )}
                  {(r.unread ?? 0) > 0 && (
                    <span class={r.notify === 'muted' ? 'badge muted' : 'badge'}>
                      {r.unread}
                      <span class="sr"> unread</span>
                    </span>
                  )}
                </a>
              </li>
            ))}
        </ul>
        {rooms.value.length === 0 && <p class="muted pad">No rooms yet: create one, or find one to join.</p>}
      </nav>
      <main class="main">
        {open && c ? (
          <RoomPane key={open} id={open} client={c} me={me} />
        ) : (
          <div class="empty">
            <p>Pick a room, or start one with New.</p>
          </div>
        )}
      </main>
      {dialog && c && <NewRoomDialog me={me} onClose={() => setDialog(false)} />}
    </div>
  );
}
