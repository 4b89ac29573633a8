// A person's own account through the real server, on PostgreSQL and the embedded store: the
// profile (edit, clear, each refusal naming its field), the signed-in devices (list, sign one out:
// its tokens and its sockets end at once), a password change (ends every other session, keeps this
// one, counts wrong passwords against the login limits), and deleting the account (what stays, what
// passes on, what goes; and no route answers its still-signed token with anything but 401).

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { defaultCaFiles, initCa } from '../src/auth/pki.js';
import { CloseCode } from '../src/protocol/frames.js';
import { Api, type ApiResponse, roomWith, uniqueName } from './helpers/api.js';
import { FAST, startTestHub, tempDir } from './helpers/hub.js';
import { openFor } from './helpers/ws.js';

type User = Awaited<ReturnType<Api['signUp']>>;

function isError(t: Test, r: ApiResponse, status: number, code: string, field?: string, what = code): void {
  t.equal(r.status, status, `${what}: status ${status} (${r.text})`);
  t.equal(r.body?.error?.code, code, `${what}: code ${code}`);
  if (field !== undefined) t.equal(r.body?.error?.field, field, `${what}: names the field ${field}`);
}

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded store' : 'PostgreSQL', async (t) => {
    // Three wrong passwords per username and IP before 429 (see the password-change test).
    const dataDir = await tempDir(t);
    await initCa(defaultCaFiles(dataDir)); // robots can be registered
    const hub = await startTestHub(t, { embedded, dataDir, env: { ...FAST, SB_LOGIN_FAILS_PER_USER_IP: '3' } });
    const api = new Api(hub.url);
    const as = (u: { token: string }) => ({ token: u.token });
    const patchMe = (u: { token: string }, body: unknown) => api.request('PATCH', '/api/v1/auth/me', body, as(u));
    const login = async (u: User, userAgent: string) => {
      const r = await api.post('/api/v1/auth/login', { username: u.username, password: u.password }, { headers: { 'user-agent': userAgent } });
      if (r.status !== 200) throw new Error(`login: ${r.status} ${r.text}`);
      return { token: r.body.accessToken as string, refreshToken: r.body.refreshToken as string };
    };

    t.test('a profile: set, seen by others, cleared; each bad field refused by name', async (t) => {
      const u = await api.signUp(uniqueName('prof'));
      const other = await api.signUp(uniqueName('peer'));
      const set = await patchMe(u, {
        displayName: '  Ada Lovelace ',
        bio: 'Poet of science.',
        avatarUrl: 'https://example.com/ada.png',
        timeZone: 'europe/london',
      });
      t.equal(set.status, 200, set.text);
      t.match(set.body.user, {
        id: u.id,
        username: u.username,
        displayName: 'Ada Lovelace',
        bio: 'Poet of science.',
        avatarUrl: 'https://example.com/ada.png',
        timeZone: 'Europe/London',
        isAdmin: false,
      });
      const seen = await api.get(`/api/v1/users/${u.id}`, as(other));
      t.same(
        { displayName: seen.body.user.displayName, bio: seen.body.user.bio, timeZone: seen.body.user.timeZone },
        { displayName: 'Ada Lovelace', bio: 'Poet of science.', timeZone: 'Europe/London' },
        'another user sees the profile',
      );
      t.equal(seen.body.user.isAdmin, undefined, 'but not whether the account is an admin');
      const partial = await patchMe(u, { bio: null, displayName: '' });
      t.match(
        partial.body.user,
        { displayName: null, bio: null, timeZone: 'Europe/London', avatarUrl: 'https://example.com/ada.png' },
        'null and "" clear; the rest stays',
      );
      t.same((await api.get('/api/v1/auth/me', as(u))).body.user, partial.body.user, '/auth/me shows the same');

      const refusals: [string, unknown, string][] = [
        ['an unknown field', { name: 'Ada' }, 'name'],
        ['the username (an immutable id)', { username: 'other' }, 'username'],
        ['nothing to change', {}, '(body)'],
        ['a display name over 64', { displayName: 'x'.repeat(65) }, 'displayName'],
        ['a display name with a control character', { displayName: 'Ada\u0007' }, 'displayName'],
        ['a bio over 500', { bio: 'x'.repeat(501) }, 'bio'],
        ['a javascript: avatar', { avatarUrl: 'javascript:alert(1)' }, 'avatarUrl'],
        ['a relative avatar', { avatarUrl: '/me.png' }, 'avatarUrl'],
        ['an avatar with credentials', { avatarUrl: 'https://user:pw@example.com/a.png' }, 'avatarUrl'],
        ['an unknown time zone', { timeZone: 'Mars/Olympus_Mons' }, 'timeZone'],
        ['a number', { bio: 42 }, 'bio'],
      ];
      for (const [what, body, field] of refusals) isError(t, await patchMe(u, body), 400, 'VALIDATION', field, what);
      isError(t, await api.request('PATCH', '/api/v1/auth/me', { bio: 'x' }), 401, 'UNAUTHENTICATED', undefined, 'no token');
      t.match((await api.get('/api/v1/auth/me', as(u))).body.user, partial.body.user, 'the refusals changed nothing');
    });

    t.test('signed-in devices: listed, and one signed out ends its tokens and its sockets at once', async (t) => {
      const u = await api.signUp(uniqueName('dev'));
      const phone = await login(u, 'Phone/1.0');
      const laptop = await login(u, 'x'.repeat(400));
      const listed = await api.get('/api/v1/auth/sessions', as(laptop));
      t.equal(listed.status, 200);
      const sessions = listed.body.sessions as { id: string; current: boolean; userAgent: string | null; ip: string }[];
      t.equal(sessions.length, 3, 'the sign-up login, the phone and the laptop');
      t.same(
        sessions.filter((s) => s.current).map((s) => s.userAgent?.length),
        [256],
        'the laptop is current; a long User-Agent is cut to 256',
      );
      const phoneSession = sessions.find((s) => s.userAgent === 'Phone/1.0');
      t.ok(phoneSession, 'the phone is listed by its User-Agent');
      t.equal(phoneSession?.ip, '127.0.0.1');

      const phoneSocket = await openFor(t, hub.url, phone.token);
      const laptopSocket = await openFor(t, hub.url, laptop.token);
      const ended = await api.delete(`/api/v1/auth/sessions/${phoneSession?.id}`, as(laptop));
      t.equal(ended.status, 204);
      t.equal((await phoneSocket.waitClose()).code, CloseCode.SESSION_ENDED, "the phone's socket closes with 4102");
      isError(t, await api.get('/api/v1/auth/me', as(phone)), 401, 'SESSION_ENDED', undefined, "the phone's access token");
      isError(t, await api.post('/api/v1/auth/refresh', { refreshToken: phone.refreshToken }), 401, 'SESSION_ENDED', undefined, "the phone's refresh token");
      t.equal((await laptopSocket.request({ t: 'ping' })).t, 'pong', "the laptop's socket is untouched");
      t.equal((await api.get('/api/v1/auth/me', as(laptop))).status, 200, 'and its token works');
      t.notOk(
        (await api.get('/api/v1/auth/sessions', as(laptop))).body.sessions.some((s: { id: string }) => s.id === phoneSession?.id),
        'the phone is no longer listed',
      );

      isError(t, await api.delete(`/api/v1/auth/sessions/${phoneSession?.id}`, as(laptop)), 404, 'NOT_FOUND', undefined, 'an ended session');
      isError(t, await api.delete(`/api/v1/auth/sessions/${randomUUID()}`, as(laptop)), 404, 'NOT_FOUND', undefined, 'an unknown session');
      isError(t, await api.delete('/api/v1/auth/sessions/not-a-uuid', as(laptop)), 404, 'NOT_FOUND', undefined, 'a malformed id');
      const stranger = await api.signUp(uniqueName('str'));
      const current = sessions.find((s) => s.current)?.id;
      isError(t, await api.delete(`/api/v1/auth/sessions/${current}`, as(stranger)), 404, 'NOT_FOUND', undefined, "someone else's session");
      t.equal((await api.get('/api/v1/auth/me', as(laptop))).status, 200, 'which goes on');

      t.equal((await api.delete(`/api/v1/auth/sessions/${current}`, as(laptop))).status, 204, 'signing out the current session');
      t.equal((await laptopSocket.waitClose()).code, CloseCode.SESSION_ENDED, 'is a logout, sockets included');
    });

    t.test('a socket that re-authenticates with a new login follows that session', async (t) => {
      const u = await api.signUp(uniqueName('follow'));
      const first = await login(u, 'one');
      const second = await login(u, 'two');
      const socket = await openFor(t, hub.url, first.token);
      t.equal((await socket.request({ t: 'auth', token: second.token })).t, 'ok');
      const [one] = (await api.get('/api/v1/auth/sessions', as(second))).body.sessions.filter((s: { userAgent: string }) => s.userAgent === 'one');
      t.equal((await api.delete(`/api/v1/auth/sessions/${one.id}`, as(second))).status, 204);
      t.equal((await socket.request({ t: 'ping' })).t, 'pong', 'ending the first session leaves it open');
      await api.post('/api/v1/auth/logout', { refreshToken: second.refreshToken });
      t.equal((await socket.waitClose()).code, CloseCode.SESSION_ENDED, 'ending the second closes it');
    });

    t.test('a password change ends every other session and keeps this one', async (t) => {
      const u = await api.signUp(uniqueName('pw'));
      const here = await login(u, 'here');
      const elsewhere = await login(u, 'elsewhere');
      const elsewhereSocket = await openFor(t, hub.url, elsewhere.token);
      const change = (body: unknown) => api.post('/api/v1/auth/password', body, as(here));
      const next = 'a new and longer passphrase';
      isError(t, await change({ currentPassword: 'wrong password!', newPassword: next }), 400, 'VALIDATION', 'currentPassword', 'a wrong current password');
      isError(t, await change({ currentPassword: u.password, newPassword: 'short' }), 400, 'VALIDATION', 'newPassword', 'a new password under 10');
      isError(t, await change({ currentPassword: u.password }), 400, 'VALIDATION', 'newPassword', 'no new password');
      t.equal((await change({ currentPassword: u.password, newPassword: next })).status, 204);
      t.equal((await elsewhereSocket.waitClose()).code, CloseCode.SESSION_ENDED, 'the other session’s socket closes');
      isError(t, await api.get('/api/v1/auth/me', as(elsewhere)), 401, 'SESSION_ENDED', undefined, 'the other session’s token');
      t.equal((await api.get('/api/v1/auth/me', as(here))).status, 200, 'this session goes on');
      t.equal((await api.post('/api/v1/auth/refresh', { refreshToken: here.refreshToken })).status, 200, 'and refreshes');
      isError(t, await api.post('/api/v1/auth/login', { username: u.username, password: u.password }), 401, 'UNAUTHENTICATED', undefined, 'the old password');
      t.equal((await api.post('/api/v1/auth/login', { username: u.username, password: next })).status, 200, 'the new one logs in');

      // Wrong current passwords count against the login limit (3 failures per username and IP
      // here, reset by a success): three, then even the right one is refused.
      for (let i = 0; i < 3; i++) isError(t, await change({ currentPassword: 'wrong again!', newPassword: next }), 400, 'VALIDATION', 'currentPassword');
      isError(t, await change({ currentPassword: next, newPassword: 'yet another passphrase' }), 429, 'RATE_LIMITED', undefined, 'guessing is rate-limited');
    });

    t.test('deleting an account: messages stay, rooms pass on, robots and sessions go; its token gets 401 everywhere', async (t) => {
      const gone = await api.signUp(uniqueName('gone'));
      const peer = await api.signUp(uniqueName('keep'));
      const shared = await roomWith(api, gone, peer);
      const alone = await roomWith(api, gone);
      const dm = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: peer.id }, as(gone))).body.room.id as string;
      for (const room of [shared, dm]) {
        const posted = await api.post(`/api/v1/rooms/${room}/messages`, { cid: randomUUID(), body: 'before I go' }, as(gone));
        t.equal(posted.status, 201, posted.text);
      }
      const robot = async (owner: User) => (await api.post('/api/v1/robots', { name: `bot-${randomUUID().slice(0, 8)}` }, as(owner))).body.robot.id as string;
      const [goneBot, peerBot] = [await robot(gone), await robot(peer)];
      t.equal((await api.request('PUT', `/api/v1/robots/${peerBot}/grants/${gone.id}`, { role: 'operator' }, as(peer))).status, 200, 'a grant to the account');
      const peerSocket = await openFor(t, hub.url, peer.token);
      t.equal((await peerSocket.request({ t: 'sub', room: shared })).t, 'subscribed');
      const goneSocket = await openFor(t, hub.url, gone.token);

      isError(t, await api.request('DELETE', '/api/v1/auth/me', { password: 'not my password' }, as(gone)), 400, 'VALIDATION', 'password', 'a wrong password');
      isError(t, await api.request('DELETE', '/api/v1/auth/me', {}, as(gone)), 400, 'VALIDATION', 'password', 'no password');
      const del = await api.request('DELETE', '/api/v1/auth/me', { password: gone.password }, as(gone));
      t.equal(del.status, 204, del.text);
      t.equal((await goneSocket.waitClose()).code, CloseCode.SESSION_ENDED, 'its sockets close with 4102');
      const left = await peerSocket.next((f) => f.t === 'event' && f.kind === 'member_left', 'the left event');
      t.match(left, { room: shared, seq: Number, from: null, user: { id: gone.id } }, 'the shared room hears it left, as a timeline event by nobody');
      const handedOver = await peerSocket.next((f) => f.t === 'event' && f.kind === 'role_changed', 'the new owner');
      t.match(handedOver, { room: shared, seq: left.seq + 1, from: null, user: { id: peer.id }, role: 'owner' }, 'then who owns it now');

      const room = (await api.get(`/api/v1/rooms/${shared}`, as(peer))).body.room;
      t.match(room, { ownerId: peer.id, role: 'owner' }, 'the shared room passed to the remaining member');
      const history = (await api.get(`/api/v1/rooms/${shared}/messages`, as(peer))).body.messages;
      t.match(
        history.filter((m: { event?: unknown }) => !m.event),
        [{ body: 'before I go', senderId: null }],
        'its message stays, with no sender',
      );
      t.match(
        history.slice(-2),
        [
          { senderId: null, event: { kind: 'member_left', user: { id: gone.id } } },
          { senderId: null, event: { kind: 'role_changed', role: 'owner', user: { id: peer.id } } },
        ],
        'its leaving and the handover are in the history',
      );
      t.match((await api.get(`/api/v1/rooms/${dm}/messages`, as(peer))).body.messages, [{ senderId: null }], 'the direct room stays for the other person');
      const members = (await api.get(`/api/v1/rooms/${shared}/members`, as(peer))).body.members;
      t.same(
        members.map((m: { userId: string }) => m.userId),
        [peer.id],
        'it is no longer a member',
      );
      isError(t, await api.get(`/api/v1/users/${gone.id}`, as(peer)), 404, 'NOT_FOUND', undefined, 'its profile');
      t.same(await hub.store.rooms.byId(alone), undefined, 'the room it was alone in is deleted');
      t.same(await hub.store.robots.byId(goneBot), undefined, 'its robot is deleted');
      t.same((await api.get(`/api/v1/robots/${peerBot}/grants`, as(peer))).body.grants, [], 'its grant on another’s robot is gone');

      // Every authenticated route refuses the deleted account's token (still signed, unexpired)
      // before its handler runs: the check is in one place, and this shows it covers them all.
      let walked = 0;
      for (const route of hub.router.list().filter((r) => r.auth)) {
        const path = route.path.replace(/:[A-Za-z]+/g, randomUUID());
        const r = await api.request(route.method, path, route.method === 'GET' ? undefined : {}, as(gone));
        t.equal(r.status, 401, `${route.method} ${route.path}: 401 (${r.text})`);
        walked++;
      }
      t.ok(walked >= 20, `${walked} routes walked`);
      t.equal((await api.post('/api/v1/auth/refresh', { refreshToken: gone.refreshToken })).status, 401, 'its refresh token');
      const { status } = await api.post('/api/v1/auth/register', { username: gone.username, password: 'a fresh start please' });
      t.equal(status, 201, 'its username is free again');
    });
  });
}

t.test('an avatar URL that percent-encoding makes too long is refused, not a 500', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName('av'));
  const long = `https://example.com/${'é'.repeat(1000)}`;
  t.ok(long.length <= 2048, 'under the limit as sent');
  isError(t, await api.request('PATCH', '/api/v1/auth/me', { avatarUrl: long }, { token: u.token }), 400, 'VALIDATION', 'avatarUrl');
});
