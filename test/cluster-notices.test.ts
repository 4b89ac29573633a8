// Each person's own stream across two nodes (real NATS, one PostgreSQL): A acts through node 2
// while B's socket is on node 1, and B resumes on node 2 (test/helpers/notices.ts); and a message's
// attachments, which cross the cluster with it, served by the other node; presence asked of every
// node; webhooks delivered by both nodes' dispatchers, in the room's order.

import { randomBytes } from 'node:crypto';
import t from 'tap';
import { type Api, roomWith, uniqueName } from './helpers/api.js';
import { startCluster } from './helpers/cluster.js';
import { FAST, UNLIMITED } from './helpers/hub.js';
import { walkThroughNotices } from './helpers/notices.js';
import { Receiver } from './helpers/receiver.js';
import { openFor, subscribe } from './helpers/ws.js';

const cluster = await startCluster(t, 2, { ...FAST, ...UNLIMITED });
const [n1, n2] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
const [api1, api2] = cluster.apis as [Api, Api];

t.test('A on node 2, B on node 1, B resumes on node 2', (t) => walkThroughNotices(t, { apiA: api2, apiB: api1, urlB: n1.url, urlResume: n2.url }));

t.test('a file posted through node 2 reaches a subscriber on node 1, who downloads it there', async (t) => {
  const [a, b] = await Promise.all([api2.signUp(uniqueName('cf')), api2.signUp(uniqueName('cf'))]);
  const room = await roomWith(api2, a, b);
  const sock = await openFor(t, n1.url, b.token, { encoding: 'msgpack' });
  await subscribe(sock, room);
  const data = randomBytes(300_000);
  const up = await api2.request('POST', '/api/v1/attachments?name=data.zip', undefined, {
    token: a.token,
    raw: data,
    headers: { 'content-type': 'application/zip' },
  });
  t.equal(up.status, 201);
  t.equal((await api2.post(`/api/v1/rooms/${room}/messages`, { cid: 'f1', body: 'the data', attachments: [up.body.id] }, { token: a.token })).status, 201);
  const msg = await sock.next((f) => f.t === 'msg' && f.cid === 'f1', 'the message on node 1');
  t.same(msg.att, [up.body], 'its attachments crossed the cluster');
  const got = await fetch(`${n1.url}/api/v1/attachments/${up.body.id}`, { headers: { authorization: `Bearer ${b.token}` } });
  t.equal(got.status, 200);
  t.same(Buffer.from(await got.arrayBuffer()), data, 'node 1 serves what node 2 stored');
});

t.test('the server API asks every node who is online', async (t) => {
  const [u, v] = await Promise.all([api1.signUp(uniqueName('co')), api1.signUp(uniqueName('co'))]);
  await openFor(t, n1.url, u.token, { encoding: 'json' });
  await n1.store.users.makeAdmin(v.username);
  const admin = (await api1.post('/api/v1/auth/login', { username: v.username, password: v.password })).body.accessToken as string;
  const key = (await api2.post('/api/v1/admin/api-keys', { name: 'ops', scopes: ['presence'] }, { token: admin })).body.secret as string;
  const r = await api2.get(`/api/v1/server/presence?users=${u.id},${v.id}`, { token: key });
  t.same(r.body, { online: [u.id], partial: false }, 'node 2 learns of a socket on node 1');
});

t.test("webhooks from two nodes' dispatchers: a room's events once each, in its order", async (t) => {
  const receiver = await Receiver.start(t);
  const [a, boss] = await Promise.all([api1.signUp(uniqueName('cw')), api1.signUp(uniqueName('cw'))]);
  await n1.store.users.makeAdmin(boss.username);
  const admin = (await api1.post('/api/v1/auth/login', { username: boss.username, password: boss.password })).body.accessToken as string;
  receiver.secret = (await api2.post('/api/v1/admin/webhooks', { url: receiver.url, events: ['message.created'] }, { token: admin })).body.secret;
  const room = await roomWith(api1, a);
  const seqs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const via = i % 2 ? api2 : api1;
    seqs.push((await via.post(`/api/v1/rooms/${room}/messages`, { cid: `cw${i}`, body: `m${i}` }, { token: a.token })).body.message.seq);
  }
  const got = await receiver.until((r) => new Set(r.map((x) => x.id)).size >= 20, 'twenty deliveries');
  t.same(
    got.map((r) => r.body.data.seq),
    seqs,
    'each once, in the room’s order, whichever node committed or delivered it',
  );
  t.ok(got.every((r) => r.signatureOk));
});
