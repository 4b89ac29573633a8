// Starting a conversation: create a group room, join a public one, or open a direct room with
// someone found by name.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import type { Me, Room, User } from '../types.js';
import { Alert, useAction } from '../ui.js';
import { refreshRoom } from './rooms.js';

export function Dialog({
  title,
  onClose,
  mayClose = () => true,
  children,
}: {
  title: string;
  onClose: () => void;
  /** Asked before closing (Escape or ✕): false keeps the dialog open. */
  mayClose?: () => boolean;
  children: preact.ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      onClose={onClose}
      aria-label={title}
      onCancel={(e) => {
        if (!mayClose()) e.preventDefault();
      }}
    >
      <div class="dialog-head">
        <h2>{title}</h2>
        <button type="button" onClick={() => mayClose() && ref.current?.close()} aria-label="Close">
          ✕
        </button>
      </div>
      {children}
    </dialog>
  );
}

function go(id: string, onClose: () => void) {
  location.hash = `#/room/${id}`;
  onClose();
}

export function NewRoomDialog({ me, onClose }: { me: Me; onClose: () => void }) {
  const { error, act: guard } = useAction();
  const [found, setFound] = useState<Room[] | undefined>();
  const [people, setPeople] = useState<User[] | undefined>();

  async function create(e: Event) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget as HTMLFormElement).get('name') ?? '').trim();
    await guard(async () => {
      const { room } = await api<{ room: Room }>('POST', '/rooms', { kind: 'group', name });
      await refreshRoom(room.id, me.id);
      go(room.id, onClose);
    })();
  }

  async function searchRooms(e: Event) {
    e.preventDefault();
    const q = String(new FormData(e.currentTarget as HTMLFormElement).get('q') ?? '');
    await guard(async () => setFound((await api<{ rooms: Room[] }>('GET', '/rooms', undefined, { query: { scope: 'public', q, limit: '20' } })).rooms))();
  }

  async function searchPeople(e: Event) {
    e.preventDefault();
    const q = String(new FormData(e.currentTarget as HTMLFormElement).get('q') ?? '');
    await guard(async () => setPeople((await api<{ users: User[] }>('GET', '/users', undefined, { query: { q, limit: '20' } })).users))();
  }

  const join = (r: Room) =>
    guard(async () => {
      await api('POST', `/rooms/${r.id}/join`);
      await refreshRoom(r.id, me.id);
      go(r.id, onClose);
    });

  const message = (u: User) =>
    guard(async () => {
      const { room } = await api<{ room: Room }>('POST', '/rooms', { kind: 'direct', peerId: u.id });
      await refreshRoom(room.id, me.id);
      go(room.id, onClose);
    });

  return (
    <Dialog title="New conversation" onClose={onClose}>
      <form onSubmit={create} class="row">
        <label class="grow">
          New group room
          <input name="name" required maxLength={64} placeholder="Room name" />
        </label>
        <button type="submit" class="primary">
          Create
        </button>
      </form>
      <form onSubmit={searchRooms} class="row">
        <label class="grow">
          Find a group room
          <input name="q" type="search" maxLength={64} placeholder="Part of its name" />
        </label>
        <button type="submit">Search</button>
      </form>
      {found && (
        <ul class="pick" aria-label="Rooms found">
          {found.length === 0 && <li class="muted">No room matches.</li>}
          {found.map((r) => (
            <li key={r.id}>
              <span class="grow"># {r.name}</span>
              <button type="button" onClick={join(r)}>
                Join
              </button>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={searchPeople} class="row">
        <label class="grow">
          Message someone
          <input name="q" type="search" required maxLength={64} placeholder="Their name" />
        </label>
        <button type="submit">Search</button>
      </form>
      {people && (
        <ul class="pick" aria-label="People found">
          {people.length === 0 && <li class="muted">Nobody matches.</li>}
          {people.map((u) => (
            <li key={u.id}>
              <span class="grow">
                {u.displayName ?? u.username} <span class="muted">@{u.username}</span>
              </span>
              <button type="button" onClick={message(u)}>
                Message
              </button>
            </li>
          ))}
        </ul>
      )}
      <Alert error={error} />
    </Dialog>
  );
}
