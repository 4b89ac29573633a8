// Moderation and room timelines through the real server, on PostgreSQL and the embedded store:
// joins, leaves, renames, role changes, removals, bans and deleted messages are events in the
// room's seq order (in history, live on sockets of both encodings, and replayed on resume); the
// role matrix (owner, moderator, member, admin, outsider) for every moderation request, by table;
// a ban keeps someone out until lifted; a deleted message leaves a tombstone; an admin disables and
// enables accounts (sockets close with 4103, tokens and logins are refused with ACCOUNT_DISABLED).

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { type Frame, openFor, refusedUpgrade, subscribe } from './helpers/ws.js';

type User = Awaited<ReturnType<Api['signUp']>>;

function isError(t: Test, r: ApiResponse, status: number, code: string, what = code): void {
  t.equal(r.status, status, `${what}: status ${status} (${r.text})`);
  t.equal(r.body?.error?.code, code, `${what}: code ${code}`);
}

for (const embedded of [false, true]) {
  const store = embedded ? 'embedded' : 'postgres';
  t.test(store, async (t) => {
    const hub = await startTestHub(t, { embedded, env: FAST });
    const api = new Api(hub.url);
    const as = (u: User) => ({ token: u.token });
    const people = (n: number) => Promise.all(Array.from({ length: n }, () => api.signUp(uniqueName('md'))));
    const patch = (path: string, body: unknown, u: User) => api.request('PATCH', path, body, as(u));
    const put = (path: string, u: User) => api.request('PUT', path, undefined, as(u));
    /** An admin, made one in the store and logged in again (the flag is a claim of the token). */
    const admin = async (): Promise<User> => {
      const [u] = (await people(1)) as [User];
      await hub.store.users.makeAdmin(u.username);
      const l = await api.post('/api/v1/auth/login', { username: u.username, password: u.password });
      return { ...u, token: l.body.accessToken };
    };
    const group = async (owner: User, ...members: User[]) => {
      const r = await api.post('/api/v1/rooms', { kind: 'group', name: 'mod room' }, as(owner));
      for (const m of members) t.equal((await api.post(`/api/v1/rooms/${r.body.room.id}/join`, undefined, as(m))).status, 200);
      return r.body.room.id as string;
    };
    const post = async (room: string, u: User, body: string) => {
      const r = await api.post(`/api/v1/rooms/${room}/messages`, { cid: randomUUID(), body }, as(u));
      if (r.status !== 201) throw new Error(`post: ${r.status} ${r.text}`);
      return r.body.message.seq as number;
    };
    const history = async (room: string, u: User) => (await api.get(`/api/v1/rooms/${room}/messages?after=0&limit=200`, as(u))).body.messages as any[];
    /** What a history entry is, briefly: an event's kind and subject, or a message's body. */
    const brief = (m: any) => (m.event ? `${m.event.kind}:${m.event.user?.username ?? m.event.name ?? m.event.target}` : m.deletedAt ? '(deleted)' : m.body);

    t.test('every change is a timeline event in seq order: history, live in both encodings, and on resume', async (t) => {
      const [owner, mod, bob, carol] = (await people(4)) as [User, User, User, User];
      const room = await group(owner);
      const live = await openFor(t, hub.url, owner.token, { encoding: 'json' });
      const packed = await openFor(t, hub.url, owner.token);
      await subscribe(live, room);
      await subscribe(packed, room);

      await api.post(`/api/v1/rooms/${room}/join`, undefined, as(mod));
      t.equal((await patch(`/api/v1/rooms/${room}/members/${mod.id}`, { role: 'moderator' }, owner)).status, 200, 'mod made moderator');
      await api.post(`/api/v1/rooms/${room}/join`, undefined, as(bob));
      await api.post(`/api/v1/rooms/${room}/join`, undefined, as(carol));
      const hello = await post(room, bob, 'hello');
      await post(room, carol, 'spam');
      t.equal((await patch(`/api/v1/rooms/${room}`, { name: 'renamed' }, mod)).status, 200, 'the moderator renames');
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${hello + 1}`, as(mod))).status, 204, 'the moderator deletes the spam');
      t.equal((await api.delete(`/api/v1/rooms/${room}/members/${carol.id}`, as(mod))).status, 204, 'and removes carol');
      t.equal((await api.post(`/api/v1/rooms/${room}/leave`, undefined, as(bob))).status, 204, 'bob leaves');
      t.equal((await put(`/api/v1/rooms/${room}/bans/${bob.id}`, mod)).status, 204, 'and is banned after');

      const expected = [
        `member_joined:${mod.username}`,
        `role_changed:${mod.username}`,
        `member_joined:${bob.username}`,
        `member_joined:${carol.username}`,
        'hello',
        '(deleted)',
        'room_renamed:renamed',
        `message_deleted:${hello + 1}`,
        `member_removed:${carol.username}`,
        `member_left:${bob.username}`,
        `member_banned:${bob.username}`,
      ];
      const stored = await history(room, owner);
      t.same(stored.map(brief), expected, 'history holds every change, in order');
      t.same(
        stored.map((m) => m.seq),
        expected.map((_, i) => i + 1),
        'contiguous seqs',
      );
      t.match(stored[1], { senderId: owner.id, body: '', event: { kind: 'role_changed', role: 'moderator', user: { id: mod.id } } });
      t.match(stored[8], { senderId: mod.id, event: { kind: 'member_removed', user: { id: carol.id, username: carol.username } } });
      t.match(stored[5], { seq: hello + 1, senderId: carol.id, body: '', deletedAt: String });
      t.notOk('event' in stored[4], 'a message has no event');

      const liveBrief = (f: Frame) => (f.t === 'event' ? `${f.kind}:${f.user?.username ?? f.name ?? f.target}` : f.body);
      for (const [name, c] of [
        ['json', live],
        ['msgpack', packed],
      ] as const) {
        const frames: Frame[] = [];
        for (let i = 0; i < expected.length; i++) frames.push(await c.next((f) => f.t === 'msg' || (f.t === 'event' && f.seq !== undefined), `entry ${i + 1}`));
        t.same(
          frames.map(liveBrief),
          expected.map((e) => (e === '(deleted)' ? 'spam' : e)),
          `${name}: live, in the same order (the spam arrived before its deletion)`,
        );
        t.same(
          frames.map((f) => f.seq),
          expected.map((_, i) => i + 1),
        );
        t.match(frames[8], { t: 'event', room, mid: String, from: mod.id, ts: Number, kind: 'member_removed', user: { id: carol.id } });
      }

      // A late reader resumes from before it all: events and the tombstone come in order.
      const late = await openFor(t, hub.url, owner.token, { encoding: 'json' });
      await subscribe(late, room, 0);
      const replayed: Frame[] = [];
      for (let i = 0; i < expected.length; i++) replayed.push(await late.next((f) => f.t === 'msg' || f.t === 'event', `replayed ${i + 1}`));
      t.same(
        replayed.map((f) => (f.t === 'msg' && f.deleted ? '(deleted)' : liveBrief(f))),
        expected,
        'resume replays events, and the tombstone, in order',
      );
      t.match(replayed[5], { t: 'msg', body: '', deleted: true, from: carol.id });
      const hist = await late.request({ t: 'hist', room, after: 0 });
      t.same(
        hist.messages.map((m: Frame) => (m.kind ? `${m.kind}:${m.user?.username ?? m.name ?? m.target}` : m.deleted ? '(deleted)' : m.body)),
        expected,
        'the hist frame too',
      );
    });

    t.test('a removed or banned member hears it, then their subscription ends; a ban keeps them out until lifted', async (t) => {
      const [owner, bob] = (await people(2)) as [User, User];
      const room = await group(owner, bob);
      const sb = await openFor(t, hub.url, bob.token);
      await subscribe(sb, room);
      t.equal((await put(`/api/v1/rooms/${room}/bans/${bob.id}`, owner)).status, 204);
      t.match(await sb.next((f) => f.t === 'event', 'the ban'), { kind: 'member_banned', user: { id: bob.id }, from: owner.id });
      t.match(await sb.next((f) => f.t === 'unsubscribed', 'the end of the subscription'), { room, code: 'NOT_MEMBER' }, 'then the hub ends the subscription');
      await post(room, owner, 'after the ban');
      await sb.barrier();
      t.same(sb.all('msg'), [], 'and nothing more reaches the banned member');
      t.match(await sb.request({ t: 'pub', room, cid: 'after-ban', body: 'let me in' }), { t: 'nack', code: 'NOT_MEMBER' }, 'a banned member cannot post');
      isError(t, await api.post(`/api/v1/rooms/${room}/join`, undefined, as(bob)), 403, 'BANNED', 'rejoining');
      const bans = await api.get(`/api/v1/rooms/${room}/bans`, as(owner));
      t.match(bans.body, { bans: [{ userId: bob.id, username: bob.username, bannedBy: owner.id, since: String }], nextCursor: null });
      t.equal((await put(`/api/v1/rooms/${room}/bans/${bob.id}`, owner)).status, 204, 'banning again: a no-op');
      t.equal((await api.delete(`/api/v1/rooms/${room}/bans/${bob.id}`, as(owner))).status, 204, 'lifted');
      isError(t, await api.delete(`/api/v1/rooms/${room}/bans/${bob.id}`, as(owner)), 404, 'NOT_FOUND', 'lifting a ban that is not there');
      t.equal((await api.post(`/api/v1/rooms/${room}/join`, undefined, as(bob))).status, 200, 'then bob may join again');
      t.same(
        (await history(room, owner)).map(brief),
        [`member_joined:${bob.username}`, `member_banned:${bob.username}`, 'after the ban', `member_joined:${bob.username}`],
        'one event per change: the repeated ban and the unban wrote none',
      );

      // A ban can come before a visit.
      const [eve] = (await people(1)) as [User];
      t.equal((await put(`/api/v1/rooms/${room}/bans/${eve.id}`, owner)).status, 204, 'a non-member banned');
      isError(t, await api.post(`/api/v1/rooms/${room}/join`, undefined, as(eve)), 403, 'BANNED');
    });

    t.test('the role matrix: who may rename, remove, ban, change roles, delete messages and rooms', async (t) => {
      const boss = await admin();
      const [owner, mod, mod2, member, member2, outsider] = (await people(6)) as [User, User, User, User, User, User];
      type Scene = { room: string; owner: User; mod2: User; member: User; msg: number };
      /** For each actor: a fresh room (owner, two moderators, two members; `member` posted `msg`), then `act` as that actor. */
      const run = async (
        what: string,
        act: (c: Scene, actor: { token: string }) => Promise<ApiResponse>,
        allowed: Record<'owner' | 'moderator' | 'member' | 'admin' | 'outsider', [number, string?]>,
      ) => {
        for (const [who, [status, code]] of Object.entries(allowed)) {
          const room = await group(owner, mod, mod2, member, member2);
          for (const m of [mod, mod2]) await patch(`/api/v1/rooms/${room}/members/${m.id}`, { role: 'moderator' }, owner);
          const msg = await post(room, member, 'a message');
          const actor = { owner, moderator: mod, member: member2, admin: boss, outsider }[who] as User;
          const r = await act({ room, owner, mod2, member, msg }, as(actor));
          if (code) isError(t, r, status, code, `${what} as ${who}`);
          else t.equal(r.status, status, `${what} as ${who}: ${status} (${r.text})`);
        }
      };
      await run('rename', (c, actor) => api.request('PATCH', `/api/v1/rooms/${c.room}`, { name: 'new name' }, actor), {
        owner: [200],
        moderator: [200],
        member: [403, 'FORBIDDEN'],
        admin: [200],
        outsider: [403, 'FORBIDDEN'],
      });
      await run('remove a member', (c, actor) => api.delete(`/api/v1/rooms/${c.room}/members/${c.member.id}`, actor), {
        owner: [204],
        moderator: [204],
        member: [403, 'FORBIDDEN'],
        admin: [204],
        outsider: [403, 'FORBIDDEN'],
      });
      await run('remove a moderator', (c, actor) => api.delete(`/api/v1/rooms/${c.room}/members/${c.mod2.id}`, actor), {
        owner: [204],
        moderator: [403, 'FORBIDDEN'],
        member: [403, 'FORBIDDEN'],
        admin: [204],
        outsider: [403, 'FORBIDDEN'],
      });
      await run('remove the owner', (c, actor) => api.delete(`/api/v1/rooms/${c.room}/members/${c.owner.id}`, actor), {
        owner: [400, 'VALIDATION'],
        moderator: [403, 'FORBIDDEN'],
        member: [403, 'FORBIDDEN'],
        admin: [403, 'FORBIDDEN'],
        outsider: [403, 'FORBIDDEN'],
      });
      await run('ban a member', (c, actor) => api.request('PUT', `/api/v1/rooms/${c.room}/bans/${c.member.id}`, undefined, actor), {
        owner: [204],
        moderator: [204],
        member: [403, 'FORBIDDEN'],
        admin: [204],
        outsider: [403, 'FORBIDDEN'],
      });
      await run('list bans', (c, actor) => api.get(`/api/v1/rooms/${c.room}/bans`, actor), {
        owner: [200],
        moderator: [200],
        member: [403, 'FORBIDDEN'],
        admin: [200],
        outsider: [403, 'FORBIDDEN'],
      });
      await run('make a moderator', (c, actor) => api.request('PATCH', `/api/v1/rooms/${c.room}/members/${c.member.id}`, { role: 'moderator' }, actor), {
        owner: [200],
        moderator: [403, 'NOT_OWNER'],
        member: [403, 'FORBIDDEN'],
        admin: [200],
        outsider: [403, 'FORBIDDEN'],
      });
      await run("delete someone else's message", (c, actor) => api.delete(`/api/v1/rooms/${c.room}/messages/${c.msg}`, actor), {
        owner: [204],
        moderator: [204],
        member: [403, 'FORBIDDEN'],
        admin: [204],
        outsider: [403, 'NOT_MEMBER'],
      });
      await run('delete the room', (c, actor) => api.delete(`/api/v1/rooms/${c.room}`, actor), {
        owner: [204],
        moderator: [403, 'NOT_OWNER'],
        member: [403, 'NOT_OWNER'],
        admin: [204],
        outsider: [403, 'NOT_OWNER'],
      });
    });

    t.test('deleting messages: your own, tombstones, and the refusals', async (t) => {
      const [owner, bob, other] = (await people(3)) as [User, User, User];
      const room = await group(owner, bob);
      const mine = await post(room, bob, 'oops');
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${mine}`, as(bob))).status, 204, 'a member deletes their own message');
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${mine}`, as(bob))).status, 204, 'again: a no-op');
      const stored = await history(room, owner);
      t.same(stored.map(brief), [`member_joined:${bob.username}`, '(deleted)', `message_deleted:${mine}`], 'one tombstone, one event');
      const retry = await api.post(`/api/v1/rooms/${room}/messages`, { cid: stored[1].cid, body: 'oops' }, as(bob));
      t.match(
        [retry.status, retry.body],
        [200, { duplicate: true, message: { seq: mine, body: '' } }],
        'a retry of a deleted message gets its tombstone, not a new message',
      );
      const { id: directId } = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: other.id }, as(owner))).body.room;
      const dm = await post(directId, other, 'in private');
      const cases: [string, () => Promise<ApiResponse>, number, string][] = [
        ['a timeline event', () => api.delete(`/api/v1/rooms/${room}/messages/1`, as(owner)), 409, 'CONFLICT'],
        ['a seq past the end', () => api.delete(`/api/v1/rooms/${room}/messages/999`, as(owner)), 404, 'NOT_FOUND'],
        ['seq 0', () => api.delete(`/api/v1/rooms/${room}/messages/0`, as(owner)), 404, 'NOT_FOUND'],
        ['a seq that is no number', () => api.delete(`/api/v1/rooms/${room}/messages/first`, as(owner)), 404, 'NOT_FOUND'],
        ['a seq too large', () => api.delete(`/api/v1/rooms/${room}/messages/99999999999999999`, as(owner)), 404, 'NOT_FOUND'],
        ['an unknown room', () => api.delete(`/api/v1/rooms/${randomUUID()}/messages/1`, as(owner)), 404, 'NOT_FOUND'],
        ["the other person's direct message", () => api.delete(`/api/v1/rooms/${directId}/messages/${dm}`, as(owner)), 403, 'FORBIDDEN'],
        ["someone else's direct room, to an outsider", () => api.delete(`/api/v1/rooms/${directId}/messages/${dm}`, as(bob)), 404, 'NOT_FOUND'],
        ['renaming a direct room', () => patch(`/api/v1/rooms/${directId}`, { name: 'x' }, owner), 403, 'FORBIDDEN'],
        ['a blank name', () => patch(`/api/v1/rooms/${room}`, { name: '   ' }, owner), 400, 'VALIDATION'],
        ['a name too long', () => patch(`/api/v1/rooms/${room}`, { name: 'x'.repeat(101) }, owner), 400, 'VALIDATION'],
        ['an unknown field', () => patch(`/api/v1/rooms/${room}`, { name: 'x', topic: 'y' }, owner), 400, 'VALIDATION'],
        ['the role owner', () => patch(`/api/v1/rooms/${room}/members/${bob.id}`, { role: 'owner' }, owner), 400, 'VALIDATION'],
        ["the owner's role", () => patch(`/api/v1/rooms/${room}/members/${owner.id}`, { role: 'member' }, owner), 409, 'CONFLICT'],
        ['a role for a non-member', () => patch(`/api/v1/rooms/${room}/members/${other.id}`, { role: 'moderator' }, owner), 404, 'NOT_FOUND'],
        ['removing a non-member', () => api.delete(`/api/v1/rooms/${room}/members/${other.id}`, as(owner)), 404, 'NOT_FOUND'],
        ['removing an unknown user', () => api.delete(`/api/v1/rooms/${room}/members/${randomUUID()}`, as(owner)), 404, 'NOT_FOUND'],
        ['banning yourself', () => put(`/api/v1/rooms/${room}/bans/${owner.id}`, owner), 400, 'VALIDATION'],
        ['a user id that is no UUID', () => put(`/api/v1/rooms/${room}/bans/bob`, owner), 404, 'NOT_FOUND'],
        ['no token', () => api.delete(`/api/v1/rooms/${room}/messages/${mine}`), 401, 'UNAUTHENTICATED'],
      ];
      for (const [what, call, status, code] of cases) isError(t, await call(), status, code, what);
    });

    t.test('an admin moderates a direct room without reading it; deletes it', async (t) => {
      const boss = await admin();
      const [a, b] = (await people(2)) as [User, User];
      const { id: dm } = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, as(a))).body.room;
      const seq = await post(dm, b, 'abuse');
      isError(t, await api.get(`/api/v1/rooms/${dm}/messages`, as(boss)), 404, 'NOT_FOUND', 'an admin does not read a direct room');
      t.equal((await api.delete(`/api/v1/rooms/${dm}/messages/${seq}`, as(boss))).status, 204, 'but deletes a reported message');
      t.same((await history(dm, a)).map(brief), ['(deleted)', `message_deleted:${seq}`]);
      t.equal((await api.delete(`/api/v1/rooms/${dm}`, as(boss))).status, 204, 'and the room');
      isError(t, await api.get(`/api/v1/rooms/${dm}`, as(a)), 404, 'NOT_FOUND');
    });

    t.test('an admin disables an account: its sockets close with 4103, its tokens and logins are refused; enabling lets it log in', async (t) => {
      const boss = await admin();
      const [u, other] = (await people(2)) as [User, User];
      const socket = await openFor(t, hub.url, u.token);
      isError(t, await api.post(`/api/v1/admin/users/${u.id}/disable`, undefined, as(other)), 403, 'FORBIDDEN', 'a non-admin');
      isError(t, await api.post(`/api/v1/admin/users/${boss.id}/disable`, undefined, as(boss)), 409, 'CONFLICT', 'yourself');
      isError(t, await api.post(`/api/v1/admin/users/${randomUUID()}/disable`, undefined, as(boss)), 404, 'NOT_FOUND', 'an unknown user');
      const r = await api.post(`/api/v1/admin/users/${u.id}/disable`, undefined, as(boss));
      t.match([r.status, r.body.user], [200, { id: u.id, disabledAt: String, isAdmin: false }]);
      t.match(await socket.waitClose(), { code: 4103 }, 'the socket closes with 4103');
      isError(t, await api.get('/api/v1/auth/me', as(u)), 403, 'ACCOUNT_DISABLED', 'its access token');
      isError(t, await api.post('/api/v1/auth/refresh', { refreshToken: u.refreshToken }), 401, 'SESSION_ENDED', 'its refresh token');
      isError(t, await api.post('/api/v1/auth/login', { username: u.username, password: u.password }), 403, 'ACCOUNT_DISABLED', 'a login');
      isError(
        t,
        await api.post('/api/v1/auth/login', { username: u.username, password: 'not the password' }),
        401,
        'UNAUTHENTICATED',
        'a wrong password says only that',
      );
      t.match(
        await refusedUpgrade(hub.url, { token: u.token }),
        { status: 403, body: { error: { code: 'ACCOUNT_DISABLED' } } },
        'an upgrade with its token is refused',
      );
      t.equal((await api.post(`/api/v1/admin/users/${u.id}/disable`, undefined, as(boss))).status, 200, 'disabling again: fine');
      const on = await api.post(`/api/v1/admin/users/${u.id}/enable`, undefined, as(boss));
      t.match([on.status, on.body.user], [200, { id: u.id, disabledAt: null }]);
      const again = await api.post('/api/v1/auth/login', { username: u.username, password: u.password });
      t.equal(again.status, 200, 'logs in again');
      t.ok((await openFor(t, hub.url, again.body.accessToken)).hello, 'and connects at once with the new token');
      isError(t, await api.get('/api/v1/auth/me', as(u)), 401, 'SESSION_ENDED', 'the old sessions stay ended');
    });
  });
}
