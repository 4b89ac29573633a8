// The signed-in app: a header with the connection's state, the room list, and the open room. The
// open room follows the address (#/room/<id>), so the back button and reloads work.

import { useEffect, useState } from 'preact/hooks';
import { NewRoomDialog } from './chat/NewRoom.js';
import { RoomPane } from './chat/RoomPane.js';
import { followRooms, learnName, loadRooms, openRoomId, rooms, roomTitle, totalUnread } from './chat/rooms.js';
import { Toasts } from './chat/Toasts.js';
import { Contacts } from './people/Contacts.js';
import { Profile } from './people/Profile.js';
import { client, connection, logout, problem } from './session.js';
import type { Me } from './types.js';

/** What the address shows: a room (or none) in the chat, the robot list, or one robot. */
type View =
  | { kind: 'chat'; room: string | undefined }
  | { kind: 'robots' }
  | { kind: 'robot'; id: string }
  | { kind: 'ops' }
  | { kind: 'people' }
  | { kind: 'me' };

function viewOf(hash: string): View {
  const m = /^#\/(room|robot)\/([0-9a-f-]{36})$/.exec(hash);
  if (m?.[1] === 'robot') return { kind: 'robot', id: m[2] as string };
  if (hash === '#/robots') return { kind: 'robots' };
  if (hash === '#/ops') return { kind: 'ops' };
  if (hash === '#/people') return { kind: 'people' };
  if (hash === '#/me') return { kind: 'me' };
  return { kind: 'chat', room: m?.[2] };
}

const STATE_LABEL = { idle: 'Offline', connecting: 'Connecting…', open: 'Connected', reconnecting: 'Reconnecting…', closed: 'Disconnected' } as const;

export function Shell({ me }: { me: Me }) {
  const [dialog, setDialog] = useState(false);
  const [view, setView] = useState<View>(() => viewOf(location.hash));
  const c = client.value;
  const [robotPages, setRobotPages] = useState<typeof import('./robots/pages.js') | undefined>();

  useEffect(() => {
    const sync = () => {
      const v = viewOf(location.hash);
      setView(v);
      openRoomId.value = v.kind === 'chat' ? v.room : undefined;
    };
    sync();
    addEventListener('hashchange', sync);
    return () => removeEventListener('hashchange', sync);
  }, []);

  useEffect(() => {
    learnName(me.id, me.username);
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
  const chat = view.kind === 'chat';
  useEffect(() => {
    if ((view.kind === 'robots' || view.kind === 'robot' || view.kind === 'ops') && !robotPages)
      import('./robots/pages.js').then(setRobotPages, (e: Error) => {
        problem.value = `Could not load the robot pages: ${e.message}`;
      });
  }, [view.kind, robotPages]);
  return (
    <div class={!chat ? 'shell wide' : open ? 'shell room-open' : 'shell'}>
      <header class="top">
        <a href="#/" class="brand">
          <span class="logo" aria-hidden="true" /> Switchboard
        </a>
        <nav class="sections" aria-label="Sections">
          <a href="#/" aria-current={chat ? 'page' : undefined}>
            Chat{totalUnread.value > 0 ? ` (${totalUnread.value})` : ''}
          </a>
          <a href="#/people" aria-current={view.kind === 'people' ? 'page' : undefined}>
            People
          </a>
          <a href="#/robots" aria-current={view.kind === 'robots' || view.kind === 'robot' ? 'page' : undefined}>
            Robots
          </a>
          {me.isAdmin && (
            <a href="#/ops" aria-current={view.kind === 'ops' ? 'page' : undefined}>
              Operators
            </a>
          )}
        </nav>
        <span class={`conn ${state}`} role="status" aria-live="polite">
          {STATE_LABEL[state]}
        </span>
        <span class="spacer" />
        <a href="#/me" class="whoami" title={me.isAdmin ? 'administrator' : undefined} aria-current={view.kind === 'me' ? 'page' : undefined}>
          {me.displayName ?? me.username}
        </a>
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
      {chat && (
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
              // What asks for attention first (mentions, then unread), then by name.
              .sort((a, b) => (b.mentions ?? 0) - (a.mentions ?? 0) || (b.unread ?? 0) - (a.unread ?? 0) || roomTitle(a).localeCompare(roomTitle(b)))
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
      )}
      <main class="main">
        {(view.kind === 'robots' || view.kind === 'robot' || view.kind === 'ops') && !robotPages && <p class="empty">Loading…</p>}
        {view.kind === 'people' && c && <Contacts client={c} me={me} />}
        {view.kind === 'me' && <Profile me={me} />}
        {view.kind === 'robots' && robotPages && <robotPages.RobotList />}
        {view.kind === 'ops' && robotPages && (me.isAdmin ? <robotPages.Operators myId={me.id} /> : <p class="empty">Operators only.</p>)}
        {view.kind === 'robot' && c && robotPages && <robotPages.RobotPage key={view.id} id={view.id} client={c} me={me} />}
        {chat &&
          (open && c ? (
            <RoomPane key={open} id={open} client={c} me={me} />
          ) : (
            <div class="empty">
              <p>Pick a room, or start one with New.</p>
            </div>
          ))}
      </main>
      {c && <Toasts client={c} />}
      {dialog && c && <NewRoomDialog me={me} onClose={() => setDialog(false)} />}
    </div>
  );
}
