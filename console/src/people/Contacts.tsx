// Your contacts, the requests to and from you, and the people you blocked: find someone, ask them,
// accept or decline, message a contact, block or unblock. Reloads on every `contact` frame, so a
// request made or accepted on another device, or by the other person, shows at once.

import { useEffect, useState } from 'preact/hooks';
import type { SwitchboardClient } from '../../../src/client/index.js';
import { api } from '../api.js';
import { refreshRoom } from '../chat/rooms.js';
import type { Me, Room, User } from '../types.js';
import { Alert, useAction } from '../ui.js';

interface Entry {
  user: User;
  since: string;
}

const label = (u: User) => u.displayName ?? u.username;

export function Contacts({ client, me }: { client: SwitchboardClient; me: Me }) {
  const [contacts, setContacts] = useState<Entry[]>([]);
  const [incoming, setIncoming] = useState<Entry[]>([]);
  const [outgoing, setOutgoing] = useState<Entry[]>([]);
  const [blocks, setBlocks] = useState<Entry[]>([]);
  const [found, setFound] = useState<User[] | undefined>();
  const { error, run: guard } = useAction();

  const load = () =>
    guard(async () => {
      const q = { limit: '100' };
      const [c, i, o, b] = await Promise.all([
        api<{ contacts: Entry[] }>('GET', '/contacts', undefined, { query: q }),
        api<{ requests: Entry[] }>('GET', '/contacts/requests', undefined, { query: { ...q, direction: 'incoming' } }),
        api<{ requests: Entry[] }>('GET', '/contacts/requests', undefined, { query: { ...q, direction: 'outgoing' } }),
        api<{ blocks: Entry[] }>('GET', '/blocks', undefined, { query: q }),
      ]);
      setContacts(c.contacts);
      setIncoming(i.requests);
      setOutgoing(o.requests);
      setBlocks(b.blocks);
    });
  useEffect(() => {
    load();
    return client.on('contact', load);
  }, [client]);

  const act = (method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown) => () => guard(() => api(method, path, body).then(load));
  const message = (u: User) => () =>
    guard(async () => {
      const { room } = await api<{ room: Room }>('POST', '/rooms', { kind: 'direct', peerId: u.id });
      await refreshRoom(room.id, me.id);
      location.hash = `#/room/${room.id}`;
    });

  function search(e: Event) {
    e.preventDefault();
    const q = String(new FormData(e.currentTarget as HTMLFormElement).get('q') ?? '');
    guard(async () => setFound((await api<{ users: User[] }>('GET', '/users', undefined, { query: { q, limit: '20' } })).users));
  }

  const row = (e: Entry, buttons: preact.ComponentChildren) => (
    <li key={e.user.id}>
      <span class="grow">
        {label(e.user)} <span class="muted">@{e.user.username}</span>
      </span>
      {buttons}
    </li>
  );
  return (
    <section class="page" aria-label="People">
      <h2>People</h2>
      <Alert error={error} />
      <form class="row narrow" onSubmit={search}>
        <label class="grow">
          Find someone
          <input name="q" type="search" required maxLength={320} placeholder="A name, or an exact email address" />
        </label>
        <button type="submit">Search</button>
      </form>
      {found && (
        <ul class="pick narrow" aria-label="People found">
          {found.length === 0 && <li class="muted">Nobody matches.</li>}
          {found.map((u) =>
            row({ user: u, since: '' }, [
              <button type="button" key="m" onClick={message(u)}>
                Message
              </button>,
              <button type="button" key="a" onClick={act('POST', '/contacts/requests', { userId: u.id })} aria-label={`Add ${u.username} as a contact`}>
                Add contact
              </button>,
              <button type="button" key="b" class="danger" onClick={act('PUT', `/blocks/${u.id}`)} aria-label={`Block ${u.username}`}>
                Block
              </button>,
            ]),
          )}
        </ul>
      )}
      <h3>Requests to you</h3>
      <ul class="pick narrow" aria-label="Requests to you">
        {incoming.length === 0 && <li class="muted">None.</li>}
        {incoming.map((e) =>
          row(e, [
            <button
              type="button"
              key="a"
              class="primary"
              onClick={act('POST', `/contacts/requests/${e.user.id}/accept`)}
              aria-label={`Accept ${e.user.username}`}
            >
              Accept
            </button>,
            <button type="button" key="d" onClick={act('DELETE', `/contacts/requests/${e.user.id}`)} aria-label={`Decline ${e.user.username}`}>
              Decline
            </button>,
          ]),
        )}
      </ul>
      <h3>Contacts</h3>
      <ul class="pick narrow" aria-label="Contacts">
        {contacts.length === 0 && <li class="muted">None yet.</li>}
        {contacts.map((e) =>
          row(e, [
            <button type="button" key="m" onClick={message(e.user)}>
              Message
            </button>,
            <button type="button" key="r" onClick={act('DELETE', `/contacts/${e.user.id}`)} aria-label={`Remove ${e.user.username}`}>
              Remove
            </button>,
          ]),
        )}
      </ul>
      {outgoing.length > 0 && (
        <>
          <h3>Your requests</h3>
          <ul class="pick narrow" aria-label="Your requests">
            {outgoing.map((e) =>
              row(
                e,
                <button type="button" onClick={act('DELETE', `/contacts/requests/${e.user.id}`)} aria-label={`Cancel the request to ${e.user.username}`}>
                  Cancel
                </button>,
              ),
            )}
          </ul>
        </>
      )}
      {blocks.length > 0 && (
        <>
          <h3>Blocked</h3>
          <ul class="pick narrow" aria-label="Blocked">
            {blocks.map((e) =>
              row(
                e,
                <button type="button" onClick={act('DELETE', `/blocks/${e.user.id}`)} aria-label={`Unblock ${e.user.username}`}>
                  Unblock
                </button>,
              ),
            )}
          </ul>
        </>
      )}
    </section>
  );
}
