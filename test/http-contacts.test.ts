// Contacts and blocks through the real server: requests (send, accept, decline, cancel, a mutual
// request), contacts (list, page, remove), each change as a `contact` frame on both people's
// sockets, each refusal by a table, the blocking matrix (direct room open, post over REST and
// WebSocket, search) and the contacts-only direct-message policy.

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { type Frame, openFor, type RawClient, subscribe } from './helpers/ws.js';

type User = Awaited<ReturnType<Api['signUp']>>;

const hub = await startTestHub(t, { env: FAST });
const api = new Api(hub.url);
const as = (u: User) => ({ token: u.token });
const people = (n: number) => Promise.all(Array.from({ length: n }, () => api.signUp(uniqueName('ct'))));

function isError(t: Test, r: ApiResponse, status: number, code: string, what = code): void {
  t.equal(r.status, status, `${what}: status ${status} (${r.text})`);
  t.equal(r.body?.error?.code, code, `${what}: code ${code}`);
}

const contactFrame = (c: RawClient, kind: string, userId: string) =>
  c.next((f: Frame) => f.t === 'contact' && f.kind === kind && f.user.id === userId, `contact ${kind} about ${userId}`);
const ids = (r: ApiResponse, key: string) => (r.body[key] as { user: { id: string } }[]).map((e) => e.user.id);

t.test('a request, accepted: both people hear each step on their sockets; lists follow', async (t) => {
  const [a, b] = (await people(2)) as [User, User];
  const [sa, sb] = [await openFor(t, hub.url, a.token), await openFor(t, hub.url, b.token, { encoding: 'json' })];
  const sent = api.post('/api/v1/contacts/requests', { userId: b.id }, as(a));
  const [r, toA, toB] = await Promise.all([sent, contactFrame(sa, 'request_sent', b.id), contactFrame(sb, 'requested', a.id)]);
  t.same([r.status, r.body], [201, { status: 'requested' }]);
  t.same(toA.user, { id: b.id, username: b.username }, 'a hears its request went out (msgpack)');
  t.same(toB.user, { id: a.id, username: a.username }, 'b hears it came in (json)');
  t.same(ids(await api.get('/api/v1/contacts/requests', as(b)), 'requests'), [a.id], 'incoming for b');
  t.same(ids(await api.get('/api/v1/contacts/requests?direction=outgoing', as(a)), 'requests'), [b.id], 'outgoing for a');

  const accepted = api.post(`/api/v1/contacts/requests/${a.id}/accept`, undefined, as(b));
  const [acc] = await Promise.all([accepted, contactFrame(sa, 'accepted', b.id), contactFrame(sb, 'accepted', a.id)]);
  t.equal(acc.status, 204);
  t.same(ids(await api.get('/api/v1/contacts', as(a)), 'contacts'), [b.id], 'contacts of a');
  t.same(ids(await api.get('/api/v1/contacts', as(b)), 'contacts'), [a.id], 'contacts of b');
  t.same(ids(await api.get('/api/v1/contacts/requests', as(b)), 'requests'), [], 'no request left');

  const removed = api.delete(`/api/v1/contacts/${a.id}`, as(b));
  const [rm] = await Promise.all([removed, contactFrame(sa, 'removed', b.id), contactFrame(sb, 'removed', a.id)]);
  t.equal(rm.status, 204);
  t.same(ids(await api.get('/api/v1/contacts', as(a)), 'contacts'), [], 'removed on both sides');
});

t.test('asking someone who already asked you makes you contacts at once; cancel and decline', async (t) => {
  const [a, b, c] = (await people(3)) as [User, User, User];
  t.equal((await api.post('/api/v1/contacts/requests', { userId: b.id }, as(a))).status, 201);
  const mutual = await api.post('/api/v1/contacts/requests', { userId: a.id }, as(b));
  t.same([mutual.status, mutual.body], [200, { status: 'accepted' }], 'the second request accepts the first');
  t.same(ids(await api.get('/api/v1/contacts', as(a)), 'contacts'), [b.id]);

  const sc = await openFor(t, hub.url, c.token);
  await api.post('/api/v1/contacts/requests', { userId: c.id }, as(a));
  const cancelled = contactFrame(sc, 'cancelled', a.id);
  t.equal((await api.delete(`/api/v1/contacts/requests/${c.id}`, as(a))).status, 204, 'a cancels its request');
  await cancelled;
  await api.post('/api/v1/contacts/requests', { userId: c.id }, as(a));
  t.equal((await api.delete(`/api/v1/contacts/requests/${a.id}`, as(c))).status, 204, 'c declines the next one');
  t.same(ids(await api.get('/api/v1/contacts/requests?direction=outgoing', as(a)), 'requests'), [], 'nothing pending');
});

t.test('refusals', async (t) => {
  const [a, b] = (await people(2)) as [User, User];
  await api.post('/api/v1/contacts/requests', { userId: b.id }, as(a));
  const cases: [string, () => Promise<ApiResponse>, number, string][] = [
    ['asking yourself', () => api.post('/api/v1/contacts/requests', { userId: a.id }, as(a)), 400, 'VALIDATION'],
    ['a userId that is no UUID', () => api.post('/api/v1/contacts/requests', { userId: 'bob' }, as(a)), 400, 'VALIDATION'],
    ['an unknown field', () => api.post('/api/v1/contacts/requests', { userId: b.id, note: 'hi' }, as(a)), 400, 'VALIDATION'],
    ['an unknown user', () => api.post('/api/v1/contacts/requests', { userId: randomUUID() }, as(a)), 404, 'NOT_FOUND'],
    ['asking twice', () => api.post('/api/v1/contacts/requests', { userId: b.id }, as(a)), 409, 'CONFLICT'],
    ['accepting your own request', () => api.post(`/api/v1/contacts/requests/${b.id}/accept`, undefined, as(a)), 404, 'NOT_FOUND'],
    ['removing a non-contact', () => api.delete(`/api/v1/contacts/${b.id}`, as(a)), 404, 'NOT_FOUND'],
    ['unblocking someone not blocked', () => api.delete(`/api/v1/blocks/${b.id}`, as(a)), 404, 'NOT_FOUND'],
    ['a bad direction', () => api.get('/api/v1/contacts/requests?direction=sideways', as(a)), 400, 'VALIDATION'],
    ['no token', () => api.get('/api/v1/contacts'), 401, 'UNAUTHENTICATED'],
  ];
  for (const [what, call, status, code] of cases) isError(t, await call(), status, code, what);
  await api.post(`/api/v1/contacts/requests/${a.id}/accept`, undefined, as(b));
  isError(t, await api.post('/api/v1/contacts/requests', { userId: b.id }, as(a)), 409, 'CONFLICT', 'asking a contact');
});

t.test('contacts page by username', async (t) => {
  const [me, ...others] = (await people(5)) as User[];
  for (const o of others) {
    await api.post('/api/v1/contacts/requests', { userId: (o as User).id }, as(me as User));
    await api.post(`/api/v1/contacts/requests/${(me as User).id}/accept`, undefined, as(o as User));
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const r: ApiResponse = await api.get(`/api/v1/contacts?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, as(me as User));
    seen.push(...ids(r, 'contacts'));
    cursor = r.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.equal(pages, 3, 'pages of 2 and 2, then an empty last one (a full page always offers a next)');
  t.same(seen.sort(), others.map((o) => (o as User).id).sort(), 'each contact once');
});

t.test('blocking: no direct room, no posts or presence either way, not found in search; the blocked person is not told', async (t) => {
  const [a, b] = (await people(2)) as [User, User];
  const dm = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, as(a))).body.room.id as string;
  await api.post('/api/v1/contacts/requests', { userId: b.id }, as(a));
  await api.post(`/api/v1/contacts/requests/${a.id}/accept`, undefined, as(b));
  const [sa, sb] = [await openFor(t, hub.url, a.token), await openFor(t, hub.url, b.token)];
  const presence = (c: RawClient, op: string, what: string) => c.next((f) => f.t === 'presence' && f.room === dm && f.op === op, what);
  await subscribe(sa, dm);
  await presence(sa, 'snapshot', "a's first snapshot");
  await subscribe(sb, dm);
  t.match(await presence(sa, 'join', 'b arrives'), { users: [{ id: b.id }] }, 'before the block, a sees b present');
  const blocked = api.request('PUT', `/api/v1/blocks/${a.id}`, undefined, as(b));
  const [blk, , toA] = await Promise.all([blocked, contactFrame(sb, 'blocked', a.id), contactFrame(sa, 'removed', b.id)]);
  t.match(await presence(sa, 'leave', 'b hidden'), { users: [{ id: b.id }] }, 'the block hides b from a');
  t.match(await presence(sb, 'leave', 'a hidden'), { users: [{ id: a.id }] }, 'and a from b');
  await sa.request({ t: 'unsub', room: dm }); // a is gone from the room: arriving again would be news
  const a2 = await openFor(t, hub.url, a.token);
  await subscribe(a2, dm);
  t.same((await presence(a2, 'snapshot', "a's snapshot")).users, [{ id: a.id, username: a.username }], 'a, arriving again, sees only itself');
  await sb.barrier();
  t.same(
    sb.all('presence').map((f) => f.op),
    ['snapshot', 'leave'],
    'after the leave that hid a, b is told neither that a left nor that a arrived',
  );
  t.equal(blk.status, 204);
  t.equal(toA.kind, 'removed', 'a sees the contact end, not the block');
  await sa.barrier();
  t.equal(sa.all('contact').filter((f) => f.kind === 'blocked').length, 0, 'a never gets a blocked frame');
  t.same(ids(await api.get('/api/v1/blocks', as(b)), 'blocks'), [a.id]);
  t.equal((await api.request('PUT', `/api/v1/blocks/${a.id}`, undefined, as(b))).status, 204, 'blocking twice is a no-op');

  isError(t, await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, as(a)), 403, 'FORBIDDEN', 'a opening the direct room');
  isError(t, await api.post('/api/v1/rooms', { kind: 'direct', peerId: a.id }, as(b)), 403, 'FORBIDDEN', 'b, who blocked, opening it');
  isError(t, await api.post(`/api/v1/rooms/${dm}/messages`, { cid: randomUUID(), body: 'hi?' }, as(a)), 403, 'FORBIDDEN', 'a posting over REST');
  const nack = await sa.request({ t: 'pub', room: dm, cid: randomUUID(), body: 'hi?' });
  t.match(nack, { t: 'nack', code: 'FORBIDDEN' }, 'a publishing over the WebSocket');
  const nack2 = await sb.request({ t: 'pub', room: dm, cid: randomUUID(), body: 'go away' });
  t.match(nack2, { t: 'nack', code: 'FORBIDDEN' }, 'nor b');
  t.match(await sa.request({ t: 'typing', room: dm }), { t: 'error', code: 'FORBIDDEN' }, 'nor can a show it is typing');
  t.equal((await api.get(`/api/v1/rooms/${dm}/messages`, as(a))).status, 200, 'the history stays readable');
  isError(t, await api.post('/api/v1/contacts/requests', { userId: b.id }, as(a)), 403, 'FORBIDDEN', 'a asking b again');

  const search = async (u: User, q: string) => (await api.get(`/api/v1/users?q=${encodeURIComponent(q)}`, as(u))).body.users.map((x: { id: string }) => x.id);
  t.same(await search(a, b.username), [], 'a cannot find b, who blocked a');
  t.same(await search(b, a.username), [a.id], 'b still finds a');

  t.equal((await api.delete(`/api/v1/blocks/${a.id}`, as(b))).status, 204, 'unblocked');
  t.same(
    (await presence(a2, 'snapshot', 'presence shown again')).users.map((u: { id: string }) => u.id).sort(),
    [a.id, b.id].sort(),
    'unblocked, they see each other again',
  );
  const ack = await sa.request({ t: 'pub', room: dm, cid: randomUUID(), body: 'hello again' });
  t.equal(ack.t, 'ack', 'posts work again');
  t.same(await search(a, b.username), [b.id], 'and b is found again');
});

t.test('direct messages from contacts only', async (t) => {
  const [picky, stranger, friend] = (await people(3)) as [User, User, User];
  const set = await api.request('PATCH', '/api/v1/auth/me', { dmPolicy: 'contacts' }, as(picky));
  t.equal(set.body.user.dmPolicy, 'contacts');
  isError(t, await api.request('PATCH', '/api/v1/auth/me', { dmPolicy: 'nobody' }, as(picky)), 400, 'VALIDATION', 'an unknown policy');
  await api.post('/api/v1/contacts/requests', { userId: picky.id }, as(friend));
  await api.post(`/api/v1/contacts/requests/${friend.id}/accept`, undefined, as(picky));
  const refused = await api.post('/api/v1/rooms', { kind: 'direct', peerId: picky.id }, as(stranger));
  isError(t, refused, 403, 'FORBIDDEN', 'a stranger');
  t.match(refused.body.error.message, /contacts only/);
  t.equal((await api.post('/api/v1/rooms', { kind: 'direct', peerId: picky.id }, as(friend))).status, 201, 'a contact opens one');
  t.equal((await api.post('/api/v1/rooms', { kind: 'direct', peerId: stranger.id }, as(picky))).status, 201, 'the picky one may still write to anyone');
  t.equal(
    (await api.post('/api/v1/rooms', { kind: 'direct', peerId: picky.id }, as(stranger))).status,
    200,
    'and that room, once open, opens for the other too',
  );
});

t.test('SB_CONTACT_REQUESTS_PER_DAY bounds the requests one person sends: then 429 with Retry-After', async (t) => {
  const small = await startTestHub(t, { embedded: true, env: { ...FAST, SB_CONTACT_REQUESTS_PER_DAY: '3' } });
  const sapi = new Api(small.url);
  const [spammer, ...targets] = await Promise.all(Array.from({ length: 6 }, () => sapi.signUp(uniqueName('cq'))));
  const statuses: number[] = [];
  let last!: ApiResponse;
  for (const u of targets) {
    last = await sapi.post('/api/v1/contacts/requests', { userId: u.id }, as(spammer as User));
    statuses.push(last.status);
  }
  t.same(statuses, [201, 201, 201, 429, 429], 'three a day, then refused');
  isError(t, last, 429, 'RATE_LIMITED');
  t.ok(Number(last.headers.get('retry-after')) > 3_600, `wait until the day is over (Retry-After ${last.headers.get('retry-after')} s)`);
  const other = targets[0] as User;
  t.equal((await sapi.post('/api/v1/contacts/requests', { userId: (targets[1] as User).id }, as(other))).status, 201, 'someone else still may');
  t.same(ids(await sapi.get('/api/v1/contacts/requests?direction=outgoing', as(spammer as User)), 'requests').length, 3, 'only three went out');
});
