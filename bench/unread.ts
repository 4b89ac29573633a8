// The `unread` scenario: what unread and mention counts cost for a person in --rooms (5,000) rooms
// on PostgreSQL. Seeds the rooms straight into the database, each with --messages (200) messages
// (so counting history would read 1,000,000 rows), the person's marker halfway and one mention in
// every tenth room; then drives GET /api/v1/rooms?scope=mine&limit=200 (a page of rooms with their
// counts) beside GET /api/v1/auth/me (one authenticated primary-key read) through the same client in
// the same run, and times listing all the person's rooms page by page.

import postgres from 'postgres';
import { json, type LoadResult, load, startHub } from './lib.js';

export interface UnreadResult {
  baseline: LoadResult;
  page: LoadResult;
  /** Every room listed, page after page (ms), and whether the counts were right. */
  fullListMs: number;
  countsRight: boolean;
}

const PASSWORD = 'correct horse battery staple';

/** Seeds `rooms` group rooms of `messages` messages each (by a poster), `readerId` a member of each, read halfway. */
async function seed(url: string, readerId: string, o: { rooms: number; messages: number }): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [poster] = await sql<{ id: string }[]>`
      INSERT INTO users (id, username, password_hash) VALUES (gen_random_uuid(), 'poster', 'x') RETURNING id`;
    const half = Math.floor(o.messages / 2);
    await sql`
      INSERT INTO rooms (id, kind, name, owner_id, last_seq, msg_count)
      SELECT gen_random_uuid(), 'group', 'room ' || i, ${poster?.id as string}::uuid, ${o.messages}, ${o.messages} FROM generate_series(1, ${o.rooms}) AS i`;
    await sql`
      INSERT INTO room_members (room_id, user_id, role, read_seq, read_no)
      SELECT id, ${poster?.id as string}::uuid, 'owner', ${o.messages}::bigint, ${o.messages}::bigint FROM rooms
      UNION ALL
      SELECT id, ${readerId}::uuid, 'member', ${half}::bigint, ${half}::bigint FROM rooms`;
    await sql`
      INSERT INTO messages (room_id, seq, id, sender_id, client_msg_id, body, msg_no)
      SELECT r.id, s, gen_random_uuid(), ${poster?.id as string}::uuid, r.id || ':' || s, 'message ' || s, s
      FROM rooms r, generate_series(1, ${o.messages}) AS s`;
    // One mention past the marker in every tenth room.
    await sql`
      INSERT INTO mentions (room_id, seq, user_id)
      SELECT id, ${o.messages}::bigint, ${readerId}::uuid FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM rooms) r WHERE n % 10 = 0`;
    for (const table of ['rooms', 'room_members', 'messages', 'mentions']) await sql.unsafe(`VACUUM ANALYZE ${table}`);
  } finally {
    await sql.end();
  }
}

async function run(
  o: { durationS: number; connections: number; rooms: number; messages: number },
  hubUrl: string,
  hub: Parameters<typeof load>[0],
  token: string,
): Promise<UnreadResult> {
  const headers = { authorization: `Bearer ${token}` };
  const get = (path: string) => load(hub, { connections: o.connections, durationS: o.durationS, requests: [{ method: 'GET', path }], headers });
  const baseline = await get('/api/v1/auth/me');
  const page = await get('/api/v1/rooms?scope=mine&limit=200');
  const t0 = performance.now();
  let listed = 0;
  let mentions = 0;
  let right = true;
  for (let cursor: string | null = null; ; ) {
    const body: { rooms: { unread: number; mentions: number }[]; nextCursor: string | null } = await json(
      `${hubUrl}/api/v1/rooms?scope=mine&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      'GET',
      undefined,
      token,
    );
    for (const r of body.rooms) {
      right &&= r.unread === o.messages - Math.floor(o.messages / 2);
      mentions += r.mentions;
    }
    listed += body.rooms.length;
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  const fullListMs = performance.now() - t0;
  return { baseline, page, fullListMs, countsRight: right && listed === o.rooms && mentions === Math.floor(o.rooms / 10) };
}

/** Starts a hub on `url`, seeds it once, and measures `runs` times. */
export async function unread(
  o: { durationS: number; connections: number; rooms: number; messages: number; runs: number },
  url: string,
): Promise<UnreadResult[]> {
  const hub = await startHub('postgres', { SB_LOGIN_PER_IP_PER_MINUTE: '100000' });
  try {
    await json(`${hub.url}/api/v1/auth/register`, 'POST', { username: 'reader', password: PASSWORD });
    const login = await json(`${hub.url}/api/v1/auth/login`, 'POST', { username: 'reader', password: PASSWORD });
    await seed(url, login.user.id as string, o);
    const out: UnreadResult[] = [];
    for (let r = 0; r < o.runs; r++) out.push(await run(o, hub.url, hub, login.accessToken as string));
    return out;
  } finally {
    await hub.stop();
  }
}
