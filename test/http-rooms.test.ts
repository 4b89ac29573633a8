// Rooms end to end through a listening hub: the group and direct room lifecycles with their
// permission rules, history and member pagination, user search, idempotent posting by cid (also
// under concurrency) and the message size limit.

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { FAST, startTestHub, UNLIMITED } from './helpers/hub.js';

type User = Awaited<ReturnType<Api['signUp']>>;

// Cheap password hashing, no sign-up limits (many users), no publish limit: the history test posts
// 120 messages as fast as they are acked, which is faster than the default 50/s after a burst of 100.
const hub = await startTestHub(t, { env: { ...FAST, ...UNLIMITED } });
const api = new Api(hub.url);

const as = (u: User) => ({ token: u.token });
const roomPath = (id: string) => `/api/v1/rooms/${id}`;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const users = (n: number, prefix = 'rm') => Promise.all(Array.from({ length: n }, () => api.signUp(uniqueName(prefix))));

function isError(t: Test, r: ApiResponse, status: number, code: string, field?: string): void {
  t.equal(r.status, status, `status ${status}: ${r.text}`);
  t.equal(r.body?.error?.code, code, `code ${code}`);
  if (field !== undefined) t.equal(r.body?.error?.field, field, `field ${field}`);
}

async function createGroup(u: User, name = `room ${randomUUID()}`): Promise<{ id: string; name: string }> {
  const r = await api.post('/api/v1/rooms', { kind: 'group', name }, as(u));
  if (r.status !== 201) throw new Error(`create room: ${r.status} ${r.text}`);
  return r.body.room;
}

const postMsg = (u: User, roomId: string, cid: string, body: string) => api.post(`${roomPath(roomId)}/messages`, { cid, body }, as(u));
const join = (u: User, roomId: string) => api.post(`${roomPath(roomId)}/join`, undefined, as(u));
const leave = (u: User, roomId: string) => api.post(`${roomPath(roomId)}/leave`, undefined, as(u));

function ascending(t: Test, seqs: number[], what: string): void {
  t.ok(
    seqs.every((s, i) => i === 0 || s > (seqs[i - 1] as number)),
    `${what}: ascending`,
  );
}

t.test('group room lifecycle and permissions', async (t) => {
  const [owner, other] = (await users(2)) as [User, User];
  const name = `Lobby ${randomUUID().slice(0, 8)}`;
  const created = await api.post('/api/v1/rooms', { kind: 'group', name }, as(owner));
  t.equal(created.status, 201);
  t.match(created.body.room, { kind: 'group', name, ownerId: owner.id, role: 'owner', lastSeq: 0 });
  const id: string = created.body.room.id;
  const base = roomPath(id);

  const mine = await api.get('/api/v1/rooms', as(owner));
  t.equal(mine.status, 200);
  t.ok(
    mine.body.rooms.some((r: { id: string }) => r.id === id),
    'listed among my rooms',
  );
  const notMine = await api.get('/api/v1/rooms?scope=mine', as(other));
  t.notOk(
    notMine.body.rooms.some((r: { id: string }) => r.id === id),
    'not among the other user’s rooms',
  );

  await t.test('a non-member sees the room but not its contents', async (t) => {
    const seen = await api.get(base, as(other));
    t.equal(seen.status, 200);
    t.match(seen.body.room, { id, name, kind: 'group', role: null });
    const q = encodeURIComponent(name.slice(-8).toUpperCase());
    const found = await api.get(`/api/v1/rooms?scope=public&q=${q}&limit=200`, as(other));
    t.equal(found.status, 200);
    t.same(
      found.body.rooms.map((r: { id: string }) => r.id),
      [id],
      'public search matches the name, case-insensitively',
    );
    isError(t, await api.get(`${base}/messages`, as(other)), 403, 'NOT_MEMBER');
    isError(t, await postMsg(other, id, 'c1', 'hi'), 403, 'NOT_MEMBER');
    isError(t, await api.get(`${base}/members`, as(other)), 403, 'NOT_MEMBER');
    isError(t, await leave(other, id), 403, 'NOT_MEMBER');
  });

  await t.test('after joining they can read, post and list members', async (t) => {
    const joined = await join(other, id);
    t.equal(joined.status, 200);
    t.equal(joined.body.room.role, 'member');
    t.equal((await join(other, id)).status, 200, 'joining again is a no-op');
    const posted = await postMsg(other, id, 'c1', 'hello');
    t.equal(posted.status, 201);
    t.equal(posted.body.message.senderId, other.id);
    const hist = await api.get(`${base}/messages`, as(other));
    t.equal(hist.status, 200);
    t.same(
      hist.body.messages.map((m: { body: string; event?: { kind: string } }) => m.event?.kind ?? m.body),
      ['member_joined', 'hello'],
      'their join, then their message',
    );
    const members = await api.get(`${base}/members`, as(other));
    t.equal(members.status, 200);
    const roles = Object.fromEntries(members.body.members.map((m: { userId: string; role: string }) => [m.userId, m.role]));
    t.same(roles, { [owner.id]: 'owner', [other.id]: 'member' });
    t.equal((await api.get(base, as(other))).body.room.role, 'member');
  });

  await t.test('after leaving they cannot again', async (t) => {
    t.equal((await leave(other, id)).status, 204);
    isError(t, await api.get(`${base}/messages`, as(other)), 403, 'NOT_MEMBER');
    isError(t, await postMsg(other, id, 'c2', 'still here?'), 403, 'NOT_MEMBER');
    isError(t, await api.get(`${base}/members`, as(other)), 403, 'NOT_MEMBER');
    t.equal((await api.get(base, as(other))).body.room.role, null);
  });

  await t.test('the owner cannot leave; only the owner deletes', async (t) => {
    isError(t, await leave(owner, id), 409, 'CONFLICT');
    t.equal((await api.get(base, as(owner))).body.room.role, 'owner', 'still the owner');
    t.equal((await join(other, id)).status, 200);
    isError(t, await api.delete(base, as(other)), 403, 'NOT_OWNER');
    t.equal((await api.get(base, as(other))).status, 200, 'a member’s delete changed nothing');
    t.equal((await api.delete(base, as(owner))).status, 204);
    isError(t, await api.get(base, as(owner)), 404, 'NOT_FOUND');
    isError(t, await api.get(`${base}/messages`, as(other)), 404, 'NOT_FOUND');
    isError(t, await api.delete(base, as(owner)), 404, 'NOT_FOUND');
    const after = await api.get('/api/v1/rooms', as(owner));
    t.notOk(
      after.body.rooms.some((r: { id: string }) => r.id === id),
      'gone from my rooms',
    );
  });
});

t.test('direct rooms', async (t) => {
  const [a, b, c] = (await users(3, 'dm')) as [User, User, User];
  const opened = await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, as(a));
  t.equal(opened.status, 201);
  t.match(opened.body.room, { kind: 'direct', name: null, role: 'owner' });
  const id: string = opened.body.room.id;
  const base = roomPath(id);

  const again = await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, as(a));
  t.equal(again.status, 200, 'opening again returns the existing room');
  t.equal(again.body.room.id, id);
  const fromPeer = await api.post('/api/v1/rooms', { kind: 'direct', peerId: a.id }, as(b));
  t.equal(fromPeer.status, 200, 'so does opening it from the other side');
  t.equal(fromPeer.body.room.id, id);
  t.equal(fromPeer.body.room.role, 'member');

  t.equal((await postMsg(a, id, 'd1', 'psst')).status, 201);
  const read = await api.get(`${base}/messages`, as(b));
  t.equal(read.status, 200);
  t.equal(read.body.messages[0]?.body, 'psst');

  isError(t, await api.get(base, as(c)), 404, 'NOT_FOUND');
  isError(t, await api.get(`${base}/messages`, as(c)), 404, 'NOT_FOUND');
  isError(t, await join(c, id), 404, 'NOT_FOUND');
  isError(t, await postMsg(c, id, 'x', 'intrude'), 404, 'NOT_FOUND');
  isError(t, await api.get(`${base}/members`, as(c)), 404, 'NOT_FOUND');
  isError(t, await api.delete(base, as(c)), 404, 'NOT_FOUND');
  const pub = await api.get('/api/v1/rooms?scope=public&limit=200', as(c));
  t.notOk(
    pub.body.rooms.some((r: { id: string; kind: string }) => r.id === id || r.kind === 'direct'),
    'public search never lists direct rooms',
  );

  isError(t, await join(b, id), 403, 'FORBIDDEN');
  isError(t, await leave(b, id), 403, 'FORBIDDEN');
  isError(t, await leave(a, id), 403, 'FORBIDDEN');

  const bad = (body: unknown) => api.post('/api/v1/rooms', body, as(a));
  isError(t, await bad({ kind: 'direct', peerId: a.id }), 400, 'VALIDATION', 'peerId');
  isError(t, await bad({ kind: 'direct', peerId: randomUUID() }), 400, 'VALIDATION', 'peerId');
  isError(t, await bad({ kind: 'direct' }), 400, 'VALIDATION', 'peerId');
  isError(t, await bad({ kind: 'direct', peerId: b.id, name: 'x' }), 400, 'VALIDATION', 'name');
  isError(t, await bad({ kind: 'group', name: 'g', peerId: b.id }), 400, 'VALIDATION', 'peerId');
  isError(t, await bad({ kind: 'group' }), 400, 'VALIDATION', 'name');
  isError(t, await bad({ kind: 'group', name: '   ' }), 400, 'VALIDATION', 'name');
});

t.test('history pages back and forward over contiguous seqs', async (t) => {
  const [u] = (await users(1, 'hist')) as [User];
  const { id } = await createGroup(u);
  const base = `${roomPath(id)}/messages`;
  for (const i of range(1, 120)) {
    const r = await postMsg(u, id, `h${i}`, `m${i}`);
    if (r.status !== 201 || r.body.message.seq !== i) t.fail(`post ${i}: ${r.status} ${r.text}`);
  }

  const page = async (query: string) => {
    const r = await api.get(`${base}?${query}`, as(u));
    t.equal(r.status, 200, query);
    t.equal(r.body.lastSeq, 120, `${query}: lastSeq`);
    const msgs: { seq: number; body: string }[] = r.body.messages;
    t.ok(
      msgs.every((m) => m.body === `m${m.seq}`),
      `${query}: bodies match their seqs`,
    );
    const seqs = msgs.map((m) => m.seq);
    ascending(t, seqs, query);
    return seqs;
  };

  const back: number[][] = [];
  let before: number | undefined;
  for (;;) {
    const seqs = await page(before === undefined ? 'limit=50' : `limit=50&before=${before}`);
    if (seqs.length === 0 || back.length > 5) break;
    back.unshift(seqs);
    before = seqs[0];
  }
  t.same(
    back.map((p) => p.length),
    [20, 50, 50],
    'three pages back',
  );
  t.same(back.flat(), range(1, 120), 'paging back yields 1..120 exactly once');

  const forward: number[][] = [];
  let after = 0;
  for (;;) {
    const seqs = await page(`limit=50&after=${after}`);
    if (seqs.length === 0 || forward.length > 5) break;
    forward.push(seqs);
    after = seqs[seqs.length - 1] as number;
  }
  t.same(
    forward.map((p) => p.length),
    [50, 50, 20],
    'three pages forward',
  );
  t.same(forward.flat(), range(1, 120), 'paging forward yields 1..120 exactly once');

  t.same(await page('after=10&before=20'), range(11, 19), 'both bounds apply together');
  t.same(await page('limit=200'), range(1, 120), 'limit 200 is allowed');
  isError(t, await api.get(`${base}?limit=201`, as(u)), 400, 'VALIDATION', 'limit');
  isError(t, await api.get(`${base}?limit=0`, as(u)), 400, 'VALIDATION', 'limit');
});

t.test('members list pages with nextCursor', async (t) => {
  const [owner, ...rest] = (await users(5, 'mem')) as User[];
  const { id } = await createGroup(owner as User);
  for (const u of rest) t.equal((await join(u, id)).status, 200);
  const got: string[] = [];
  let cursor: string | null = null;
  let requests = 0;
  do {
    const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const r = await api.get(`${roomPath(id)}/members?limit=2${q}`, as(owner as User));
    t.equal(r.status, 200);
    t.ok(r.body.members.length <= 2, 'at most limit per page');
    got.push(...r.body.members.map((m: { userId: string }) => m.userId));
    cursor = r.body.nextCursor;
    requests++;
  } while (cursor !== null && requests < 10);
  t.equal(requests, 3, 'pages of 2, 2 and 1');
  t.equal(new Set(got).size, got.length, 'no member twice');
  t.same([...got].sort(), [owner, ...rest].map((u) => (u as User).id).sort(), 'every member once');
  isError(t, await api.get(`${roomPath(id)}/members?cursor=bm90LWEtdXVpZA`, as(owner as User)), 400, 'VALIDATION', 'cursor');
});

t.test('user search: case-insensitive prefix, paginated, LIKE metacharacters literal, without yourself', async (t) => {
  const p = uniqueName('srch');
  const names = [`${p}_lit`, `${p}Xlit`, `${p}.dot`, `${p}-dash`, `${p.toUpperCase()}caps`];
  const decoy = `x${p}`;
  await Promise.all([...names, decoy].map((n) => api.signUp(n)));
  const [me] = (await users(1, 'seek')) as [User];

  const search = async (q: string, limit = 100) => {
    const r = await api.get(`/api/v1/users?q=${encodeURIComponent(q)}&limit=${limit}`, as(me));
    t.equal(r.status, 200, `q=${q}: ${r.text.slice(0, 200)}`);
    return (r.body.users as { username: string }[]).map((u) => u.username);
  };

  t.same((await search(p)).sort(), [...names].sort(), 'prefix match, keeping each user’s casing');
  t.same((await search(p.toUpperCase())).sort(), [...names].sort(), 'case-insensitive');
  t.same(await search(`${p}_`), [`${p}_lit`], '`_` matches only itself');
  t.same(await search(`_${p.slice(1)}`), [], '`_` is not a wildcard at the start either');
  t.same(await search(`${p}%`), [], '`%` is not a wildcard');
  t.same(await search(`%${p.slice(1)}`), [], 'nor at the start');
  t.same(await search(`${p}\\`), [], 'a backslash is literal');
  t.same(await search(decoy), [decoy]);
  t.same(await search(me.username), [], 'never yourself');

  const paged: string[] = [];
  let cursor: string | null = null;
  let requests = 0;
  do {
    const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const r = await api.get(`/api/v1/users?q=${encodeURIComponent(p)}&limit=2${q}`, as(me));
    t.equal(r.status, 200);
    t.ok(r.body.users.length <= 2);
    paged.push(...r.body.users.map((u: { username: string }) => u.username));
    cursor = r.body.nextCursor;
    requests++;
  } while (cursor !== null && requests < 10);
  t.equal(requests, 3, 'pages of 2, 2 and 1');
  t.same(paged.sort(), [...names].sort(), 'pagination returns every match exactly once');
  isError(t, await api.get(`/api/v1/users?q=${'a'.repeat(255)}`, as(me)), 400, 'VALIDATION', 'q');
});

t.test('finding people by display name (each word a prefix of one of theirs) and by exact email', async (t) => {
  const tag = uniqueName('tag').toLowerCase();
  const [ada, grace, adam, me] = (await users(4, 'ppl')) as [User, User, User, User];
  const name = (u: User, displayName: string) => api.request('PATCH', '/api/v1/auth/me', { displayName }, as(u));
  await name(ada, `Ada Lovelace ${tag}`);
  await name(grace, `Grace Hopper ${tag}`);
  await name(adam, `Adam Smith ${tag}`);
  await name(me, `Ada Me ${tag}`);
  await hub.store.users.setEmail(ada.id, `${tag}@Example.test`);
  await hub.store.users.setPendingEmail(grace.id, `${tag}.grace@example.test`);
  const find = async (q: string) => {
    const r = await api.get(`/api/v1/users?q=${encodeURIComponent(q)}`, as(me));
    t.equal(r.status, 200, r.text);
    return (r.body.users as { id: string }[]).map((u) => u.id).sort();
  };
  t.same(await find(tag), [ada.id, adam.id, grace.id].sort(), 'a word of the display name; never yourself');
  t.same(await find(`ada ${tag}`), [ada.id, adam.id].sort(), 'every word must match: "ada" is a prefix of Ada and Adam');
  t.same(await find(`LOVE ${tag.toUpperCase()}`), [ada.id], 'case-insensitive, any word of the name');
  t.same(await find(`${tag} hopper`), [grace.id], 'in any order');
  t.same(await find(`${tag}@example.TEST`), [ada.id], 'a verified email, exactly, regardless of case');
  t.same(await find(`${tag}@example`), [], 'no partial email');
  t.same(await find(`${tag}.grace@example.test`), [], 'nor an address still waiting for its code');
  t.same(await find(`${tag} ovelace`), [], 'a word must start the name’s word');
  await name(grace, `Grace "Amazing" Jean-Luc(Hopper) ${tag}`);
  t.same(await find(`luc ${tag}`), [grace.id], 'a name is split at punctuation too');
  t.same(await find(`jean-luc ${tag}`), [grace.id], 'and found whole');
  t.same(await find(`amazing ${tag}`), [grace.id], 'quotes are not part of a word');
  const renamed = await name(adam, `Someone Else ${tag}`);
  t.equal(renamed.status, 200);
  t.same(await find(`adam ${tag}`), [], 'a changed display name is found by its new words only');
  t.same(await find(`someone ${tag}`), [adam.id]);
});

t.test('posting is idempotent by cid', async (t) => {
  const [u, v] = (await users(2, 'idem')) as [User, User];
  const { id } = await createGroup(u);
  t.equal((await join(v, id)).status, 200);

  const first = await postMsg(u, id, 'same', 'hello');
  t.equal(first.status, 201);
  t.equal(first.body.duplicate, false);
  const retry = await postMsg(u, id, 'same', 'hello');
  t.equal(retry.status, 200);
  t.equal(retry.body.duplicate, true);
  t.equal(retry.body.message.seq, first.body.message.seq);
  t.equal(retry.body.message.id, first.body.message.id);
  isError(t, await postMsg(u, id, 'same', 'a different text'), 409, 'CONFLICT', 'cid');
  const other = await postMsg(v, id, 'same', 'hello');
  t.equal(other.status, 201, 'cids are per sender: another user may reuse one');
  t.equal(other.body.message.seq, 3);
  const hist = await api.get(`${roomPath(id)}/messages`, as(u));
  t.same(
    hist.body.messages.map((m: { seq: number }) => m.seq),
    [1, 2, 3],
    "v's join, then the two messages",
  );
  t.equal(hist.body.lastSeq, 3, 'no seq was burnt by the retry or the conflict');
});

t.test('20 concurrent posts with one cid store one message', async (t) => {
  const [u] = (await users(1, 'race')) as [User];
  const { id } = await createGroup(u);
  const rs = await Promise.all(Array.from({ length: 20 }, () => postMsg(u, id, 'racy', 'only once')));
  t.same(rs.map((r) => r.status).sort(), [201, ...Array(19).fill(200)].sort(), 'exactly one 201');
  t.equal(new Set(rs.map((r) => r.body.message.id)).size, 1, 'one message id');
  t.equal(new Set(rs.map((r) => r.body.message.seq)).size, 1, 'one seq');
  t.equal(rs.filter((r) => r.body.duplicate === true).length, 19);
  const hist = await api.get(`${roomPath(id)}/messages`, as(u));
  t.equal(hist.body.messages.length, 1);
  t.equal(hist.body.lastSeq, 1);
});

t.test('concurrent posts from several users get contiguous seqs', async (t) => {
  const [owner, ...others] = (await users(4, 'conc')) as User[];
  const { id } = await createGroup(owner as User);
  for (const u of others) t.equal((await join(u, id)).status, 200);
  const senders = [owner, ...others] as User[];
  const rs = await Promise.all(senders.flatMap((u, i) => range(1, 10).map((k) => postMsg(u, id, `c${k}`, `u${i}-${k}`))));
  t.ok(
    rs.every((r) => r.status === 201),
    'all stored',
  );
  t.same(
    rs.map((r) => r.body.message.seq).sort((a, b) => a - b),
    range(4, 43),
    'seqs 4..43 (after the three joins), no gaps or duplicates',
  );
  const hist = await api.get(`${roomPath(id)}/messages?after=0&limit=200`, as(owner as User));
  t.same(
    hist.body.messages.map((m: { seq: number }) => m.seq),
    range(1, 43),
  );
  t.same(
    hist.body.messages
      .slice(3)
      .map((m: { body: string }) => m.body)
      .sort(),
    senders.flatMap((_, i) => range(1, 10).map((k) => `u${i}-${k}`)).sort(),
    'every message stored once',
  );
  t.equal(hist.body.lastSeq, 43);
});

t.test('message size limit counts UTF-8 bytes', async (t) => {
  const small = await startTestHub(t, { env: { ...FAST, SB_MAX_MESSAGE_BYTES: '100' } });
  const sapi = new Api(small.url);
  const u = await sapi.signUp(uniqueName('size'));
  const r = await sapi.post('/api/v1/rooms', { kind: 'group', name: 'sizes' }, as(u));
  const base = `${roomPath(r.body.room.id)}/messages`;
  const send = (cid: string, body: string) => sapi.post(base, { cid, body }, as(u));

  t.equal((await send('a100', 'a'.repeat(100))).status, 201, '100 ASCII bytes fit');
  const over = await send('a101', 'a'.repeat(101));
  isError(t, over, 413, 'PAYLOAD_TOO_LARGE', 'body');
  t.equal(over.body.error.limit, 100);
  t.equal((await send('e50', 'é'.repeat(50))).status, 201, '50 two-byte characters fit');
  isError(t, await send('e51', 'é'.repeat(51)), 413, 'PAYLOAD_TOO_LARGE', 'body');
  t.equal((await send('g25', '😀'.repeat(25))).status, 201, '25 four-byte emoji fit');
  isError(t, await send('g26', '😀'.repeat(26)), 413, 'PAYLOAD_TOO_LARGE', 'body');
  const hist = await sapi.get(base, as(u));
  t.same(
    hist.body.messages.map((m: { cid: string }) => m.cid),
    ['a100', 'e50', 'g25'],
    'only the messages within the limit were stored',
  );
});
