// Webhooks through the real server to a real HTTP receiver, on PostgreSQL and the embedded store:
// an admin registers an endpoint; each kind of event arrives signed (the receiver verifies the
// HMAC itself), in the room's order; a receiver down for 10 s gets everything afterwards, in order,
// each idempotency key once; the delivery log shows the failed attempts; deleting stops it; a robot's
// online, command and offline events.

import t from 'tap';
import { Api, roomWith, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { Receiver } from './helpers/receiver.js';
import { startRobotHub } from './helpers/robots.js';
import { openFor } from './helpers/ws.js';

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded' : 'postgres', async (t) => {
    const hub = await startTestHub(t, { embedded, env: FAST });
    const api = new Api(hub.url);
    type User = Awaited<ReturnType<Api['signUp']>>;
    const boss = await api.signUp(uniqueName('wa'));
    await hub.store.users.makeAdmin(boss.username);
    const adminToken = (await api.post('/api/v1/auth/login', { username: boss.username, password: boss.password })).body.accessToken as string;
    const register = async (receiver: Receiver, events: string[]) => {
      const r = await api.post('/api/v1/admin/webhooks', { url: receiver.url, events }, { token: adminToken });
      if (r.status !== 201) throw new Error(`register: ${r.status} ${r.text}`);
      receiver.secret = r.body.secret;
      return r.body.webhook.id as string;
    };

    t.test('each kind of event arrives signed, in order', async (t) => {
      const receiver = await Receiver.start(t);
      const id = await register(receiver, ['message.created', 'message.edited', 'message.deleted', 'member.joined', 'member.left', 'user.registered']);
      const newcomer = await api.signUp(uniqueName('wu'));
      await receiver.until((r) => r.some((x) => x.body.type === 'user.registered' && x.body.data.id === newcomer.id), 'user.registered');
      const [a, b] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('wm'))))) as [User, User];
      const room = await roomWith(api, a, b);
      const sock = await openFor(t, hub.url, a.token, { encoding: 'json' });
      const m1 = (await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'w1', body: 'first' }, { token: a.token })).body.message;
      const ack = await sock.request({ t: 'pub', room, cid: 'w2', body: 'second' });
      await api.request('PATCH', `/api/v1/rooms/${room}/messages/${m1.seq}`, { body: 'first, edited' }, { token: a.token });
      await api.delete(`/api/v1/rooms/${room}/messages/${ack.seq}`, { token: a.token });
      await api.post(`/api/v1/rooms/${room}/leave`, undefined, { token: b.token });
      const inRoom = (r: { body: { data: Record<string, any> } }) => r.body.data.roomId === room;
      const got = (await receiver.until((r) => r.filter(inRoom).length >= 6, 'six room events')).filter(inRoom);
      t.same(
        got.map((r) => r.body.type),
        ['member.joined', 'message.created', 'message.created', 'message.edited', 'message.deleted', 'member.left'],
        "the room's events, in its order",
      );
      t.same(
        got.map((r) => r.body.data.seq),
        [...got.map((r) => r.body.data.seq)].sort((x, y) => x - y),
        'seqs ascending',
      );
      t.ok(
        receiver.received.every((r) => r.signatureOk),
        'every signature verifies',
      );
      t.ok(
        receiver.received.every((r) => r.id === r.body.id && Math.abs(r.timestamp - Date.now() / 1000) < 300),
        'webhook-id is the event id; the timestamp is now',
      );
      t.match(got[1]?.body.data, { roomId: room, seq: m1.seq, id: m1.id, senderId: a.id, cid: 'w1', body: 'first' });
      t.match(got[3]?.body.data, { target: m1.seq, body: 'first, edited', by: a.id });
      t.match(got[5]?.body.data, { user: { id: b.id }, reason: 'left' });
      const log = await api.get(`/api/v1/admin/webhooks/${id}/deliveries?limit=200`, { token: adminToken });
      t.ok(
        log.body.deliveries.length >= 7 && log.body.deliveries.every((d: { state: string; attempts: number }) => d.state === 'delivered' && d.attempts === 1),
        'the log: all delivered at the first attempt',
      );
      t.equal((await api.delete(`/api/v1/admin/webhooks/${id}`, { token: adminToken })).status, 204);
    });

    t.test('a receiver down for 10 s gets everything afterwards, in order, once per idempotency key', async (t) => {
      const receiver = await Receiver.start(t);
      const id = await register(receiver, ['message.created']);
      const a = await api.signUp(uniqueName('wd'));
      const room = await roomWith(api, a);
      receiver.down = true;
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++)
        seqs.push((await api.post(`/api/v1/rooms/${room}/messages`, { cid: `d${i}`, body: `m${i}` }, { token: a.token })).body.message.seq);
      await new Promise((r) => setTimeout(r, 10_000));
      const log = await api.get(`/api/v1/admin/webhooks/${id}/deliveries`, { token: adminToken });
      t.match(log.body.deliveries.at(-1), { state: 'pending', lastStatus: null, lastError: String }, 'the oldest: attempted, failed, waiting');
      t.ok(log.body.deliveries.at(-1).attempts >= 3, 'retried with backoff meanwhile');
      t.equal(receiver.received.length, 0, 'nothing arrived while it was down');
      receiver.down = false;
      const got = await receiver.until((r) => new Set(r.map((x) => x.id)).size >= 5, 'the five messages', 30_000);
      const firsts = [...new Map(got.map((r) => [r.id, r.body.data.seq as number])).values()];
      t.same(firsts, seqs, 'in order');
      t.equal(new Set(got.map((r) => r.id)).size, 5, 'each idempotency key');
      t.ok(got.every((r) => r.signatureOk));
      const after = await api.get(`/api/v1/admin/webhooks/${id}/deliveries`, { token: adminToken });
      t.ok(
        after.body.deliveries.every((d: { state: string }) => d.state === 'delivered'),
        'all delivered',
      );
    });

    t.test("a disabled endpoint's backlog holds no other endpoint back", async (t) => {
      const dead = await Receiver.start(t);
      dead.down = true;
      const deadId = await register(dead, ['message.created']);
      const a = await api.signUp(uniqueName('wx'));
      const rooms = await Promise.all(Array.from({ length: 10 }, () => roomWith(api, a)));
      for (const [i, room] of rooms.entries()) await api.post(`/api/v1/rooms/${room}/messages`, { cid: `x${i}`, body: 'x' }, { token: a.token });
      await hub.store.db.sql`UPDATE webhooks SET disabled_at = now(), disabled_reason = 'test' WHERE id = ${deadId}`;
      await hub.store.db.sql`UPDATE webhook_outbox SET next_at = now() - interval '1 second', lease_until = NULL WHERE webhook_id = ${deadId}`;
      const live = await Receiver.start(t);
      await register(live, ['message.created']);
      const room = rooms[0] as string;
      await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'live', body: 'through' }, { token: a.token });
      const got = await live.until((r) => r.some((x) => x.body.data.cid === 'live'), 'the live endpoint’s delivery');
      t.ok(got.length >= 1, 'delivered while ten due deliveries of a disabled endpoint wait');
      t.equal(dead.received.length, 0);
    });

    t.test('the hourly upkeep: an endpoint over its pending bound is disabled; finished deliveries go after their days', async (t) => {
      const dead = await Receiver.start(t);
      dead.down = true;
      const id = await register(dead, ['member.joined']);
      const [a, b] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('wp'))))) as [User, User];
      for (let i = 0; i < 3; i++) await roomWith(api, a, b);
      // (Endpoints of the tests before, whose receivers are gone, may be over the bound too.)
      t.ok((await hub.store.webhooks.prune(7, 2)).disabled >= 1, 'three pending, two allowed: disabled');
      const listed = (await api.get('/api/v1/admin/webhooks', { token: adminToken })).body.webhooks.find((w: { id: string }) => w.id === id);
      t.match(listed, { disabledAt: String, disabledReason: /more than 2 deliveries pending/ });
      await roomWith(api, a, b);
      const [queued] = await hub.store.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_outbox WHERE webhook_id = ${id}`;
      t.equal(queued?.n, 3, 'nothing more is queued for it');
      await hub.store.db.sql`UPDATE webhook_outbox SET delivered_at = now(), created_at = now() - interval '8 days' WHERE webhook_id = ${id}`;
      t.match(await hub.store.webhooks.prune(7, 2), { pruned: 3 }, 'finished more than 7 days ago: dropped');
    });

    t.test('admins only; what may be registered', async (t) => {
      const u = await api.signUp(uniqueName('wn'));
      t.equal((await api.post('/api/v1/admin/webhooks', { url: 'https://example.com/h', events: ['message.created'] }, { token: u.token })).status, 403);
      t.equal((await api.get('/api/v1/admin/webhooks', { token: u.token })).status, 403);
      for (const bad of [
        { url: 'ftp://example.com', events: ['message.created'] },
        { url: 'not a url', events: ['message.created'] },
        { url: 'https://u:p@example.com/', events: ['message.created'] },
        { url: 'https://example.com/', events: [] },
        { url: 'https://example.com/', events: ['message.exploded'] },
      ]) {
        t.equal((await api.post('/api/v1/admin/webhooks', bad, { token: adminToken })).status, 400, JSON.stringify(bad));
      }
      const made = await api.post('/api/v1/admin/webhooks', { url: 'https://example.com/h', events: ['member.joined'] }, { token: adminToken });
      t.match(made.body, { webhook: { url: 'https://example.com/h', events: ['member.joined'], disabledAt: null }, secret: /^whsec_[A-Za-z0-9+/]{32}$/ });
      const listed = await api.get('/api/v1/admin/webhooks', { token: adminToken });
      t.notMatch(listed.text, made.body.secret, 'never listed with its secret');
      t.equal((await api.delete(`/api/v1/admin/webhooks/${made.body.webhook.id}`, { token: adminToken })).status, 204);
      t.equal((await api.delete(`/api/v1/admin/webhooks/${made.body.webhook.id}`, { token: adminToken })).status, 404);
      t.equal((await api.get(`/api/v1/admin/webhooks/${crypto.randomUUID()}/deliveries`, { token: adminToken })).status, 404);
    });
  });
}

t.test('robots: online, a command completed, offline', async (t) => {
  const rh = await startRobotHub(t);
  const receiver = await Receiver.start(t);
  const boss = await rh.signUp('rw');
  await rh.hub.store.users.makeAdmin(boss.username);
  const admin = (await rh.api.post('/api/v1/auth/login', { username: boss.username, password: boss.password })).body.accessToken as string;
  const made = await rh.api.post(
    '/api/v1/admin/webhooks',
    { url: receiver.url, events: ['robot.online', 'robot.offline', 'command.completed'] },
    { token: admin },
  );
  receiver.secret = made.body.secret;
  const owner = await rh.signUp('ro');
  const r = await rh.enroll(owner);
  const robot = await rh.connectRobot(r);
  robot.on('command', (c) => {
    robot.status(c.command, 'accepted');
    robot.status(c.command, 'completed', { ok: true });
  });
  await receiver.until((got) => got.some((x) => x.body.type === 'robot.online'), 'robot.online');
  const me = await rh.user(owner, 'json');
  t.equal((await me.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 })).t, 'leased');
  const q = await me.request({ t: 'cmd', robot: r.id, name: 'dock', args: {} });
  await receiver.until((got) => got.some((x) => x.body.type === 'command.completed'), 'command.completed');
  robot.destroy();
  const got = await receiver.until((g) => g.some((x) => x.body.type === 'robot.offline'), 'robot.offline');
  t.same(
    got.map((x) => x.body.type),
    ['robot.online', 'command.completed', 'robot.offline'],
    "the robot's events, in order",
  );
  t.match(got[0]?.body.data, { robotId: r.id });
  t.match(got[1]?.body.data, { robotId: r.id, command: 'dock', userId: owner.id, commandId: q.cmd });
  t.ok(got.every((x) => x.signatureOk));
});
