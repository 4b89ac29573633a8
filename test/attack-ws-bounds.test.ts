// Issue 16 items 6–8: what one client (or one account) can make a node hold over WebSockets is
// bounded, and the node keeps serving everyone else: buffered bytes per socket and per node (stalled
// readers), sockets per user and per client IP, actors (subscriptions to ids that do not exist).
// Sizes are scaled down through configuration; bench/ws-bounds.ts runs the full sizes.

import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { Api, roomWith, uniqueName } from './helpers/api.js';
import { FAST, startTestHub, UNLIMITED } from './helpers/hub.js';
import { connect, openFor, type RawClient, refusedUpgrade, subscribe } from './helpers/ws.js';

/** Stops reading: once the kernel buffers are full, the hub has to queue what it sends this socket. */
const stall = (c: RawClient) => (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();

/** The room's first seqs: the two members joining. */
const JOINS = 2;

/**
 * STALLED readers that never read and one that keeps up, in one room, while a publisher sends TOTAL
 * messages of 16 KB (a few in flight at a time, as clients under the publish rate limit do). Samples
 * the hub's own counters every turn.
 */

async function storm(t: Test, env: Record<string, string>, STALLED: number, TOTAL: number) {
  const hub = await startTestHub(t, { env: { ...FAST, ...UNLIMITED, ...env } });
  const api = new Api(hub.url);
  const owner = await api.signUp(uniqueName());
  const attacker = await api.signUp(uniqueName());
  const normal = await api.signUp(uniqueName());
  const room = await roomWith(api, owner, attacker, normal); // their joins are seqs 1 and 2
  const stalled: RawClient[] = [];
  for (let i = 0; i < STALLED; i++) {
    const c = await openFor(t, hub.url, attacker.token);
    await subscribe(c, room);
    stall(c);
    stalled.push(c);
  }
  const reader = await openFor(t, hub.url, normal.token);
  await subscribe(reader, room);
  const publisher = await openFor(t, hub.url, owner.token);

  const peak = { perSocket: 0, live: 0, node: 0 };
  let sampling = true;
  const sample = () => {
    const s = hub.ws.stats();
    peak.perSocket = Math.max(peak.perSocket, s.maxBufferedBytes);
    peak.live = Math.max(peak.live, s.bufferedBytes);
    peak.node = Math.max(peak.node, s.bufferedBytes + s.lingeringBytes);
    if (sampling) setImmediate(sample);
  };
  sample();
  const rss0 = process.memoryUsage().rss;
  const body = 'x'.repeat(16_000);
  const WINDOW = 4;
  for (let i = 1; i <= TOTAL; i++) {
    if (i > WINDOW) await publisher.next((f) => f.t === 'ack', `ack ${i - WINDOW}`, 30_000);
    publisher.send({ t: 'pub', id: i, room, cid: `s-${i}`, body });
  }
  await publisher.take((f) => f.t === 'ack', WINDOW, 'the last acks', 30_000);
  const got = await reader.take((f) => f.t === 'msg', TOTAL, 'the normal reader gets every message', 60_000);
  t.same(
    got.map((f) => f.seq),
    Array.from({ length: TOTAL }, (_, i) => JOINS + i + 1),
    'the reader that keeps up got every message once, in order',
  );
  sampling = false;
  const rssGrowth = process.memoryUsage().rss - rss0;
  const after = hub.ws.stats();
  t.comment(
    `peak per socket ${peak.perSocket} B, peak live ${peak.live} B, peak live+lingering ${peak.node} B, RSS +${Math.round(rssGrowth / 1_048_576)} MiB, slow consumers closed ${after.slowClosed}`,
  );
  // A client arriving after the storm is served.
  const late = await openFor(t, hub.url, normal.token);
  await subscribe(late, room);
  t.equal((await late.request({ t: 'pub', room, cid: 'late', body: 'after the storm' })).t, 'ack', 'a client arriving after the storm is served');
  return { hub, room, attacker, stalled, peak, after, rssGrowth };
}

t.test('#6 stalled readers: no socket queues more than SB_WS_MAX_BACKPRESSURE_BYTES; cut with 4001, it resumes without a gap', async (t) => {
  const LIMIT = 262_144;
  const STALLED = 16;
  const TOTAL = 400;
  const { hub, room, attacker, stalled, peak, after, rssGrowth } = await storm(t, { SB_WS_MAX_BACKPRESSURE_BYTES: String(LIMIT) }, STALLED, TOTAL);
  t.ok(peak.perSocket <= LIMIT, `no socket ever queued more than its bound (peak ${peak.perSocket} of ${LIMIT})`);
  t.equal(after.slowClosed, STALLED, 'every stalled reader was cut off as a slow consumer');
  t.ok(after.lingeringBytes <= STALLED * LIMIT, `what uWS still holds for them is within the bound each (${after.lingeringBytes})`);
  // 16 stalled × 6.4 MB would be ~100 MB without the bound; the hub, clients and test share this process.
  t.ok(rssGrowth < 64 * 1_048_576, `process RSS grew by ${Math.round(rssGrowth / 1_048_576)} MiB`);

  // What a stalled reader sees once it reads again: a gapless prefix, then 4001.
  const s0 = stalled[0]!;
  (s0.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  const closed = await s0.waitClose(30_000);
  t.equal(closed.code, 4001, 'the stalled reader was closed with 4001 SLOW_CONSUMER');
  const seqs = s0.all('msg').map((f) => f.seq);
  t.same(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => JOINS + i + 1),
    `what it got before the cut is a gapless prefix (${seqs.length} of ${TOTAL})`,
  );
  t.ok(seqs.length < TOTAL, 'and it must resume for the rest');
  const again = await openFor(t, hub.url, attacker.token);
  again.send({ t: 'sub', id: again.id(), room, since: JOINS + seqs.length });
  const rest = await again.take((f) => f.t === 'msg', TOTAL - seqs.length, 'the rest on resume', 30_000);
  t.equal(rest[0]?.seq, JOINS + seqs.length + 1, 'resume starts right after the last seq it saw');
});

t.test('#6 stalled readers: the node budget SB_WS_BUFFERED_BYTES_BUDGET cuts the stalled ones before their own bound does', async (t) => {
  const LIMIT = 4_194_304;
  const BUDGET = 1_048_576;
  const STALLED = 12;
  const TOTAL = 300;
  const { peak, after } = await storm(t, { SB_WS_MAX_BACKPRESSURE_BYTES: String(LIMIT), SB_WS_BUFFERED_BYTES_BUDGET: String(BUDGET) }, STALLED, TOTAL);
  // Cut until the rest fits: the last stalled one or two may stay, within the budget.
  t.ok(after.slowClosed >= STALLED - 2, `the stalled readers were dropped (${after.slowClosed} of ${STALLED})`);
  t.ok(peak.perSocket < LIMIT, `by the budget: none reached its own bound (peak ${peak.perSocket} of ${LIMIT})`);
  t.ok(after.bufferedBytes <= BUDGET, `live queues are within the budget (${after.bufferedBytes})`);
  // Enforced at the end of each turn: a turn adds at most a few 16 KB frames per socket here.
  t.ok(peak.node <= BUDGET + STALLED * 4 * 16_500, `live + lingering peaked at ${peak.node} for a budget of ${BUDGET}`);
});

t.test('#7 connection caps: per user and per client IP, refused at upgrade with 429 and a JSON body; hello.limits says so', async (t) => {
  const hub = await startTestHub(t, { env: { ...FAST, SB_WS_MAX_CONNECTIONS_PER_USER: '3', SB_WS_MAX_CONNECTIONS_PER_IP: '6' } });
  const api = new Api(hub.url);
  const hog = await api.signUp(uniqueName());
  const normal = await api.signUp(uniqueName());

  // Ten at once: the check and the count happen in one turn, so exactly the cap opens.
  const tries = await Promise.allSettled(Array.from({ length: 10 }, () => connect(hub.url, { token: hog.token })));
  const opened = tries.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  t.teardown(() => {
    for (const c of opened) c.ws.terminate();
  });
  t.equal(opened.length, 3, 'exactly the per-user cap of sockets opened');
  t.match(opened[0]!.hello.limits, { maxConnectionsPerUser: 3, maxConnectionsPerIp: 6 }, 'hello.limits carries both caps');
  const refused = await refusedUpgrade(hub.url, { token: hog.token });
  t.equal(refused.status, 429);
  t.match(refused.body, { error: { code: 'RATE_LIMITED', message: /at most 3 WebSockets per user/ } });

  // Another user is served while the hog sits at its cap.
  const n1 = await openFor(t, hub.url, normal.token);
  t.equal((await n1.request({ t: 'ping' })).t, 'pong', 'another user is served');
  await openFor(t, hub.url, normal.token);
  await openFor(t, hub.url, normal.token);
  // 6 sockets from 127.0.0.1: the IP cap refuses even a user below its own cap.
  t.equal(hub.ws.connections, 6);
  const byIp = await refusedUpgrade(hub.url, { token: normal.token });
  t.equal(byIp.status, 429);
  t.match(byIp.body, { error: { code: 'RATE_LIMITED', message: /at most 6 WebSockets per client IP/ } });

  // A closed socket frees its slot.
  await opened[0]!.close();
  const back = await openFor(t, hub.url, hog.token);
  t.equal((await back.request({ t: 'ping' })).t, 'pong', 'after closing one, the hog may open one again');
});

t.test('#7 connection caps: behind a trusted proxy the client IP is the last X-Forwarded-For entry', async (t) => {
  const hub = await startTestHub(t, { env: { ...FAST, SB_TRUST_PROXY: 'true', SB_WS_MAX_CONNECTIONS_PER_IP: '2' } });
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName());
  const from = (ip: string) => ({ token: u.token, headers: { 'x-forwarded-for': `203.0.113.99, ${ip}` } });
  await openFor(t, hub.url, u.token, from('198.51.100.1'));
  await openFor(t, hub.url, u.token, from('198.51.100.1'));
  const refused = await refusedUpgrade(hub.url, from('198.51.100.1'));
  t.equal(refused.status, 429, 'the third from one proxied client IP is refused');
  const other = await openFor(t, hub.url, u.token, from('198.51.100.2'));
  t.equal((await other.request({ t: 'ping' })).t, 'pong', 'another client IP behind the same proxy is served');
});

t.test('#8 unknown ids: sub and watch are refused without an actor left behind; the node caps live actors', async (t) => {
  const SUBS = 200;
  const hub = await startTestHub(t, {
    env: { ...FAST, SB_MAX_ACTORS: '100', SB_WS_MAX_SUBSCRIPTIONS: String(SUBS), SB_WS_REQUESTS_PER_SECOND: '100000' },
  });
  const api = new Api(hub.url);
  const owner = await api.signUp(uniqueName());
  const attacker = await api.signUp(uniqueName());
  const normal = await api.signUp(uniqueName());
  const own = await roomWith(api, normal);
  const reader = await openFor(t, hub.url, normal.token);
  await subscribe(reader, own);
  const base = hub.actors.metrics().actors;

  let peak = 0;
  const watchPeak = () => {
    peak = Math.max(peak, hub.actors.metrics().actors);
  };
  const socks = await Promise.all(Array.from({ length: 3 }, () => openFor(t, hub.url, attacker.token)));
  for (const c of socks) {
    for (let i = 0; i < SUBS; i++) c.send({ t: i % 2 ? 'sub' : 'watch', id: c.id(), ...(i % 2 ? { room: randomUUID() } : { robot: randomUUID() }) });
  }
  // Meanwhile the normal client is served.
  const during = await reader.request({ t: 'pub', room: own, cid: 'during', body: 'still here' });
  t.equal(during.t, 'ack', 'a normal client is served during the flood');
  for (const c of socks) {
    const replies = await c.take(
      (f) => {
        watchPeak();
        return f.t === 'error';
      },
      SUBS,
      'every unknown id refused',
      30_000,
    );
    const codes = new Set(replies.map((f) => f.code));
    t.ok(
      [...codes].every((code) => code === 'NOT_FOUND' || code === 'OVERLOADED'),
      `each unknown room and robot: NOT_FOUND, or OVERLOADED while the cap is full of pending ones (${[...codes].join(', ')})`,
    );
  }
  watchPeak();
  t.ok(peak <= 100, `live actors never passed the cap (peak ${peak})`);
  t.equal(hub.actors.metrics().actors, base, `no actor is left behind for ${3 * SUBS} unknown ids`);

  // The cap: subscriptions to rooms that exist (but the attacker may not read) fill it.
  const rooms = await Promise.all(Array.from({ length: 110 }, () => roomWith(api, owner)));
  const probe = socks[0]!;
  const answers = await Promise.all(rooms.map((room) => probe.request({ t: 'sub', room }, 30_000)));
  const codes = new Set(answers.map((f) => f.code));
  t.same([...codes].sort(), ['NOT_MEMBER', 'OVERLOADED'], 'refused as NOT_MEMBER until the cap, then OVERLOADED');
  t.match(
    answers.find((f) => f.code === 'OVERLOADED'),
    { t: 'error', code: 'OVERLOADED', message: /limit of active rooms and robots; retry/ },
  );
  t.equal(hub.actors.metrics().actors, 100, 'the node holds exactly its cap of actors');
  const after = await reader.request({ t: 'pub', room: own, cid: 'after', body: 'still here' });
  t.equal(after.t, 'ack', 'a client of a live room is still served at the cap');
});
