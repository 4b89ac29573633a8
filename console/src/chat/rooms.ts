// The signed-in person's rooms for the sidebar: loaded over REST, then kept current from their own
// stream on the WebSocket (rooms added and removed, read markers moving on any device, new-message
// notices) and the unread list each (re)connection's catch-up brings.

import { computed, signal } from '@preact/signals';
import type { SwitchboardClient } from '../../../src/client/index.js';
import { api } from '../api.js';
import type { Member, Room, User } from '../types.js';

export type RoomEntry = Room;

export const rooms = signal<RoomEntry[]>([]);
/** Usernames by user id, learnt from member lists, presence and notices. */
export const names = signal<ReadonlyMap<string, string>>(new Map());
/** The room on screen, whose messages are read as they come. */
export const openRoomId = signal<string | undefined>(undefined);

/** Forgets everything of the person who signed out. */
export function resetChat(): void {
  rooms.value = [];
  names.value = new Map();
  asked.clear();
  openRoomId.value = undefined;
}

export const totalUnread = computed(() => rooms.value.reduce((n, r) => n + (r.notify === 'muted' ? 0 : (r.unread ?? 0)), 0));

export function learnName(id: string | null | undefined, username: string | undefined): void {
  if (!id || !username || names.value.get(id) === username) return;
  const next = new Map(names.value);
  next.set(id, username);
  names.value = next;
}

/** Ids already asked for (or known): each unknown person is looked up once. */
const asked = new Set<string>();

/** Looks up the people among `ids` whose names are not known yet (senders of old messages, notices). */
export function resolveNames(ids: Iterable<string | null | undefined>): Promise<void> {
  const unknown = [...new Set(ids)].filter((id): id is string => !!id && !names.value.has(id) && !asked.has(id));
  for (const id of unknown) asked.add(id);
  return Promise.all(
    unknown.map((id) =>
      api<{ user: User }>('GET', `/users/${id}`).then(
        (r) => learnName(r.user.id, r.user.username),
        () => {},
      ),
    ),
  ).then(() => {});
}

export function nameOf(id: string | null | undefined): string {
  if (!id) return 'someone';
  return names.value.get(id) ?? 'someone';
}

export function roomTitle(r: RoomEntry): string {
  return r.kind === 'direct' ? (r.peer?.username ?? 'direct') : (r.name ?? 'room');
}

function update(id: string, patch: Partial<RoomEntry>): void {
  rooms.value = rooms.value.map((r) => (r.id === id ? { ...r, ...patch } : r));
}

function upsert(r: RoomEntry): void {
  const i = rooms.value.findIndex((x) => x.id === r.id);
  rooms.value = i < 0 ? [...rooms.value, r] : rooms.value.map((x) => (x.id === r.id ? { ...x, ...r } : x));
}

/** A direct room with its other person: the listing names them; a single room is completed from its members. */
async function withPeer(r: Room, myId: string): Promise<RoomEntry> {
  if (r.kind !== 'direct') return r;
  if (r.peer !== undefined) {
    if (r.peer) learnName(r.peer.id, r.peer.username);
    return r;
  }
  const { members } = await api<{ members: Member[] }>('GET', `/rooms/${r.id}/members`);
  for (const m of members) learnName(m.userId, m.username);
  const other = members.find((m) => m.userId !== myId);
  return other ? { ...r, peer: { id: other.userId, username: other.username } } : r;
}

export async function loadRooms(myId: string): Promise<void> {
  const all: Room[] = [];
  let cursor: string | null = null;
  do {
    const page: { rooms: Room[]; nextCursor: string | null } = await api('GET', '/rooms', undefined, {
      query: { scope: 'mine', limit: '100', ...(cursor ? { cursor } : {}) },
    });
    all.push(...page.rooms);
    cursor = page.nextCursor;
  } while (cursor);
  // A direct room whose other person cannot be read now still shows (as "direct").
  rooms.value = await Promise.all(all.map((r) => withPeer(r, myId).catch(() => r)));
}

/** Fetches one room again (its counts after a read marker moved elsewhere, or a new room). */
export async function refreshRoom(id: string, myId: string): Promise<RoomEntry> {
  const { room } = await api<{ room: Room }>('GET', `/rooms/${id}`);
  const entry = await withPeer(room, myId);
  upsert(entry);
  return entry;
}

export function forgetRoom(id: string): void {
  rooms.value = rooms.value.filter((r) => r.id !== id);
  if (openRoomId.value === id) openRoomId.value = undefined;
}

/** The open room was read up to `seq` here. */
export function readHere(id: string, seq: number): void {
  const r = rooms.value.find((x) => x.id === id);
  if (r && (r.readSeq ?? 0) < seq) update(id, { readSeq: seq, unread: seq >= r.lastSeq ? 0 : r.unread, mentions: seq >= r.lastSeq ? 0 : r.mentions });
}

export function sawSeq(id: string, seq: number): void {
  const r = rooms.value.find((x) => x.id === id);
  if (r && r.lastSeq < seq) update(id, { lastSeq: seq });
}

/** Keeps the list current from the client's events; returns the function that stops it. */
export function followRooms(c: SwitchboardClient, myId: string): () => void {
  const offs = [
    c.on('notice', (n) => {
      if (n.kind === 'message') {
        learnName(n.from, undefined);
        if (n.room === openRoomId.value) return;
        const r = rooms.value.find((x) => x.id === n.room);
        if (r && n.seq > r.lastSeq) update(n.room, { lastSeq: n.seq, unread: (r.unread ?? 0) + n.count, mentions: (r.mentions ?? 0) + (n.mention ? 1 : 0) });
      } else if (n.kind === 'room_added') void refreshRoom(n.room.id, myId);
      else if (n.kind === 'room_removed') forgetRoom(n.room);
      else if (n.kind === 'role_changed') update(n.room, { role: n.role });
      else if (n.kind === 'notify') update(n.room, { notify: n.level });
    }),
    c.on('read', (r) => {
      const room = rooms.value.find((x) => x.id === r.room);
      if (room && (room.readSeq ?? 0) < r.seq) void refreshRoom(r.room, myId);
    }),
    c.on('feed', (f) => {
      // The catch-up after each connection: exact counts for the rooms with unread messages.
      if (f.reset) void loadRooms(myId);
      const unread = new Map(f.unread.map((u) => [u.room, u]));
      const complete = f.unread.length < 200;
      rooms.value = rooms.value.map((r) => {
        const u = unread.get(r.id);
        // The open room is being read: its counts are this page's, not the catch-up's.
        if (u && r.id !== openRoomId.value) return { ...r, unread: u.unread, mentions: u.mentions, lastSeq: Math.max(r.lastSeq, u.seq) };
        if (u) return { ...r, lastSeq: Math.max(r.lastSeq, u.seq) };
        return complete && r.id !== openRoomId.value ? { ...r, unread: 0, mentions: 0 } : r;
      });
    }),
    c.on('event', (e) => {
      if (e.kind === 'room_deleted') forgetRoom(e.room);
      else if (e.kind === 'room_renamed') update(e.room, { name: e.name });
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
