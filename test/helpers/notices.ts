// The person's own stream, walked through as a person meets it: B holds a socket subscribed to
// nothing while A acts (through `apiA`, on any node) and B's socket (on `urlB`) receives each kind
// of notice; then B is offline while A acts again, and B resumes (on `urlResume`) with `feed`,
// getting each missed notice once, in order, and the rooms with unread messages. Shared by the
// single-node test (both stores) and the cluster test (A on one node, B on the other).

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import { type Api, uniqueName } from './api.js';
import { type Frame, openFor, type RawClient } from './ws.js';

type User = Awaited<ReturnType<Api['signUp']>>;
type Client = RawClient & { hello: Frame };

const isNotice = (f: Frame) => f.n !== undefined || f.t === 'notice';

export async function walkThroughNotices(t: Test, o: { apiA: Api; apiB: Api; urlB: string; urlResume: string }): Promise<void> {
  const { apiA, apiB } = o;
  const [a, b] = await Promise.all([apiA.signUp(uniqueName('na')), apiA.signUp(uniqueName('nb'))]);
  const as = (u: User) => ({ token: u.token });
  const post = async (room: string, u: User, body: string) =>
    (await apiA.post(`/api/v1/rooms/${room}/messages`, { cid: randomUUID(), body }, as(u))).body.message as { seq: number };
  const bSock: Client = await openFor(t, o.urlB, b.token, { encoding: 'json' });
  const start = await bSock.request({ t: 'feed' });
  t.match(start, { t: 'feed', n: 0, notices: [], unread: [] }, 'a new person: an empty stream');

  // Each kind, live.
  const dm = (await apiA.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, as(a))).body.room.id as string;
  t.match(await bSock.next((f) => f.t === 'notice', 'room_added (direct)'), {
    n: 1,
    kind: 'room_added',
    room: { id: dm, kind: 'direct', name: null, peer: { id: a.id, username: a.username } },
    by: a.id,
  });
  const m1 = await post(dm, a, 'hello b, this is a message long enough to be cut short in its preview, which keeps only a hundred characters');
  const notice = await bSock.next((f) => f.t === 'notice' && f.kind === 'message', 'a message notice');
  t.match(notice, { room: dm, seq: m1.seq, count: 1, from: a.id }, 'a message in a direct room');
  t.equal(notice.preview.length, 100, 'its preview: the first 100 characters');
  t.notOk('n' in notice, 'message notices are not numbered');

  const group = (await apiA.post('/api/v1/rooms', { kind: 'group', name: 'notices' }, as(a))).body.room.id as string;
  t.equal((await apiB.post(`/api/v1/rooms/${group}/join`, undefined, as(b))).status, 200);
  t.match(await bSock.next((f) => f.t === 'notice' && f.kind === 'room_added', 'room_added (joined on another device)'), {
    n: 2,
    room: { id: group, kind: 'group', name: 'notices' },
    by: b.id,
  });
  await post(group, a, `hi @${b.username}!`);
  t.match(await bSock.next((f) => f.t === 'notice' && f.kind === 'message', 'a mention'), { room: group, mention: true, from: a.id });
  t.equal((await apiA.request('PATCH', `/api/v1/rooms/${group}/members/${b.id}`, { role: 'moderator' }, as(a))).status, 200);
  t.match(await bSock.next((f) => f.t === 'notice' && f.kind === 'role_changed', 'role_changed'), { n: 3, room: group, role: 'moderator', by: a.id });
  t.equal((await apiA.post('/api/v1/contacts/requests', { userId: b.id }, as(a))).status, 201, 'a friend request');
  t.match(await bSock.next((f) => f.t === 'contact', 'contact'), { n: 4, kind: 'requested', user: { id: a.id } });
  t.equal((await apiB.request('PUT', `/api/v1/rooms/${dm}/read`, { seq: m1.seq }, as(b))).status, 200, 'b reads on another device');
  t.match(await bSock.next((f) => f.t === 'read', 'read'), { n: 5, room: dm, seq: m1.seq });

  // Levels: muted sends nothing, mentions only mentions; each change is a notice of its own.
  t.equal((await apiB.request('PUT', `/api/v1/rooms/${group}/notifications`, { level: 'muted' }, as(b))).status, 200);
  t.match(await bSock.next((f) => f.t === 'notice' && f.kind === 'notify', 'notify'), { n: 6, room: group, level: 'muted' });
  await post(group, a, `muted, even for @${b.username}`);
  t.equal((await apiB.request('PUT', `/api/v1/rooms/${group}/notifications`, { level: 'mentions' }, as(b))).status, 200);
  await bSock.next((f) => f.t === 'notice' && f.kind === 'notify' && f.level === 'mentions', 'notify mentions');
  await post(group, a, 'no mention');
  const mentioned = await post(group, a, `and now @${b.username}`);
  const next = await bSock.next((f) => f.t === 'notice' && f.kind === 'message', 'the next message notice');
  t.match(next, { room: group, seq: mentioned.seq, count: 1, mention: true }, 'muted and unmentioned messages sent nothing, nor count');
  t.equal((await apiB.request('PUT', `/api/v1/rooms/${group}/notifications`, { level: 'mentions' }, as(b))).status, 200, 'the same level again');
  const mine = (await apiB.get(`/api/v1/rooms/${group}`, as(b))).body.room;
  t.match(mine, { notify: 'mentions', unread: 4, mentions: 3 }, 'unread counts go on counting whatever the level');
  t.equal((await apiA.request('DELETE', `/api/v1/rooms/${group}/members/${b.id}`, undefined, as(a))).status, 204, 'b removed');
  t.match(await bSock.next((f) => f.t === 'notice' && f.kind === 'room_removed', 'room_removed'), { n: 8, room: group, reason: 'removed', by: a.id });
  await post(group, a, `@${b.username} is gone`);

  // Offline: everything after n 8 comes back once, in order, on whichever node B resumes.
  await bSock.barrier();
  t.equal(bSock.all('notice').filter((f) => f.room === group && f.kind === 'message').length, 2, 'nothing of the room after the removal');
  const lastN = Math.max(...bSock.frames.filter(isNotice).map((f) => f.n ?? 0));
  t.equal(lastN, 8, 'b has seen 1..8');
  await bSock.close();
  const other = (await apiA.post('/api/v1/rooms', { kind: 'group', name: 'gone soon' }, as(a))).body.room.id as string;
  await apiB.post(`/api/v1/rooms/${other}/join`, undefined, as(b));
  t.equal((await apiA.delete(`/api/v1/rooms/${other}`, as(a))).status, 204, 'a room b is in is deleted');
  const unread = await post(dm, a, 'while you were away');
  const back: Client = await openFor(t, o.urlResume, b.token);
  const feed = await back.request({ t: 'feed', since: lastN });
  t.match(
    feed.notices.map((f: Frame) => [f.n, f.t, f.kind]),
    [
      [9, 'notice', 'room_added'],
      [10, 'notice', 'room_removed'],
    ],
    'the missed notices, numbered on from 8, once each',
  );
  t.match(feed.notices[1], { room: other, reason: 'deleted', by: a.id });
  t.equal(feed.n, 10);
  t.same(feed.unread, [{ room: dm, seq: unread.seq, unread: 1, mentions: 0 }], 'and the rooms with unread messages');
  const rest = await apiB.get(`/api/v1/notices?since=${lastN}`, as(b));
  t.same(rest.body, { n: feed.n, notices: feed.notices, unread: feed.unread }, 'GET /notices answers the same');
  const none = await back.request({ t: 'feed', since: feed.n });
  t.same([none.notices, none.more, none.reset], [[], undefined, undefined], 'nothing after the last');
}
