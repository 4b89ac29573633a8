// Each person's own stream through the real server, on PostgreSQL and the embedded store: every kind
// of notice live on a socket subscribed to nothing, levels per room, a resume that brings each missed
// notice once (test/helpers/notices.ts); then the refusals, and pruning as a device far behind sees it.

import t from 'tap';
import { Api, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { walkThroughNotices } from './helpers/notices.js';
import { openFor } from './helpers/ws.js';

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded' : 'postgres', async (t) => {
    const hub = await startTestHub(t, { embedded, env: FAST });
    const api = new Api(hub.url);

    t.test('each kind of notice, levels, and a resume', (t) => walkThroughNotices(t, { apiA: api, apiB: api, urlB: hub.url, urlResume: hub.url }));

    t.test('refusals: a bad since, a level for a room you are not in, an unknown level', async (t) => {
      const [a, b] = await Promise.all([api.signUp(uniqueName('nr')), api.signUp(uniqueName('nr'))]);
      const sock = await openFor(t, hub.url, a.token, { encoding: 'json' });
      for (const since of [-1, 1.5, 'x']) {
        t.match(await sock.request({ t: 'feed', since }), { t: 'error', code: 'VALIDATION' }, `feed since ${JSON.stringify(since)}`);
      }
      for (const since of ['-1', '-Infinity', 'Infinity', '0x10', '1e1', '%20', '1.5', '']) {
        const r = await api.get(`/api/v1/notices?since=${since}`, { token: a.token });
        t.match([r.status, r.body], [400, { error: { code: 'VALIDATION', field: 'since' } }], `GET /notices?since=${since}`);
      }
      const paged = await api.get(`/api/v1/rooms?scope=mine&limit=Infinity`, { token: a.token });
      t.match([paged.status, paged.body], [400, { error: { code: 'VALIDATION', field: 'limit' } }], 'any numeric query parameter: limit=Infinity');
      t.equal((await api.get('/api/v1/notices')).status, 401, 'no token');
      const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'levels' }, { token: a.token })).body.room.id as string;
      const level = (u: typeof a, body: unknown) => api.request('PUT', `/api/v1/rooms/${room}/notifications`, body, { token: u.token });
      t.match((await level(b, { level: 'muted' })).body, { error: { code: 'NOT_MEMBER' } }, 'not a member: 403');
      t.equal((await level(a, { level: 'loud' })).status, 400, 'an unknown level');
      t.equal((await level(a, {})).status, 400, 'no level');
      t.equal((await api.request('PUT', `/api/v1/rooms/${crypto.randomUUID()}/notifications`, { level: 'all' }, { token: a.token })).status, 404);
      t.match((await level(a, { level: 'mentions' })).body, { level: 'mentions' });
      t.equal((await api.request('PUT', `/api/v1/rooms/${room}/bans/${b.id}`, undefined, { token: a.token })).status, 204, 'b banned, never a member');
      t.match((await sock.request({ t: 'feed' })).n, 2, "a's stream: the room, the level");
      t.match((await api.get('/api/v1/notices', { token: b.token })).body, { n: 0 }, "b's stream: nothing (no room of theirs)");
      t.match((await api.get(`/api/v1/rooms?scope=mine`, { token: a.token })).body.rooms, [{ id: room, notify: 'mentions' }], 'GET /rooms shows it');
    });

    t.test("a deleted account's contacts hear of it in their streams", async (t) => {
      type User = Awaited<ReturnType<Api['signUp']>>;
      const [gone, friend, asker, asked] = (await Promise.all([1, 2, 3, 4].map(() => api.signUp(uniqueName('nd'))))) as [User, User, User, User];
      const as = (u: User) => ({ token: u.token });
      await api.post('/api/v1/contacts/requests', { userId: friend.id }, as(gone));
      await api.post(`/api/v1/contacts/requests/${gone.id}/accept`, undefined, as(friend));
      await api.post('/api/v1/contacts/requests', { userId: gone.id }, as(asker));
      await api.post('/api/v1/contacts/requests', { userId: asked.id }, as(gone));
      const sockets = await Promise.all([friend, asker, asked].map((u) => openFor(t, hub.url, u.token, { encoding: 'json' })));
      const heads = await Promise.all(sockets.map(async (c) => (await c.request({ t: 'feed' })).n as number));
      t.equal((await api.request('DELETE', '/api/v1/auth/me', { password: gone.password }, as(gone))).status, 204);
      const user = { id: gone.id, username: gone.username };
      for (const [i, kind] of [
        [0, 'removed'],
        [1, 'declined'],
        [2, 'cancelled'],
      ] as const) {
        const f = await sockets[i]?.next((x) => x.t === 'contact' && x.user?.id === gone.id, `${kind} frame`);
        t.match(f, { kind, user, n: (heads[i] as number) + 1 }, `${kind}, numbered in their stream`);
      }
    });

    t.test('pruned notices: a device further behind than the retention is told to reload', async (t) => {
      const a = await api.signUp(uniqueName('np'));
      for (const name of ['one', 'two', 'three']) await api.post('/api/v1/rooms', { kind: 'group', name }, { token: a.token });
      const sql = hub.store.db.sql;
      await sql`UPDATE notices SET created_at = now() - interval '40 days' WHERE user_id = ${a.id} AND n < 3`;
      t.equal(await hub.store.notices.prune(30), 2, 'the two older than 30 days go');
      const r = (await api.get('/api/v1/notices?since=0', { token: a.token })).body;
      t.match(r, { n: 3, reset: true, notices: [{ n: 3, kind: 'room_added' }] }, 'since 0: reset, and what is kept');
      t.notOk((await api.get('/api/v1/notices?since=2', { token: a.token })).body.reset, 'since 2: nothing was lost');
      t.match(
        (await api.get('/api/v1/notices?since=9', { token: a.token })).body,
        { n: 3, reset: true, notices: [] },
        'since past the last: not this stream, reset',
      );
    });
  });
}
