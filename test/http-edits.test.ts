// Edits and reactions through the real server, on PostgreSQL and the embedded store: an edit is a
// message_edited event in the room's order (live in both encodings, replayed on resume), history
// shows the current text marked edited; the sender's window (SB_EDIT_WINDOW_S) bounds edits and
// their own deletions, not a moderator's; a deletion empties the earlier texts too; reactions are
// events, counted per emoji in history (REST and `hist`); every refusal by a table.

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { type Frame, openFor, subscribe } from './helpers/ws.js';

type User = Awaited<ReturnType<Api['signUp']>>;

function isError(t: Test, r: ApiResponse, status: number, code: string, what = code): void {
  t.equal(r.status, status, `${what}: status ${status} (${r.text})`);
  t.equal(r.body?.error?.code, code, `${what}: code ${code}`);
}

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded' : 'postgres', async (t) => {
    const hub = await startTestHub(t, { embedded, env: { ...FAST, SB_MAX_MESSAGE_BYTES: '100', SB_EDIT_WINDOW_S: '3600' } });
    const api = new Api(hub.url);
    const as = (u: User) => ({ token: u.token });
    const people = (n: number) => Promise.all(Array.from({ length: n }, () => api.signUp(uniqueName('ed'))));
    const group = async (owner: User, ...members: User[]) => {
      const id = (await api.post('/api/v1/rooms', { kind: 'group', name: 'edits' }, as(owner))).body.room.id as string;
      for (const m of members) await api.post(`/api/v1/rooms/${id}/join`, undefined, as(m));
      return id;
    };
    const post = async (room: string, u: User, body: string) =>
      (await api.post(`/api/v1/rooms/${room}/messages`, { cid: randomUUID(), body }, as(u))).body.message;
    const edit = (room: string, seq: number, body: string, u: User) => api.request('PATCH', `/api/v1/rooms/${room}/messages/${seq}`, { body }, as(u));
    const react = (room: string, seq: number, emoji: string, u: User, add = true) =>
      api.request(add ? 'PUT' : 'DELETE', `/api/v1/rooms/${room}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`, undefined, as(u));
    const history = async (room: string, u: User) => (await api.get(`/api/v1/rooms/${room}/messages?after=0&limit=200`, as(u))).body.messages as any[];

    t.test('an edit: live in both encodings, in history marked edited, replayed on resume; a deletion takes its texts too', async (t) => {
      const [a, b] = (await people(2)) as [User, User];
      const room = await group(a, b);
      const json = await openFor(t, hub.url, b.token, { encoding: 'json' });
      const packed = await openFor(t, hub.url, b.token);
      await subscribe(json, room);
      await subscribe(packed, room);
      const m = await post(room, a, 'helo');
      const r = await edit(room, m.seq, 'hello', a);
      t.match([r.status, r.body.message], [200, { seq: m.seq, id: m.id, body: 'hello', editedAt: String }], 'the edited message');
      for (const c of [json, packed]) {
        const e = await c.next((f) => f.t === 'event' && f.kind === 'message_edited', 'message_edited');
        t.match(e, { room, seq: m.seq + 1, from: a.id, target: m.seq, body: 'hello' });
      }
      t.equal((await edit(room, m.seq, 'hello', a)).status, 200, 'the same text again');
      const stored = await history(room, b);
      t.match(stored.at(-2), { seq: m.seq, body: 'hello', editedAt: String, cid: m.cid });
      t.match(stored.at(-1), { seq: m.seq + 1, event: { kind: 'message_edited', target: m.seq, body: 'hello' } });
      t.equal(stored.length, m.seq + 1, 'the same text wrote no second event');
      const retry = await api.post(`/api/v1/rooms/${room}/messages`, { cid: m.cid, body: 'helo' }, as(a));
      t.match([retry.status, retry.body], [200, { duplicate: true, message: { seq: m.seq, body: 'hello' } }], 'a retry of the original post is a duplicate');
      const again = await api.post(`/api/v1/rooms/${room}/messages`, { cid: m.cid, body: 'helo' }, as(a));
      t.match([again.status, again.body], [200, { duplicate: true, message: { seq: m.seq, body: 'hello' } }], 'and so is a second retry');

      const late = await openFor(t, hub.url, b.token, { encoding: 'json' });
      await subscribe(late, room, m.seq - 1);
      t.match(
        await late.next((f) => f.seq === m.seq, 'the message'),
        { t: 'msg', body: 'hello', edited: true },
        'a resume sends the current text, marked edited',
      );

      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${m.seq}`, as(a))).status, 204, 'then deleted by its sender');
      const after = await history(room, b);
      t.match(after[m.seq - 1], { body: '', deletedAt: String });
      t.notOk('editedAt' in after[m.seq - 1], 'a tombstone, no longer marked edited');
      t.same(after[m.seq].event, { kind: 'message_edited', target: m.seq, body: '' }, 'the edit no longer carries the text');
      const later = await openFor(t, hub.url, b.token, { encoding: 'json' });
      await subscribe(later, room, m.seq - 1);
      t.match(await later.next((f) => f.seq === m.seq + 1, 'the edit, replayed'), { t: 'event', kind: 'message_edited', body: '' }, 'nor does its replay');
    });

    t.test('the edit window: the sender edits and deletes within it; a moderator deletes at any time', async (t) => {
      const [a, b, mod] = (await people(3)) as [User, User, User];
      const room = await group(a, b, mod);
      await api.request('PATCH', `/api/v1/rooms/${room}/members/${mod.id}`, { role: 'moderator' }, as(a));
      // Two hours old: committed with its time, as the room's sequencer would have.
      const [old] = await hub.store.messages.insertSequenced(room, [
        { id: randomUUID(), roomId: room, seq: 1, senderId: b.id, cid: randomUUID(), body: 'old news', createdAt: new Date(Date.now() - 2 * 3_600_000) },
      ]);
      const seq = old?.seq as number;
      isError(t, await edit(room, seq, 'new news', b), 403, 'FORBIDDEN', 'an edit after the window');
      isError(t, await api.delete(`/api/v1/rooms/${room}/messages/${seq}`, as(b)), 403, 'FORBIDDEN', 'a deletion by the sender after it');
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${seq}`, as(mod))).status, 204, 'a moderator still deletes it');
    });

    t.test('reactions: events, counted per emoji in history, each person once per emoji', async (t) => {
      const [a, b] = (await people(2)) as [User, User];
      const room = await group(a, b);
      const watcher = await openFor(t, hub.url, a.token);
      await subscribe(watcher, room);
      const m = await post(room, a, 'react to me');
      for (const [u, e] of [
        [b, '👍'],
        [a, '👍'],
        [a, '❤️'],
        [a, ':tada:'],
        [b, '🇫🇷'],
      ] as const) {
        t.equal((await react(room, m.seq, e, u)).status, 204, `${u.username} ${e}`);
      }
      t.equal((await react(room, m.seq, '👍', a)).status, 204, 'twice: a no-op');
      t.equal((await react(room, m.seq, ':tada:', a, false)).status, 204, 'taken back');
      const before = (await api.get(`/api/v1/rooms/${room}`, as(a))).body.room.lastSeq;
      t.equal((await react(room, m.seq, ':tada:', a, false)).status, 204, 'taking back what is not there: a no-op');
      t.equal((await api.get(`/api/v1/rooms/${room}`, as(a))).body.room.lastSeq, before, 'that wrote no event');
      const events = await watcher.take((f) => f.t === 'event' && f.kind.startsWith('reaction_'), 6, 'the reaction events');
      t.same(
        events.map((f: Frame) => [f.kind, f.emoji, f.user.id, f.target]),
        [
          ['reaction_added', '👍', b.id, m.seq],
          ['reaction_added', '👍', a.id, m.seq],
          ['reaction_added', '❤️', a.id, m.seq],
          ['reaction_added', ':tada:', a.id, m.seq],
          ['reaction_added', '🇫🇷', b.id, m.seq],
          ['reaction_removed', ':tada:', a.id, m.seq],
        ],
        'one event per change, in order',
      );
      const mine = (await history(room, a)).find((x) => x.seq === m.seq);
      t.same(mine.reactions, [
        { emoji: '👍', count: 2, me: true },
        { emoji: '❤️', count: 1, me: true },
        { emoji: '🇫🇷', count: 1, me: false },
      ]);
      const theirs = await watcher.request({ t: 'hist', room });
      t.same(theirs.messages.find((x: Frame) => x.seq === m.seq).reactions, mine.reactions, 'the hist frame counts them too');
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${m.seq}`, as(a))).status, 204);
      t.same([...(await hub.store.rooms.reactions(room, [m.seq], a.id)).entries()], [], 'a deleted message keeps no reactions in the store');
    });

    t.test('refusals', async (t) => {
      const [a, b, outsider] = (await people(3)) as [User, User, User];
      const room = await group(a, b);
      const m = await post(room, a, 'mine');
      const gone = await post(room, a, 'gone');
      await api.delete(`/api/v1/rooms/${room}/messages/${gone.seq}`, as(a));
      const full = await post(room, a, 'popular');
      for (let i = 0; i < 20; i++) t.equal((await react(room, full.seq, `:e${i}:`, b)).status, 204);
      const cases: [string, () => Promise<ApiResponse>, number, string][] = [
        ["someone else's message", () => edit(room, m.seq, 'not mine', b), 403, 'FORBIDDEN'],
        ['an outsider editing', () => edit(room, m.seq, 'x', outsider), 403, 'NOT_MEMBER'],
        ['an outsider reacting', () => react(room, m.seq, '👍', outsider), 403, 'NOT_MEMBER'],
        ['an outsider deleting', () => api.delete(`/api/v1/rooms/${room}/messages/${m.seq}`, as(outsider)), 403, 'NOT_MEMBER'],
        ['a deleted message', () => edit(room, gone.seq, 'back', a), 409, 'CONFLICT'],
        ['a reaction on a deleted message', () => react(room, gone.seq, '👍', b), 409, 'CONFLICT'],
        ['an event', () => edit(room, 1, 'x', a), 409, 'CONFLICT'],
        ['a reaction to an event', () => react(room, 1, '👍', a), 409, 'CONFLICT'],
        ['too long', () => edit(room, m.seq, 'x'.repeat(101), a), 413, 'PAYLOAD_TOO_LARGE'],
        ['empty', () => edit(room, m.seq, '', a), 400, 'VALIDATION'],
        ['an unknown field', () => api.request('PATCH', `/api/v1/rooms/${room}/messages/${m.seq}`, { body: 'x', cid: 'y' }, as(a)), 400, 'VALIDATION'],
        ['a seq past the end', () => edit(room, 999, 'x', a), 404, 'NOT_FOUND'],
        ['not an emoji', () => react(room, m.seq, 'abc', a), 400, 'VALIDATION'],
        ['two emoji', () => react(room, m.seq, '👍👍', a), 400, 'VALIDATION'],
        ['a space', () => react(room, m.seq, ' ', a), 400, 'VALIDATION'],
        ['a short code in capitals', () => react(room, m.seq, ':Tada:', a), 400, 'VALIDATION'],
        ['a 21st different emoji', () => react(room, full.seq, ':e20:', a), 409, 'CONFLICT'],
      ];
      for (const [what, call, status, code] of cases) isError(t, await call(), status, code, what);
      t.equal((await react(room, full.seq, ':e0:', a)).status, 204, 'one of the twenty again is fine');
    });
  });
}

t.test('edits and reactions spend the publish budget; a blocked direct room takes none', async (t) => {
  const hub = await startTestHub(t, { embedded: true, env: { ...FAST, SB_WS_PUBLISH_PER_SECOND: '1', SB_WS_PUBLISH_BURST: '3' } });
  const api = new Api(hub.url);
  const [a, b] = await Promise.all([api.signUp(uniqueName('eb')), api.signUp(uniqueName('eb'))]);
  const dm = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, { token: a.token })).body.room.id as string;
  const seq = (await api.post(`/api/v1/rooms/${dm}/messages`, { cid: 'one', body: 'hi' }, { token: a.token })).body.message.seq as number;
  t.equal((await api.request('PATCH', `/api/v1/rooms/${dm}/messages/${seq}`, { body: 'hi!' }, { token: a.token })).status, 200, 'an edit');
  t.equal((await api.request('PUT', `/api/v1/rooms/${dm}/messages/${seq}/reactions/%F0%9F%91%8D`, undefined, { token: a.token })).status, 204, 'a reaction');
  isError(
    t,
    await api.request('PATCH', `/api/v1/rooms/${dm}/messages/${seq}`, { body: 'hi!!' }, { token: a.token }),
    429,
    'RATE_LIMITED',
    'the fourth write in a burst of three',
  );
  t.equal((await api.request('PUT', `/api/v1/blocks/${a.id}`, undefined, { token: b.token })).status, 204, 'b blocks a');
  isError(
    t,
    await api.request('PUT', `/api/v1/rooms/${dm}/messages/${seq}/reactions/%F0%9F%91%8D`, undefined, { token: b.token }),
    403,
    'FORBIDDEN',
    'no reaction in a blocked room',
  );
});
