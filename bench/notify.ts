// The `notify` scenario: live message notices to persons' streams, against room delivery, in one
// run on PostgreSQL. --people (10,000) people in --rooms (1,000) group rooms, each person in
// --per-person (5) rooms (so 50 members a room), seeded straight into the database (one password
// hash copied to all); --connected (2,000) of them hold a socket. One poster, a member of every
// room, publishes --rate (500) messages/s to random rooms over 4 sockets, each body starting with
// its send time. Two phases, same people, same rooms, same rate:
//   notices  nobody subscribes to anything: each connected member (level `all`) gets a `notice`
//            per message, its preview carrying the send time;
//   rooms    everyone muted (no notices), subscribed to their rooms instead: a `msg` per message.
// Per phase: deliveries/s, the fraction of expected deliveries that arrived, publish→delivery
// latency, and the hub's CPU per delivery, so a notice is priced against a room delivery.

import { createHistogram } from 'node:perf_hooks';
import { Packr } from 'msgpackr';
import postgres from 'postgres';
import WebSocket from 'ws';
import { cpuSeconds, json, startHub } from './lib.js';
import { PERCENTILES } from './percentiles.js';

const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const PASSWORD = 'correct horse battery staple';
/** Publish ids and cids, unique across phases and runs (a cid used again would be acked as a duplicate, not delivered). */
let published = 0;

export interface NotifyOptions {
  people: number;
  rooms: number;
  perPerson: number;
  connected: number;
  rate: number;
  durationS: number;
  runs: number;
}

export interface PhaseResult {
  deliveriesPerS: number;
  /** Deliveries that arrived, of those the membership implies (connected members but the poster). */
  delivered: number;
  p50: number;
  p99: number;
  p999: number;
  cpuUsPerDelivery: number;
  latencyMs: number[];
}
export interface NotifyResult {
  notices: PhaseResult;
  rooms: PhaseResult;
}

async function seed(url: string, posterId: string, hash: string, o: NotifyOptions): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`
      INSERT INTO users (id, username, password_hash)
      SELECT gen_random_uuid(), 'np' || i, ${hash} FROM generate_series(1, ${o.people}) AS i`;
    await sql`
      INSERT INTO rooms (id, kind, name, owner_id)
      SELECT gen_random_uuid(), 'group', 'notify ' || i, ${posterId}::uuid FROM generate_series(1, ${o.rooms}) AS i`;
    await sql`INSERT INTO room_members (room_id, user_id, role) SELECT id, ${posterId}::uuid, 'owner' FROM rooms`;
    // Person i is in rooms i, i + 1, ... (mod the room count): every room gets people × perPerson / rooms members.
    await sql`
      WITH p AS (SELECT id, row_number() OVER (ORDER BY username) - 1 AS i FROM users WHERE username LIKE 'np%'),
           r AS (SELECT id, row_number() OVER (ORDER BY name) - 1 AS j FROM rooms)
      INSERT INTO room_members (room_id, user_id, role)
      SELECT r.id, p.id, 'member' FROM p CROSS JOIN generate_series(0, ${o.perPerson - 1}) AS k
      JOIN r ON r.j = (p.i * ${o.perPerson} + k) % ${o.rooms}`;
    for (const table of ['users', 'rooms', 'room_members']) await sql.unsafe(`VACUUM ANALYZE ${table}`);
  } finally {
    await sql.end();
  }
}

function open(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, 'sb.v1.msgpack', { headers: { authorization: `Bearer ${token}` } });
    ws.once('message', () => resolve(ws));
    ws.once('error', reject);
  });
}

interface Person {
  ws: WebSocket;
  rooms: string[];
}

async function phase(
  kind: 'notices' | 'rooms',
  hub: { url: string; pid: number },
  people: Person[],
  posters: WebSocket[],
  rooms: string[],
  members: Map<string, number>,
  o: NotifyOptions,
): Promise<PhaseResult> {
  const hist = createHistogram();
  let got = 0;
  /** Wall-clock ms: messages sent from then until the stretch ends are the measured ones. */
  let from = Number.POSITIVE_INFINITY;
  let measuring = false;
  const onFrame = (d: Buffer) => {
    const f = packr.unpack(d);
    const text = kind === 'notices' ? f.t === 'notice' && f.kind === 'message' && f.preview : f.t === 'msg' && f.body;
    if (!text) return;
    const sent = Number(text.slice(0, text.indexOf('|')));
    if (sent < from) return;
    // A notice may stand for several messages (one commit): each counts, timed by the last one's send.
    got += kind === 'notices' ? f.count : 1;
    hist.record(Math.max(1, Math.round((performance.timeOrigin + performance.now() - sent) * 1000)));
  };
  for (const p of people) p.ws.on('message', onFrame);
  let expected = 0;
  const publish = () => {
    const room = rooms[Math.floor(Math.random() * rooms.length)] as string;
    const id = ++published;
    const ws = posters[id % posters.length] as WebSocket;
    if (measuring) expected += members.get(room) ?? 0;
    ws.send(packr.pack({ t: 'pub', id, room, cid: `n${id}`, body: `${performance.timeOrigin + performance.now()}|a message for the notify bench` }));
  };
  // A second of warm-up, then the measured stretch; ticks of 10 ms, each sending its share.
  const tick = 10;
  const perTick = (o.rate * tick) / 1000;
  let owed = 0;
  const run = async (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      owed += perTick;
      for (; owed >= 1; owed--) publish();
      await new Promise((r) => setTimeout(r, tick));
    }
  };
  await run(1_000);
  measuring = true;
  from = performance.timeOrigin + performance.now();
  const cpu0 = cpuSeconds(hub.pid);
  const t0 = performance.now();
  await run(o.durationS * 1000);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  // What is still in flight arrives within a second: counted, and so is the CPU it takes.
  await new Promise((r) => setTimeout(r, 1_000));
  const cpu = cpuSeconds(hub.pid) - cpu0;
  for (const p of people) p.ws.off('message', onFrame);
  return {
    deliveriesPerS: got / seconds,
    delivered: expected ? got / expected : 0,
    p50: hist.percentile(50) / 1000,
    p99: hist.percentile(99) / 1000,
    p999: hist.percentile(99.9) / 1000,
    cpuUsPerDelivery: got ? (cpu * 1e6) / got : Number.NaN,
    latencyMs: PERCENTILES.map((p) => hist.percentile(p) / 1000),
  };
}

/** Closes the people's sockets and waits until the hub has seen them go (its index of them with them). */
async function disconnect(url: string, people: Person[]): Promise<void> {
  for (const p of people) p.ws.terminate();
  for (;;) {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const open = Number(/^sb_ws_connections (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
    if (open <= 4) return; // the poster's sockets
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function connectPeople(url: string, tokens: { token: string; rooms: string[] }[]): Promise<Person[]> {
  const people: Person[] = [];
  for (let i = 0; i < tokens.length; i += 100) {
    const batch = tokens.slice(i, i + 100);
    people.push(...(await Promise.all(batch.map(async (t) => ({ ws: await open(url, t.token), rooms: t.rooms })))));
  }
  return people;
}

/** Starts a hub, seeds it once, and measures both phases `runs` times. */
export async function notify(o: NotifyOptions, url: string): Promise<NotifyResult[]> {
  const hub = await startHub('postgres', {
    SB_LOGIN_PER_IP_PER_MINUTE: '100000',
    SB_LOGIN_FAILS_PER_IP_PER_DAY: '1000000',
    SB_ARGON2_MEMORY_KIB: '8192',
    SB_ARGON2_TIME_COST: '1',
    SB_WS_MAX_CONNECTIONS_PER_IP: '100000',
    SB_WS_PUBLISH_PER_SECOND: '1000000',
    SB_WS_PUBLISH_BURST: '1000000',
    SB_WS_REQUESTS_PER_SECOND: '100000',
  });
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await json(`${hub.url}/api/v1/auth/register`, 'POST', { username: 'poster', password: PASSWORD });
    const poster = await json(`${hub.url}/api/v1/auth/login`, 'POST', { username: 'poster', password: PASSWORD });
    const [row] = await sql<{ password_hash: string }[]>`SELECT password_hash FROM users WHERE username = 'poster'`;
    await seed(url, poster.user.id, row?.password_hash as string, o);
    const rooms = (await sql<{ id: string }[]>`SELECT id FROM rooms ORDER BY name`).map((r) => r.id);
    // The connected people: every (people / connected)-th, so each room has some.
    const step = Math.max(1, Math.floor(o.people / o.connected));
    const chosen = await sql<{ username: string; rooms: string[] }[]>`
      SELECT u.username, array_agg(m.room_id) AS rooms FROM users u JOIN room_members m ON m.user_id = u.id
      WHERE u.username LIKE 'np%' AND (substr(u.username, 3)::int - 1) % ${step} = 0
      GROUP BY u.username ORDER BY u.username LIMIT ${o.connected}`;
    const tokens: { token: string; rooms: string[] }[] = [];
    for (const c of chosen) {
      const login = await json(`${hub.url}/api/v1/auth/login`, 'POST', { username: c.username, password: PASSWORD });
      tokens.push({ token: login.accessToken, rooms: c.rooms });
    }
    const members = new Map<string, number>();
    for (const t of tokens) for (const r of t.rooms) members.set(r, (members.get(r) ?? 0) + 1);
    const posters = await Promise.all(Array.from({ length: 4 }, () => open(hub.url, poster.accessToken)));
    const out: NotifyResult[] = [];
    for (let r = 0; r < o.runs; r++) {
      await sql`UPDATE room_members SET notify = 'all'`;
      let people = await connectPeople(hub.url, tokens);
      const notices = await phase('notices', hub, people, posters, rooms, members, o);
      await disconnect(hub.url, people);
      await sql`UPDATE room_members SET notify = 'muted'`;
      people = await connectPeople(hub.url, tokens);
      let sid = 0;
      await Promise.all(
        people.map(
          (p) =>
            new Promise<void>((resolve) => {
              let left = p.rooms.length;
              p.ws.on('message', function onSub(d: Buffer) {
                if (packr.unpack(d).t === 'subscribed' && --left === 0) {
                  p.ws.off('message', onSub);
                  resolve();
                }
              });
              for (const room of p.rooms) p.ws.send(packr.pack({ t: 'sub', id: ++sid, room }));
            }),
        ),
      );
      const roomsPhase = await phase('rooms', hub, people, posters, rooms, members, o);
      await disconnect(hub.url, people);
      out.push({ notices, rooms: roomsPhase });
    }
    for (const p of posters) p.terminate();
    return out;
  } finally {
    await sql.end();
    await hub.stop();
  }
}
