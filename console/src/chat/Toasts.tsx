// Notices from the person's own stream while they look elsewhere: a new message in another room
// (per their notification level there, which the hub applies), being added to a room, a contact
// request. Each shows for a few seconds; one about a room opens it.

import { signal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import type { SwitchboardClient } from '../../../src/client/index.js';
import { nameOf, openRoomId, resolveNames, rooms, roomTitle } from './rooms.js';

interface Toast {
  id: number;
  text: string;
  href: string | undefined;
}

const SHOWN_MS = 6000;
const MAX = 3;
const toasts = signal<Toast[]>([]);
let next = 0;

function show(text: string, href?: string): void {
  const t = { id: ++next, text, href };
  toasts.value = [...toasts.value, t].slice(-MAX);
  setTimeout(() => {
    toasts.value = toasts.value.filter((x) => x !== t);
  }, SHOWN_MS);
}

export function Toasts({ client }: { client: SwitchboardClient }) {
  useEffect(() => {
    const offs = [
      client.on('notice', (n) => {
        if (n.kind === 'message' && n.room !== openRoomId.value) {
          const r = rooms.value.find((x) => x.id === n.room);
          const where = r ? (r.kind === 'direct' ? '' : ` in #${roomTitle(r)}`) : '';
          void resolveNames([n.from]).then(() => show(`${n.mention ? '@ ' : ''}${nameOf(n.from)}${where}: ${n.preview}`, `#/room/${n.room}`));
        } else if (n.kind === 'room_added')
          show(
            `You were added to ${n.room.kind === 'direct' ? `a conversation with ${n.room.peer?.username ?? 'someone'}` : `#${n.room.name}`}`,
            `#/room/${n.room.id}`,
          );
      }),
      client.on('contact', (c) => {
        if (c.kind === 'requested') show(`${c.user.username} asks to be your contact`, '#/people');
        else if (c.kind === 'accepted') show(`${c.user.username} is now a contact`, '#/people');
      }),
    ];
    return () => {
      for (const off of offs) off();
    };
  }, [client]);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.value.map((t) =>
        t.href ? (
          <a key={t.id} class="toast" href={t.href} onClick={() => (toasts.value = toasts.value.filter((x) => x !== t))}>
            {t.text}
          </a>
        ) : (
          <p key={t.id} class="toast">
            {t.text}
          </p>
        ),
      )}
    </div>
  );
}
