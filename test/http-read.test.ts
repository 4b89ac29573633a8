// Read markers, unread and mention counts, and receipts through the real server, on PostgreSQL and
// the embedded store: posting marks your own message read; unread counts only messages (not
// events) past your marker; mentions count @you; a marker moves only forward, reaches your other
// sockets (`read`) and, in a direct room, the other person (`receipt`); a group room shows
// markers in its member list only with receipts on.

import { randomUUID } from 'node:crypto';
import t from 'tap';
import { Api, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { openFor } from './helpers/ws.js';

type User = Awaited<ReturnType<Api['signUp']>>;

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded' : 'postgres', async (t) => {
    const hub = await startTestHub(t, { embedded, env: FAST });
    const api = new Api(hub.url);
    const as = (u: User) => ({ token: u.token });
    const people = (n: number) => Promise.all(Array.from({ length: n }, () => api.signUp(uniqueName('rd'))));
    const post = async (room: string, u: User, body: string) =>
      (await api.post(`/api/v1/rooms/${room}/messages`, { cid: randomUUID(), body }, as(u))).body.message.seq as number;
    const mine = async (u: User, room: string) => ((await api.get('/api/v1/rooms?scope=mine', as(u))).body.rooms as any[]).find((r) => r.id === room);
    const read = (u: User, room: string, seq: number) => api.request('PUT', `/api/v1/rooms/${room}/read`, { seq }, as(u));

    t.test('unread and mention counts follow messages and the read marker; your own posts are read', async (t) => {
      const [a, b, c] = (await people(3)) as [User, User, User];
      const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'reading' }, as(a))).body.room.id as string;
      await api.post(`/api/v1/rooms/${room}/join`, undefined, as(b));
      t.match(await mine(b, room), { readSeq: 0, unread: 0, mentions: 0, role: 'member' }, 'a join is not unread');
      await post(room, a, 'one');
      await post(room, a, `two, @${b.username}`);
      await post(room, a, `three, @${c.username} (not a member) and @nobody`);
      await api.post(`/api/v1/rooms/${room}/join`, undefined, as(c)); // an event: not counted
      t.match(await mine(b, room), { unread: 3, mentions: 1 }, 'b: three unread, one mentions b');
      t.match(await mine(c, room), { unread: 0, mentions: 0 }, 'c joined after: nothing unread');
      t.match(await mine(a, room), { unread: 0, readSeq: 4 }, 'a posted them: read');

      const seq = await post(room, b, 'b answers');
      t.match(await mine(b, room), { unread: 0, mentions: 0, readSeq: seq }, 'posting marks the room read for b');
      await post(room, a, `@${b.username} again`);
      t.match(await mine(b, room), { unread: 1, mentions: 1 });
      const r = await read(b, room, seq + 1);
      t.match([r.status, r.body.room], [200, { readSeq: seq + 1, unread: 0, mentions: 0 }]);
      t.match((await read(b, room, 2)).body.room, { readSeq: seq + 1 }, 'a marker never moves back');
      t.equal((await read(b, room, seq + 2)).body.error.code, 'VALIDATION', 'nor past the last seq');
      t.match((await api.get(`/api/v1/rooms/${room}`, as(b))).body.room, { readSeq: seq + 1, unread: 0 }, 'GET /rooms/:id too');
      await post(room, a, `thanks @${b.username}.`);
      await post(room, a, `mail ${b.username}@example.com`);
      t.match(await mine(b, room), { unread: 2, mentions: 1 }, 'a mention before a full stop counts; an address is none');
      await post(room, a, `@${b.username.toUpperCase()} and @${b.username} again, @${a.username} to myself`);
      t.match(await mine(b, room), { unread: 3, mentions: 2 }, 'one mention a message, whatever the case or how often');
      t.match(await mine(a, room), { mentions: 0 }, 'mentioning yourself is none');
      const deleted = await post(room, a, `@${b.username} (to be deleted)`);
      t.match(await mine(b, room), { mentions: 3 });
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${deleted}`, as(a))).status, 204);
      t.match(await mine(b, room), { unread: 4, mentions: 2 }, 'a deleted message no longer mentions b (it still counts as unread)');
      const [outsider] = (await people(1)) as [User];
      t.equal((await read(outsider, room, 1)).body.error.code, 'NOT_MEMBER', 'an outsider has no marker');
      t.notOk('unread' in (await api.get(`/api/v1/rooms/${room}`, as(outsider))).body.room, 'nor counts');
      t.equal((await api.delete(`/api/v1/rooms/${room}`, as(a))).status, 204, 'a room with mentions is deleted');
    });

    t.test('a marker reaches your other sockets; in a direct room the other person sees it; groups show markers with receipts on', async (t) => {
      const [a, b] = (await people(2)) as [User, User];
      const dm = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, as(a))).body.room.id as string;
      const seq = await post(dm, a, 'are you there?');
      const [bPhone, aSocket] = [await openFor(t, hub.url, b.token, { encoding: 'json' }), await openFor(t, hub.url, a.token)];
      t.equal((await read(b, dm, seq)).status, 200);
      t.same(await bPhone.next((f) => f.t === 'read', 'read on the other device'), { t: 'read', n: 2, room: dm, seq });
      t.same(await aSocket.next((f) => f.t === 'receipt', 'the receipt'), { t: 'receipt', room: dm, user: { id: b.id, username: b.username }, seq });
      // The same over the WebSocket: a `read` request, answered `ok`.
      const seq2 = await post(dm, a, 'and now?');
      t.match(await bPhone.request({ t: 'read', room: dm, seq: seq2 }), { t: 'ok' }, 'a read frame');
      t.same(await aSocket.next((f) => f.t === 'receipt' && f.seq === seq2, 'the second receipt'), {
        t: 'receipt',
        room: dm,
        user: { id: b.id, username: b.username },
        seq: seq2,
      });
      t.match(await bPhone.request({ t: 'read', room: dm }), { t: 'error', code: 'VALIDATION' }, 'without a seq');
      t.match(await bPhone.request({ t: 'read', room: dm, seq: seq2 + 5 }), { t: 'error', code: 'VALIDATION' }, 'past the end');
      const members = (await api.get(`/api/v1/rooms/${dm}/members`, as(a))).body.members as any[];
      t.same(members.find((m) => m.userId === b.id).readSeq, seq2, "a direct room's members list shows markers");
      const seq3 = await post(dm, b, 'last words');
      t.equal((await api.request('PUT', `/api/v1/blocks/${a.id}`, undefined, as(b))).status, 204, 'then b blocks a');
      t.same(
        ((await api.get(`/api/v1/rooms/${dm}/members`, as(a))).body.members as any[]).map((m) => m.readSeq),
        [undefined, undefined],
        'a blocked direct room shows no markers',
      );
      t.equal((await read(a, dm, seq3)).status, 200, "a reads b's last words");
      await bPhone.barrier();
      t.equal(bPhone.all('receipt').length, 0, 'and b gets no receipt');

      const group = (await api.post('/api/v1/rooms', { kind: 'group', name: 'quiet' }, as(a))).body.room.id as string;
      await api.post(`/api/v1/rooms/${group}/join`, undefined, as(b));
      const listed = async () => ((await api.get(`/api/v1/rooms/${group}/members`, as(b))).body.members as any[]).map((m) => m.readSeq);
      t.same(await listed(), [undefined, undefined], 'a group room hides markers by default');
      const on = await api.request('PATCH', `/api/v1/rooms/${group}`, { receipts: true }, as(a));
      t.match([on.status, on.body.room], [200, { receipts: true, name: 'quiet' }]);
      t.ok(
        (await listed()).every((s) => typeof s === 'number'),
        'with receipts on, it shows them',
      );
      t.equal(
        (await api.request('PATCH', `/api/v1/rooms/${group}`, { receipts: false }, as(b))).body.error.code,
        'FORBIDDEN',
        'a member cannot turn them on or off',
      );
      t.equal((await api.request('PATCH', `/api/v1/rooms/${group}`, {}, as(a))).body.error.code, 'VALIDATION', 'an empty change');
    });
  });
}
