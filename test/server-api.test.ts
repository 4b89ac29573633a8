// The server API through the real server, on PostgreSQL and the embedded store, as a backend meets
// it: an admin creates a scoped key (its secret shown once, stored hashed), the backend posts as a
// bot and as the system, writes to a person's stream, creates rooms, adds members, disconnects a
// person; scopes, revocation and bots' inability to log in hold.

import t from 'tap';
import { MAX_API_KEYS } from '../src/auth/api-keys.js';
import { ensureAdmin } from '../src/auth/auth-service.js';
import { Passwords } from '../src/auth/passwords.js';
import { Api, roomWith, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { openFor, subscribe } from './helpers/ws.js';

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded' : 'postgres', async (t) => {
    const hub = await startTestHub(t, { embedded, env: FAST });
    const api = new Api(hub.url);
    type User = Awaited<ReturnType<Api['signUp']>>;
    const admin = async (): Promise<User> => {
      const u = await api.signUp(uniqueName('adm'));
      await hub.store.users.makeAdmin(u.username);
      const l = await api.post('/api/v1/auth/login', { username: u.username, password: u.password });
      return { ...u, token: l.body.accessToken };
    };
    const boss = await admin();
    const newKey = async (scopes: string[], name = 'backend') => {
      const r = await api.post('/api/v1/admin/api-keys', { name, scopes }, { token: boss.token });
      if (r.status !== 201) throw new Error(`create key: ${r.status} ${r.text}`);
      return r.body as { apiKey: { id: string; prefix: string }; secret: string };
    };
    const server = (secret: string) => ({
      post: (path: string, body?: unknown) => api.post(`/api/v1/server${path}`, body, { token: secret }),
      put: (path: string) => api.request('PUT', `/api/v1/server${path}`, undefined, { token: secret }),
    });

    t.test('admins create, list and revoke keys; the secret is shown once and stored hashed', async (t) => {
      const u = await api.signUp(uniqueName('nk'));
      t.equal((await api.post('/api/v1/admin/api-keys', { name: 'x', scopes: ['publish'] }, { token: u.token })).status, 403, 'not an admin');
      const created = await newKey(['publish', 'rooms'], 'deploys');
      t.match(created.secret, /^sbk_[A-Za-z0-9_-]{43}$/);
      t.match(created.apiKey, { name: 'deploys', scopes: ['publish', 'rooms'], prefix: created.secret.slice(0, 12), lastUsedAt: null, revokedAt: null });
      const listed = await api.get('/api/v1/admin/api-keys', { token: boss.token });
      t.notMatch(listed.text, created.secret.slice(12), 'the list never shows a secret');
      t.ok(listed.body.apiKeys.some((k: { id: string }) => k.id === created.apiKey.id));
      const [row] = await hub.store.db.sql<{ secret_hash: Uint8Array }[]>`SELECT secret_hash FROM api_keys WHERE id = ${created.apiKey.id}`;
      t.equal(Buffer.from(row?.secret_hash ?? []).length, 32, 'a SHA-256 is stored, not the secret');
      for (const bad of [{ name: 'x', scopes: [] }, { name: 'x', scopes: ['admin'] }, { name: '', scopes: ['publish'] }, { scopes: ['publish'] }]) {
        t.equal((await api.post('/api/v1/admin/api-keys', bad, { token: boss.token })).status, 400, JSON.stringify(bad));
      }
      const room = await roomWith(api, u);
      t.equal((await server(created.secret).post(`/rooms/${room}/messages`, { cid: 'r1', body: 'before' })).status, 201, 'works');
      t.equal((await api.delete(`/api/v1/admin/api-keys/${created.apiKey.id}`, { token: boss.token })).status, 204);
      const after = await server(created.secret).post(`/rooms/${room}/messages`, { cid: 'r2', body: 'after' });
      t.match([after.status, after.body], [401, { error: { code: 'UNAUTHENTICATED' } }], 'revoked: refused at once');
      const again = await api.get('/api/v1/admin/api-keys', { token: boss.token });
      t.match(
        again.body.apiKeys.find((k: { id: string }) => k.id === created.apiKey.id),
        { revokedAt: String, lastUsedAt: String },
      );
      t.equal((await api.delete(`/api/v1/admin/api-keys/${created.apiKey.id}`, { token: boss.token })).status, 204, 'revoking twice');
    });

    t.test('a key works only with its scopes, and only as a key', async (t) => {
      const { secret } = await newKey(['rooms']);
      const u = await api.signUp(uniqueName('sc'));
      const room = await roomWith(api, u);
      const r = await server(secret).post(`/rooms/${room}/messages`, { cid: 's1', body: 'x' });
      t.match([r.status, r.body], [403, { error: { code: 'FORBIDDEN', scope: 'publish' } }], 'no publish scope');
      t.equal((await server(secret).post(`/users/${u.id}/disconnect`)).status, 403, 'no users scope');
      t.equal((await server(u.token).post(`/rooms/${room}/messages`, { cid: 's2', body: 'x' })).status, 401, "a person's token is no key");
      t.equal((await server(`sbk_${'A'.repeat(43)}`).post(`/rooms/${room}/messages`, { cid: 's3', body: 'x' })).status, 401, 'an unknown key');
      t.equal((await api.post('/api/v1/rooms', { kind: 'group', name: 'x' }, { token: secret })).status, 401, 'a key is no user token');
    });

    t.test('posting as a bot and as the system; bots never log in', async (t) => {
      const { secret } = await newKey(['publish']);
      const [a, b] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('pb'))))) as [User, User];
      const room = await roomWith(api, a, b);
      const sock = await openFor(t, hub.url, a.token, { encoding: 'json' });
      await subscribe(sock, room);
      const first = await server(secret).post(`/rooms/${room}/messages`, { cid: 'd1', body: `deploy done @${b.username}`, as: 'deploybot' });
      t.equal(first.status, 201);
      const joined = await sock.next((f) => f.t === 'event' && f.kind === 'member_joined' && f.user.username === 'deploybot', 'the bot joining');
      const msg = await sock.next((f) => f.t === 'msg' && f.cid === 'd1', 'the bot message');
      t.equal(msg.from, joined.user.id, 'from the bot account');
      const profile = await api.get(`/api/v1/users/${msg.from}`, { token: a.token });
      t.match(profile.body.user, { username: 'deploybot', bot: true });
      t.equal(
        (await server(secret).post(`/rooms/${room}/messages`, { cid: 'd1', body: `deploy done @${b.username}`, as: 'deploybot' })).status,
        200,
        'a retry',
      );
      t.match(
        (await api.get('/api/v1/rooms?scope=mine', { token: b.token })).body.rooms.find((r: { id: string }) => r.id === room),
        { mentions: 1 },
        'mentions count',
      );
      const sys = await server(secret).post(`/rooms/${room}/messages`, { cid: 'sys1', body: 'maintenance at noon' });
      t.equal(sys.status, 201);
      const sysMsg = await sock.next((f) => f.t === 'msg' && f.cid === 'sys1', 'the system message');
      t.match((await api.get(`/api/v1/users/${sysMsg.from}`, { token: a.token })).body.user, { username: '~system', displayName: 'System', bot: true });
      const taken = await server(secret).post(`/rooms/${room}/messages`, { cid: 'x1', body: 'x', as: a.username });
      t.match([taken.status, taken.body], [409, { error: { code: 'USERNAME_TAKEN' } }], "a person's name");
      t.equal((await server(secret).post(`/rooms/${room}/messages`, { cid: 'x2', body: 'x', as: 'no spaces' })).status, 400, 'not a username');
      const dm = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, { token: a.token })).body.room.id;
      t.equal((await server(secret).post(`/rooms/${dm}/messages`, { cid: 'x3', body: 'x' })).status, 403, 'not in direct rooms');
      for (const password of ['!', 'correct horse battery']) {
        t.equal((await api.post('/api/v1/auth/login', { username: 'deploybot', password })).status, 401, `a bot cannot log in (${JSON.stringify(password)})`);
      }
      t.equal((await api.post('/api/v1/auth/register', { username: 'DeployBot', password: 'correct horse battery' })).status, 409, "a bot's name is taken");
      const other = (await newKey(['publish'])).secret;
      const stolen = await server(other).post(`/rooms/${room}/messages`, { cid: 'o1', body: 'x', as: 'DEPLOYBOT' });
      t.match([stolen.status, stolen.body], [403, { error: { code: 'FORBIDDEN', field: 'as' } }], "another key's bot, whatever the case");
      t.equal((await server(other).post(`/rooms/${room}/messages`, { cid: 'o2', body: 'x' })).status, 201, 'every key may post as the system');
      t.equal((await api.post(`/api/v1/admin/users/${msg.from}/disable`, undefined, { token: boss.token })).status, 200);
      const disabled = await server(secret).post(`/rooms/${room}/messages`, { cid: 'd9', body: 'x', as: 'deploybot' });
      t.match([disabled.status, disabled.body], [403, { error: { code: 'ACCOUNT_DISABLED' } }], 'a disabled bot posts no more');
    });

    t.test('bots a key may make: at most its limit; live keys: at most 1,000', async (t) => {
      const { apiKey } = await newKey(['publish']);
      const make = (name: string) => hub.store.users.bot(name, null, apiKey.id, 2);
      t.match(await make('limitbot1'), { bot: true });
      t.match(await make('limitbot2'), { bot: true });
      t.equal(await make('limitbot3'), 'full', 'a third is refused');
      t.match(await make('limitbot1'), { username: 'limitbot1' }, 'its own bots still post');
      const live = (await hub.store.apiKeys.list()).filter((k) => !k.revokedAt).length;
      await hub.store.db.sql`
        INSERT INTO api_keys (id, name, secret_hash, prefix, scopes)
        SELECT gen_random_uuid(), 'filler', sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'sbk_filler', '{publish}'
        FROM generate_series(1, ${MAX_API_KEYS - live})`;
      const over = await api.post('/api/v1/admin/api-keys', { name: 'one more', scopes: ['publish'] }, { token: boss.token });
      t.match([over.status, over.body], [409, { error: { code: 'CONFLICT' } }], `the ${MAX_API_KEYS + 1}st live key`);
      await hub.store.db.sql`UPDATE api_keys SET revoked_at = now() WHERE name = 'filler'`;
      t.equal(
        (await api.post('/api/v1/admin/api-keys', { name: 'room again', scopes: ['publish'] }, { token: boss.token })).status,
        201,
        'revoked keys do not count',
      );
    });

    t.test('a bot cannot be made the administrator (SB_ADMIN_USERNAME)', async (t) => {
      const bot = await hub.store.users.bot('opsbot', null, null, 100);
      t.match(bot, { bot: true });
      const passwords = new Passwords({ memoryKiB: 8192, timeCost: 1 });
      await t.rejects(
        ensureAdmin(hub.store, passwords, 'opsbot', async () => 'correct horse battery'),
        { code: 'CONFLICT' },
      );
      t.match(await hub.store.users.byUsername('opsbot'), { isAdmin: false });
    });

    t.test("a person's own stream: app notices, live and on resume", async (t) => {
      const { secret } = await newKey(['publish'], 'billing');
      const u = await api.signUp(uniqueName('an'));
      const sock = await openFor(t, hub.url, u.token, { encoding: 'msgpack' });
      const head = (await sock.request({ t: 'feed' })).n as number;
      t.equal((await server(secret).post(`/users/${u.id}/notices`, { data: { invoice: 42, paid: true } })).status, 202);
      const live = await sock.next((f) => f.t === 'notice' && f.kind === 'app', 'the app notice');
      t.same(live, { t: 'notice', n: head + 1, kind: 'app', data: { invoice: 42, paid: true }, from: 'billing' });
      const feed = await api.get(`/api/v1/notices?since=${head}`, { token: u.token });
      t.match(feed.body.notices, [{ n: head + 1, kind: 'app', data: { invoice: 42 }, from: 'billing' }], 'a device that was away gets it');
      const big = await server(secret).post(`/users/${u.id}/notices`, { data: 'x'.repeat(5000) });
      t.match([big.status, big.body], [413, { error: { code: 'PAYLOAD_TOO_LARGE', limit: 4096 } }]);
      t.equal((await server(secret).post(`/users/${crypto.randomUUID()}/notices`, { data: 1 })).status, 404);
      t.equal((await server(secret).post(`/users/${u.id}/notices`, {})).status, 400, 'no data');
    });

    t.test('presence: who of some people is online', async (t) => {
      const { secret } = await newKey(['presence']);
      const [on, off] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('pr'))))) as [User, User];
      await openFor(t, hub.url, on.token, { encoding: 'json' });
      const ask = (users: string) => api.get(`/api/v1/server/presence?users=${users}`, { token: secret });
      t.same((await ask(`${off.id},${on.id}`)).body, { online: [on.id], partial: false });
      t.same((await ask(on.id.toUpperCase())).body, { online: [on.id], partial: false }, 'ids in any case');
      t.equal((await ask('nope')).status, 400, 'not ids');
      t.equal((await ask(Array.from({ length: 101 }, () => crypto.randomUUID()).join(','))).status, 400, 'more than 100');
      t.equal((await api.get(`/api/v1/server/presence?users=${on.id}`, { token: (await newKey(['publish'])).secret })).status, 403, 'no presence scope');
    });

    t.test('rooms: created with members, members added; people disconnected', async (t) => {
      const { secret } = await newKey(['rooms', 'users']);
      const [owner, m1, m2] = (await Promise.all([1, 2, 3].map(() => api.signUp(uniqueName('rm'))))) as [User, User, User];
      const sock = await openFor(t, hub.url, m2.token, { encoding: 'json' });
      const made = await server(secret).post('/rooms', { name: 'Project X', owner: owner.id, members: [m1.id] });
      t.equal(made.status, 201);
      const room = made.body.room.id as string;
      t.equal(made.body.room.lastSeq, 1, 'the answer counts the join');
      const hist = await api.get(`/api/v1/rooms/${room}/messages`, { token: owner.token });
      t.match(hist.body.messages, [{ event: { kind: 'member_joined', user: { id: m1.id } } }]);
      t.not(hist.body.messages[0].senderId, owner.id, 'added by the system, not the owner');
      const members = await api.get(`/api/v1/rooms/${room}/members`, { token: owner.token });
      t.same(
        members.body.members.map((m: { userId: string; role: string }) => [m.userId, m.role]).sort(),
        [
          [owner.id, 'owner'],
          [m1.id, 'member'],
        ].sort(),
      );
      const added = await server(secret).put(`/rooms/${room}/members/${m2.id}`);
      t.same([added.status, added.body], [200, { added: true }]);
      await sock.next((f) => f.t === 'notice' && f.kind === 'room_added' && f.room.id === room, 'room_added in their stream');
      t.same((await server(secret).put(`/rooms/${room}/members/${m2.id}`)).body, { added: false }, 'a member already');
      const sysRoom = await server(secret).post('/rooms', { name: 'Announcements' });
      t.equal(sysRoom.status, 201, 'owned by the system');
      t.equal((await server(secret).post('/rooms', { name: 'x', members: [crypto.randomUUID()] })).status, 404, 'an unknown member');
      t.equal((await server(secret).put(`/rooms/${room}/members/${crypto.randomUUID()}`)).status, 404);

      const closed = new Promise<number>((resolve) => sock.ws.once('close', (code) => resolve(code)));
      t.equal((await server(secret).post(`/users/${m2.id}/disconnect`)).status, 202);
      t.equal(await closed, 4004, 'closed with 4004');
      const back = await openFor(t, hub.url, m2.token, { encoding: 'json' });
      t.equal(back.hello.user.id, m2.id, 'and may reconnect: the session holds');
    });
  });
}
