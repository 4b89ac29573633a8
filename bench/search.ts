// The `search` scenario: finding people among --users (100,000) accounts on PostgreSQL. Seeds them
// straight into the database (names from 200 first × 500 last names, each with a verified email),
// then drives GET /api/v1/users with several kinds of query, one kind at a time, beside
// GET /api/v1/auth/me (one authenticated primary-key read) through the same client in the same
// run: requests/s and p50/p99 per kind, and each kind's requests/s as a ratio to the baseline's
// (autocannon reports whole milliseconds: a p50 under 1 ms reads 0).

import postgres from 'postgres';
import { json, type LoadResult, load, startHub } from './lib.js';

const FIRST = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'donald', 'margaret', 'ken', 'dennis', 'linus', 'adele', 'frances', 'john', 'tim', 'radia'];
const LAST = [
  'lovelace',
  'hopper',
  'turing',
  'dijkstra',
  'liskov',
  'knuth',
  'hamilton',
  'thompson',
  'ritchie',
  'torvalds',
  'goldberg',
  'allen',
  'mccarthy',
  'berners',
  'perlman',
];

/** The kinds of query, each with the path it requests (q URL-encoded). */
export const SEARCH_KINDS: [string, string][] = [
  ['one letter "a"', 'a'],
  ['a first name "ada"', 'ada'],
  ['two words "ada lov"', 'ada lov'],
  ['rare "zzq"', 'zzq'],
  ['exact email', 'user4242@example.test'],
];

export interface SearchResult {
  baseline: LoadResult;
  kinds: Record<string, LoadResult>;
}

/** Seeds `users` accounts into the database at `url` (the hub has migrated it). */
export async function seedUsers(url: string, users: number): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    // 200 × 500 distinct display names: the first names repeat with a numeric suffix word.
    const first = Array.from({ length: 200 }, (_, i) => `${FIRST[i % FIRST.length]}${i < FIRST.length ? '' : ` ${i}`}`);
    const last = Array.from({ length: 500 }, (_, i) => `${LAST[i % LAST.length]}${i < LAST.length ? '' : `x${i}`}`);
    await sql`
      INSERT INTO users (id, username, display_name, password_hash, email)
      SELECT gen_random_uuid(), 'user' || i, (${first}::text[])[1 + i % 200] || ' ' || (${last}::text[])[1 + (i / 200) % 500],
             'x', 'user' || i || '@example.test'
      FROM generate_series(1, ${users}) AS i`;
    // As autovacuum would leave a table this size: statistics, and a visibility map for index-only scans.
    await sql`VACUUM ANALYZE users`;
    await sql`VACUUM ANALYZE user_name_words`;
  } finally {
    await sql.end();
  }
}

export async function searchRun(o: { durationS: number; connections: number }, hubUrl: string, hub: Parameters<typeof load>[0]): Promise<SearchResult> {
  const username = `seeker${Date.now().toString(36)}`;
  await json(`${hubUrl}/api/v1/auth/register`, 'POST', { username, password: 'correct horse battery staple' });
  const token = (await json(`${hubUrl}/api/v1/auth/login`, 'POST', { username, password: 'correct horse battery staple' })).accessToken as string;
  const headers = { authorization: `Bearer ${token}` };
  const get = (path: string) => load(hub, { connections: o.connections, durationS: o.durationS, requests: [{ method: 'GET', path }], headers });
  const baseline = await get('/api/v1/auth/me');
  const kinds: Record<string, LoadResult> = {};
  for (const [kind, q] of SEARCH_KINDS) kinds[kind] = await get(`/api/v1/users?q=${encodeURIComponent(q)}&limit=20`);
  return { baseline, kinds };
}

/** Starts a hub on `url`, seeds it once, and measures `runs` times. */
export async function search(o: { durationS: number; connections: number; users: number; runs: number }, url: string): Promise<SearchResult[]> {
  const hub = await startHub('postgres', { SB_REGISTER_PER_IP_PER_HOUR: '100000', SB_LOGIN_PER_IP_PER_MINUTE: '100000' });
  try {
    await seedUsers(url, o.users);
    const out: SearchResult[] = [];
    for (let r = 0; r < o.runs; r++) out.push(await searchRun(o, hub.url, hub));
    return out;
  } finally {
    await hub.stop();
  }
}
