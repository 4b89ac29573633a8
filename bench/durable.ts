// The durable scenario: how many publishes a second the hub acks (each one durable in PostgreSQL
// before its ack), beside what PostgreSQL itself takes as raw batched inserts of the same rows.
//   hub   --rooms rooms, --sockets publisher sockets (users joined to every room), each keeping
//         --inflight publishes in flight round-robin over the rooms, no subscribers: acked/s and
//         publish→ack latency, hub CPU and the CPU of PostgreSQL's processes (from pg_stat_activity
//         and /proc) per acked message.
//   raw   the same number of rows into a table of the messages table's shape (its columns, checks
//         and indexes), as `INSERT … SELECT * FROM unnest(…)` batches of --raw-batch rows over
//         --raw-connections connections: rows/s, the ceiling the hub is measured against.

import { randomUUID } from 'node:crypto';
import { createHistogram } from 'node:perf_hooks';
import { Packr } from 'msgpackr';
import postgres from 'postgres';
import type WebSocket from 'ws';
import { cpuSeconds, json, pgCpuMeter, startHub } from './lib.js';
import { PERCENTILES } from './percentiles.js';
import { connect } from './realtime.js';

const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const PASSWORD = 'correct horse battery staple';
const BODY = `durable ${'x'.repeat(92)}`; // ~100 B, as in the fan-out scenario

export interface DurableOptions {
  rooms: number;
  sockets: number;
  inflight: number;
  durationS: number;
  rawBatch: number;
  rawConnections: number;
}

export interface DurableResult {
  ackedPerS: number;
  p50: number;
  p99: number;
  p999: number;
  /** Publish→ack latency (ms) at each of PERCENTILES. */
  latencyMs: number[];
  /** Hub CPU per acked message, µs. */
  hubUsPerMsg: number;
  /** PostgreSQL's CPU per acked message, µs: this database's backends and the server's background processes (see pgCpuMeter). */
  pgUsPerMsg: number;
  nacks: number;
}

export interface RawResult {
  rowsPerS: number;
  pgUsPerRow: number;
}

const hubLimits = {
  SB_WS_PUBLISH_PER_SECOND: '1000000',
  SB_WS_PUBLISH_BURST: '1000000',
  SB_LOGIN_PER_IP_PER_MINUTE: '100000',
  SB_REGISTER_PER_IP_PER_HOUR: '100000',
  SB_ARGON2_MEMORY_KIB: '8192',
  SB_ARGON2_TIME_COST: '1',
};

export async function durableHub(o: DurableOptions, databaseUrl: string): Promise<DurableResult> {
  const hub = await startHub('postgres', hubLimits);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const sockets: WebSocket[] = [];
  try {
    const run = Date.now().toString(36);
    const users = Math.min(o.sockets, 10);
    const tokens: string[] = [];
    for (let i = 0; i < users; i++) {
      const username = `dur${run}${i}`;
      await json(`${hub.url}/api/v1/auth/register`, 'POST', { username, password: PASSWORD });
      tokens.push((await json(`${hub.url}/api/v1/auth/login`, 'POST', { username, password: PASSWORD })).accessToken);
    }
    const rooms: string[] = [];
    for (let r = 0; r < o.rooms; r++) {
      const id = (await json(`${hub.url}/api/v1/rooms`, 'POST', { kind: 'group', name: `durable ${r}` }, tokens[0])).room.id as string;
      await Promise.all(tokens.slice(1).map((t) => json(`${hub.url}/api/v1/rooms/${id}/join`, 'POST', undefined, t)));
      rooms.push(id);
    }
    for (let s = 0; s < o.sockets; s++) sockets.push(await connect(hub.url, tokens[s % users] as string));

    const latency = createHistogram();
    let acked = 0;
    let nacks = 0;
    let measuring = true;
    const t0 = performance.now();
    const deadline = t0 + o.durationS * 1000;
    const cpu0 = cpuSeconds(hub.pid);
    const pgCpu = await pgCpuMeter(sql);
    await Promise.all(
      sockets.map(
        (ws, s) =>
          new Promise<void>((resolve) => {
            const sentAt = new Map<number, number>();
            let next = 0;
            let open = 0;
            const send = () => {
              const id = ++next;
              const room = rooms[(s * o.inflight + id) % rooms.length] as string;
              sentAt.set(id, performance.now());
              open++;
              ws.send(packr.pack({ t: 'pub', id, room, cid: `d${run}-${s}-${id}`, body: BODY }));
            };
            ws.on('message', (d: Buffer) => {
              const f = packr.unpack(d);
              if (f.t !== 'ack' && f.t !== 'nack') return;
              const at = sentAt.get(f.id);
              sentAt.delete(f.id);
              open--;
              if (measuring) {
                if (f.t === 'ack') {
                  acked++;
                  if (at !== undefined) latency.record(Math.max(1, Math.round((performance.now() - at) * 1000)));
                } else nacks++;
              }
              if (performance.now() < deadline) send();
              else if (open === 0) resolve();
            });
            for (let i = 0; i < o.inflight; i++) send();
          }),
      ),
    );
    measuring = false;
    const wall = (performance.now() - t0) / 1000;
    const hubCpu = cpuSeconds(hub.pid) - cpu0;
    const pgCpuS = await pgCpu();
    return {
      ackedPerS: acked / wall,
      p50: latency.percentile(50) / 1000,
      p99: latency.percentile(99) / 1000,
      p999: latency.percentile(99.9) / 1000,
      latencyMs: PERCENTILES.map((p) => latency.percentile(p) / 1000),
      hubUsPerMsg: (hubCpu * 1e6) / acked,
      pgUsPerMsg: (pgCpuS * 1e6) / acked,
      nacks,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await sql.end();
    await hub.stop();
  }
}

/** Raw batched inserts of message-shaped rows into a scratch table like `messages`, for `durationS`. */
export async function durableRaw(o: DurableOptions, databaseUrl: string): Promise<RawResult> {
  const sql = postgres(databaseUrl, { max: o.rawConnections + 1, onnotice: () => {} });
  const table = `bench_raw_${Date.now().toString(36)}`;
  try {
    await sql.unsafe(`CREATE TABLE ${table} (
      room_id uuid NOT NULL, seq bigint NOT NULL CHECK (seq > 0), id uuid NOT NULL UNIQUE, sender_id uuid,
      client_msg_id text NOT NULL CHECK (char_length(client_msg_id) BETWEEN 1 AND 64),
      body text NOT NULL CHECK (octet_length(body) <= 1048576), created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (room_id, seq))`);
    await sql.unsafe(`CREATE UNIQUE INDEX ${table}_sender_cid ON ${table} (sender_id, client_msg_id)`);
    const rooms = Array.from({ length: o.rooms }, () => randomUUID());
    const senders = Array.from({ length: 10 }, () => randomUUID());
    const seqs = new Map<string, number>();
    let rows = 0;
    let k = 0;
    const pgCpu = await pgCpuMeter(sql);
    const t0 = performance.now();
    const deadline = t0 + o.durationS * 1000;
    await Promise.all(
      Array.from({ length: o.rawConnections }, async (_, c) => {
        while (performance.now() < deadline) {
          const room = rooms[(c + k++) % rooms.length] as string;
          const first = (seqs.get(room) ?? 0) + 1;
          seqs.set(room, first + o.rawBatch - 1);
          const ids: string[] = [];
          const seqCol: number[] = [];
          const senderCol: string[] = [];
          const cids: string[] = [];
          for (let i = 0; i < o.rawBatch; i++) {
            ids.push(randomUUID());
            seqCol.push(first + i);
            senderCol.push(senders[i % senders.length] as string);
            cids.push(`r${room.slice(0, 8)}-${first + i}`);
          }
          await sql.unsafe(
            `INSERT INTO ${table} (room_id, seq, id, sender_id, client_msg_id, body, created_at)
             SELECT $1::uuid, s, i, u, c, $2, now() FROM unnest($3::bigint[], $4::uuid[], $5::uuid[], $6::text[]) AS t(s, i, u, c)`,
            [room, BODY, seqCol, ids, senderCol, cids] as never[],
          );
          rows += o.rawBatch;
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const pgCpuS = await pgCpu();
    return { rowsPerS: rows / wall, pgUsPerRow: (pgCpuS * 1e6) / rows };
  } finally {
    await sql.unsafe(`DROP TABLE IF EXISTS ${table}`);
    await sql.end();
  }
}
