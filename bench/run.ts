// `npm run bench -- <scenario> [--runs 3] [--duration 10] [--connections 16] [--store embedded|postgres]
//                              [--rooms N] [--members 20] [--rate 20] [--robots 20] [--watchers 5] [--ingest-rate HZ]
//                              [--nodes N]`
// Scenarios:
//   login    argon2id cost (ms per hash at the configured parameters) and end-to-end logins/s through
//            the hub, against the ceiling of raw argon2 verifies/s on this machine in the same run.
//   history  GET /api/v1/rooms/:id/messages?limit=50 pages of a 1000-message room: requests/s and
//            latency, against a bare uWebSockets.js server returning the same bytes (the ceiling).
//   fanout   rooms × members × publish rate over WebSockets, against bare uWS pub/sub (bench/realtime.ts).
//   peers    the fan-out load (default 1 room × 200 subscribers × 400 publishes/s) against bare uWS,
//            `ws`, Socket.IO and the hub, embedded and on PostgreSQL (DATABASE_URL or a throwaway one),
//            in one run: deliveries/s, delivered fraction, p50/p99/p999, server CPU per delivery (and
//            PostgreSQL's) as a ratio to bare uWS, settled RSS per connection, client CPU (bench/peers.ts).
//   cluster  the fanout load on 1, 2 and 3 hub nodes over NATS and PostgreSQL (publishers on node 1,
//            subscribers spread over all): deliveries/s per cluster size, and same-node against
//            cross-node latency. Starts a throwaway nats-server, and PostgreSQL unless DATABASE_URL.
//   durable  --rooms (100) × --sockets (50) publishers keeping --inflight (64) publishes in flight each,
//            no subscribers, on PostgreSQL: acked publishes/s, publish→ack latency, hub and
//            PostgreSQL CPU per acked message; beside raw batched inserts of the same rows into a
//            table of the same shape, in the same run (bench/durable.ts). DATABASE_URL, or a
//            throwaway PostgreSQL.
//   search   finding people among --users (100000) accounts seeded into PostgreSQL (DATABASE_URL, or a
//            throwaway one): requests/s and p50/p99 of GET /api/v1/users per kind of query, beside
//            GET /api/v1/auth/me through the same client in the same run, as a ratio (bench/search.ts).
//   unread   a person in --rooms (5000) rooms of --messages (200) messages each, seeded into
//            PostgreSQL: requests/s and p50/p99 of GET /api/v1/rooms?scope=mine&limit=200 (a page with
//            unread and mention counts) beside GET /api/v1/auth/me in the same run, and the time to
//            list every room page by page (bench/unread.ts).
//   notify   --people (10000) in --rooms (1000) rooms, --per-person (5) rooms each, --connected (2000)
//            of them online, one poster publishing --rate (500) messages/s to random rooms: live
//            message notices to unsubscribed people, then the same load as room subscriptions (all
//            muted): deliveries/s, p50/p99/p999 publish→delivery, hub CPU per delivery, as a ratio
//            (bench/notify.ts). DATABASE_URL, or a throwaway PostgreSQL.
//   idle     --connections (10000) idle authenticated WebSockets: server RSS per connection (the marginal cost over
//            the second half, and over all), beside bare uWS holding the same number open.
//   telemetry --robots × --rate Hz × --watchers per robot: robot telemetry through the hub to
//            watchers (deliveries/s, latency, command round trip, CPU, memory per connection),
//            then the same robot load against a bare Node TLS and a bare uWS ingest server: the cost
//            of the Node TLS robot listener against a uWS listener (bench/telemetry.ts); one
//            Foxglove watcher per robot (/foxglove) beside the /ws watchers, as a row of its own; and
//            the reliable uplink, one robot (bench/reliable-uplink.ts): acknowledged samples/s beside
//            the same link unacknowledged, replay time after a 5 s drop. With --nodes N,
//            the hub run on a cluster of N nodes instead (NATS and PostgreSQL as for `cluster`, one
//            robot CA and server certificate for all): robots on node 1, each robot's watchers
//            round-robin over the nodes; same-node and cross-node deliveries and latency apart, CPU
//            and RSS per node; no ingest baselines.
//   report   [--out FILE] [result.json …]: the latest results (bench/results/*.json) as one HTML page
//            with uPlot charts (bench/report.ts); default bench/results/report.html.
// Each figure is the median of --runs runs; each scenario writes them all (every run and its median,
// the options, the machine and the printed lines) as JSON for tools, to bench/results/<scenario>.json
// or --json FILE. The hub runs as a child process; the load generator
// (autocannon) runs in this process, and its CPU use is printed so a saturated client shows (the
// telemetry scenario's robots run in a load-generator process of their own).

import { generateKeyPairSync } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { answers, throwawayNats, throwawayPostgres } from '../scripts/provision.mjs';
import { Passwords } from '../src/auth/passwords.js';
import { resolveConfig } from '../src/config.js';
import { type DurableResult, durableHub, durableRaw, type RawResult } from './durable.js';
import { fmt, json, type LoadResult, load, median, medianOf, spawnBaseline, startHub } from './lib.js';
import { type NotifyResult, notify } from './notify.js';
import { PEERS, type Peer, peerOnce } from './peers.js';
import { type FanoutResult, fanoutBaseline, fanoutCluster, fanoutHub, fanoutRow, hubLimits, type IdleResult, idle } from './realtime.js';
import { reliableUplink, type UplinkResult, uplinkRows } from './reliable-uplink.js';
import { writeReport } from './report.js';
import { SEARCH_KINDS, type SearchResult, search } from './search.js';
import {
  type HubTelemetryResult,
  hubTelemetryRows,
  type IngestResult,
  ingestBaseline,
  ingestPki,
  ingestRow,
  type TelemetryOptions,
  telemetryCluster,
  telemetryHub,
  watcherSplit,
} from './telemetry.js';
import { type UnreadResult, unread } from './unread.js';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string' },
    store: { type: 'string', default: 'embedded' },
    rooms: { type: 'string' },
    members: { type: 'string' },
    rate: { type: 'string' },
    robots: { type: 'string', default: '20' },
    watchers: { type: 'string', default: '5' },
    'ingest-rate': { type: 'string' },
    nodes: { type: 'string' },
    users: { type: 'string' },
    messages: { type: 'string' },
    people: { type: 'string' },
    'per-person': { type: 'string' },
    connected: { type: 'string' },
    sockets: { type: 'string', default: '50' },
    inflight: { type: 'string', default: '64' },
    'raw-batch': { type: 'string', default: '64' },
    'raw-connections': { type: 'string', default: '8' },
    json: { type: 'string' },
    out: { type: 'string' },
  },
});
const runs = Number(values.runs);
const durationS = Number(values.duration);
/** HTTP load connections (login, history); idle counts its sockets with it too, default 10,000. */
const connections = Number(values.connections ?? 16);
const store = values.store === 'postgres' ? 'postgres' : 'embedded';
/** The fan-out load's shape: the options given, else the scenario's defaults. */
const fanoutShape = (rooms: number, members: number, rate: number) => ({
  rooms: Number(values.rooms ?? rooms),
  members: Number(values.members ?? members),
  rate: Number(values.rate ?? rate),
  durationS,
});

/** What `--json FILE` writes: the scenario, its options, the machine, every run and its median, and the printed lines. */
const report = {
  scenario: positionals[0] ?? '',
  command: process.argv.slice(2).join(' '),
  options: values,
  at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  results: {} as Record<string, { median: unknown; runs: unknown[] }>,
  lines: [] as string[],
};

/** The median of `runs`, kept under `name` for the JSON report. */
function kept<T>(name: string, runs: T[]): T {
  const median = medianOf(runs);
  report.results[name] = { median, runs };
  return median;
}

/** Prints a result line (and keeps it for the JSON report). */
function say(line: string): void {
  report.lines.push(line);
  console.log(line);
}

const row = (name: string, r: LoadResult) =>
  `${name.padEnd(22)} ${fmt(r.rps, 0).padStart(9)} req/s  p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  p999 ${fmt(r.p999)} ms  server CPU ${fmt(r.serverCpuPct, 0)}%  RSS ${fmt(r.serverRssMiB, 0)} MiB  client CPU ${fmt(r.clientCpuPct, 0)}%  errors ${r.errors + r.non2xx}`;

async function login() {
  const cfg = resolveConfig({}, process.env);
  const pw = new Passwords({ memoryKiB: cfg.argon2MemoryKiB, timeCost: cfg.argon2TimeCost });
  const hashMs: number[] = [];
  let hash = '';
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    hash = await pw.hash('correct horse battery staple');
    hashMs.push(performance.now() - t0);
  }
  const verifiesPerS: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    let n = 0;
    // One verify in flight per core: more only queues (argon2 is CPU-bound).
    await Promise.all(
      Array.from({ length: os.cpus().length }, async () => {
        while (performance.now() - t0 < 3000) {
          await pw.verify(hash, 'correct horse battery staple');
          n++;
        }
      }),
    );
    verifiesPerS.push(n / ((performance.now() - t0) / 1000));
  }
  say(
    `argon2id m=${cfg.argon2MemoryKiB} KiB t=${cfg.argon2TimeCost} p=1: hash median ${fmt(median(hashMs))} ms (20 hashes); ceiling ${fmt(median(verifiesPerS), 0)} verifies/s on ${os.cpus().length} cores`,
  );

  const results: LoadResult[] = [];
  for (let r = 0; r < runs; r++) {
    const hub = await startHub(store, { SB_LOGIN_PER_IP_PER_MINUTE: '100000', SB_LOGIN_FAILS_PER_USER_IP: '100000' });
    try {
      const username = `bench${Date.now().toString(36)}`;
      await json(`${hub.url}/api/v1/auth/register`, 'POST', { username, password: 'correct horse battery staple' });
      const body = JSON.stringify({ username, password: 'correct horse battery staple' });
      results.push(
        await load(hub, {
          connections: 4,
          durationS,
          requests: [{ method: 'POST', path: '/api/v1/auth/login', body, headers: { 'content-type': 'application/json' } }],
        }),
      );
    } finally {
      await hub.stop();
    }
  }
  const m = kept('hub', results);
  say(row(`hub login (${store})`, m));
  say(`ratio hub logins/s : raw argon2 verifies/s = ${fmt(m.rps / median(verifiesPerS), 2)}`);
}

async function history() {
  const hubRuns: LoadResult[] = [];
  const bareRuns: LoadResult[] = [];
  for (let r = 0; r < runs; r++) {
    const hub = await startHub(store, hubLimits);
    let pagePath = '';
    try {
      // Unique per run: with --store postgres every run shares one database.
      const username = `reader${Date.now().toString(36)}`;
      await json(`${hub.url}/api/v1/auth/register`, 'POST', { username, password: 'correct horse battery staple' });
      const s = await json(`${hub.url}/api/v1/auth/login`, 'POST', { username, password: 'correct horse battery staple' });
      const token = s.accessToken as string;
      const room = (await json(`${hub.url}/api/v1/rooms`, 'POST', { kind: 'group', name: 'history' }, token)).room.id as string;
      for (let i = 0; i < 1000; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, j) =>
            json(`${hub.url}/api/v1/rooms/${room}/messages`, 'POST', { cid: `m${i + j}`, body: `message number ${i + j}: ${'lorem ipsum '.repeat(8)}` }, token),
          ),
        );
      }
      // 20 different pages, spread over the history, requested round-robin.
      const requests = Array.from({ length: 20 }, (_, i) => ({
        method: 'GET' as const,
        path: `/api/v1/rooms/${room}/messages?limit=50&before=${1001 - i * 50}`,
      }));
      pagePath = requests[0]?.path as string;
      hubRuns.push(await load(hub, { connections, durationS, requests, headers: { authorization: `Bearer ${token}` } }));
      // The same bytes for the baseline.
      const page = await fetch(hub.url + pagePath, { headers: { authorization: `Bearer ${token}` } }).then((x) => x.text());
      const file = path.join(hub.dataDir, 'page.json');
      await writeFile(file, page);
      const bare = await spawnBaseline('baseline-uws.ts', file);
      try {
        bareRuns.push(await load(bare, { connections, durationS, requests }));
      } finally {
        await bare.stop();
      }
    } finally {
      await hub.stop();
    }
  }
  const h = kept('hub', hubRuns);
  const b = kept('bare uWS', bareRuns);
  say(`history: 50-message pages of a 1000-message room, ${connections} connections, ${durationS} s, median of ${runs} runs`);
  say(row(`hub (${store})`, h));
  say(row('bare uWS (same bytes)', b));
  say(`ratio hub : bare uWS = ${fmt(h.rps / b.rps, 3)}`);
}

async function fanout() {
  const o = { ...fanoutShape(10, 20, 20), store } as const;
  const hubRuns: FanoutResult[] = [];
  const bareRuns: FanoutResult[] = [];
  for (let r = 0; r < runs; r++) {
    hubRuns.push(await fanoutHub(o));
    bareRuns.push(await fanoutBaseline(o));
  }
  const h = kept('hub', hubRuns);
  const b = kept('bare uWS', bareRuns);
  say(`fanout: ${o.rooms} rooms × ${o.members} members, ${o.rate} publishes/s per room, ${durationS} s, median of ${runs} runs`);
  say(fanoutRow(`hub (${store})`, h));
  say(fanoutRow('bare uWS pub/sub', b));
  say(`ratio hub : bare uWS deliveries/s = ${fmt(h.deliveriesPerS / b.deliveriesPerS, 3)}`);
}

async function peers() {
  const o = { ...fanoutShape(1, 200, 400), store } as const;
  await withPostgres(async () => {
    const byPeer = new Map<Peer, FanoutResult[]>(PEERS.map((p) => [p, []]));
    // Round-robin over the peers in each run, so a slow stretch of a shared machine hits them all.
    for (let r = 0; r < runs; r++) for (const peer of PEERS) byPeer.get(peer)?.push(await peerOnce(peer, o));
    const m = new Map(PEERS.map((p) => [p, kept(p, byPeer.get(p) as FanoutResult[])]));
    const bare = m.get('bare uWS') as FanoutResult;
    say(
      `peers: ${o.rooms} room${o.rooms > 1 ? 's' : ''} × ${o.members} subscribers, ${o.rate} publishes/s per room of ~100 B, ${durationS} s, median of ${runs} runs`,
    );
    // settledRss agrees within 0.5 MiB: over this few connections that is the figure's resolution.
    const connections = o.rooms * (o.members + 1);
    say(
      `CPU: the server's process (and PostgreSQL's, "with DB"); KiB/conn: settled RSS growth over ${connections} connections, ±${fmt(512 / connections, 1)} KiB (the idle scenario measures it at scale)`,
    );
    say(
      `${'server'.padEnd(18)} ${'deliveries/s'.padStart(12)} delivered  p50 ms  p99 ms p999 ms  CPU µs/delivery  ÷ bare  with DB  ÷ bare  KiB/conn  client CPU`,
    );
    for (const [peer, r] of m) {
      const all = r.serverUsPerDelivery + (Number.isFinite(r.dbUsPerDelivery) ? r.dbUsPerDelivery : 0);
      const withDb = Number.isFinite(r.dbUsPerDelivery);
      say(
        `${peer.padEnd(18)} ${fmt(r.deliveriesPerS, 0).padStart(12)} ${`${fmt(r.deliveredFraction * 100, 2)}%`.padStart(9)} ${fmt(r.p50, 2).padStart(7)} ${fmt(r.p99, 2).padStart(7)} ${fmt(r.p999, 2).padStart(7)} ${fmt(r.serverUsPerDelivery, 2).padStart(16)} ${fmt(r.serverUsPerDelivery / bare.serverUsPerDelivery, 2).padStart(7)} ${(withDb ? fmt(all, 2) : '').padStart(8)} ${(withDb ? fmt(all / bare.serverUsPerDelivery, 2) : '').padStart(7)} ${fmt(r.rssPerConnKiB, 1).padStart(9)} ${`${fmt(r.clientCpuPct, 0)}%`.padStart(11)}`,
      );
    }
  });
}

/**
 * What a cluster's nodes share, for `fn`: a throwaway nats-server, PostgreSQL (DATABASE_URL if it
 * answers, else a throwaway one) and a JWT signing key file.
 */
async function withClusterServices(fn: (nats: string, keyFile: string) => Promise<void>): Promise<void> {
  const nats = await throwawayNats();
  const keyFile = path.join(os.tmpdir(), `sb-bench-jwt-${process.pid}.pem`);
  try {
    await writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    await withPostgres(() => fn(nats.url, keyFile));
  } finally {
    await rm(keyFile, { force: true });
    await nats.stop();
  }
}

async function cluster() {
  const o = { ...fanoutShape(10, 20, 20), store: 'postgres' } as const;
  await withClusterServices(async (nats, keyFile) => {
    const rows: [number, FanoutResult][] = [];
    for (const nodes of [1, 2, 3]) {
      const results: FanoutResult[] = [];
      for (let r = 0; r < runs; r++) results.push(await fanoutCluster(o, nodes, nats, keyFile));
      rows.push([nodes, kept(`${nodes} nodes`, results)]);
    }
    say(
      `cluster: ${o.rooms} rooms × ${o.members} members, ${o.rate} publishes/s per room, ${durationS} s, median of ${runs} runs; publishers on node 1, subscribers spread over the nodes`,
    );
    for (const [nodes, r] of rows) {
      say(fanoutRow(`${nodes} node${nodes > 1 ? 's' : ''}`, r));
      if (r.sameNode && r.crossNode) {
        say(
          `${''.padEnd(18)} same node p50 ${fmt(r.sameNode.p50, 2)} ms p99 ${fmt(r.sameNode.p99, 2)} ms; cross node p50 ${fmt(r.crossNode.p50, 2)} ms p99 ${fmt(r.crossNode.p99, 2)} ms`,
        );
      }
    }
    const one = rows[0]?.[1].deliveriesPerS ?? Number.NaN;
    say(`deliveries/s relative to 1 node: ${rows.map(([n, r]) => `${n}: ${fmt(r.deliveriesPerS / one, 2)}`).join(', ')}`);
  });
}

/** DATABASE_URL if it answers, else a throwaway PostgreSQL for the length of `fn`. */
async function withPostgres(fn: (url: string) => Promise<void>): Promise<void> {
  const pg = process.env.DATABASE_URL && (await answers(process.env.DATABASE_URL)) ? undefined : await throwawayPostgres();
  if (pg) process.env.DATABASE_URL = pg.url;
  try {
    await fn(process.env.DATABASE_URL as string);
  } finally {
    await pg?.stop();
  }
}

async function durable() {
  const o = {
    rooms: Number(values.rooms ?? 100),
    sockets: Number(values.sockets),
    inflight: Number(values.inflight),
    durationS,
    rawBatch: Number(values['raw-batch']),
    rawConnections: Number(values['raw-connections']),
  };
  await withPostgres(async (url) => {
    const hubRuns: DurableResult[] = [];
    const rawRuns: RawResult[] = [];
    for (let r = 0; r < runs; r++) {
      hubRuns.push(await durableHub(o, url));
      rawRuns.push(await durableRaw(o, url));
    }
    const h = kept('hub', hubRuns);
    const w = kept('raw insert', rawRuns);
    say(
      `durable: ${o.rooms} rooms, ${o.sockets} sockets × ${o.inflight} publishes in flight, no subscribers, ${durationS} s, median of ${runs} runs (PostgreSQL)`,
    );
    say(
      `${'hub'.padEnd(22)} ${fmt(h.ackedPerS, 0).padStart(8)} acked/s  ack p50 ${fmt(h.p50, 2)} ms  p99 ${fmt(h.p99, 2)} ms  p999 ${fmt(h.p999, 2)} ms  CPU per message: hub ${fmt(h.hubUsPerMsg, 1)} µs, PostgreSQL ${fmt(h.pgUsPerMsg, 1)} µs  nacks ${h.nacks}`,
    );
    say(
      `${`raw INSERT (${o.rawBatch}-row batches × ${o.rawConnections})`.padEnd(22)} ${fmt(w.rowsPerS, 0).padStart(8)} rows/s   PostgreSQL ${fmt(w.pgUsPerRow, 1)} µs per row`,
    );
    say(`ratio hub acked/s : raw rows/s = ${fmt(h.ackedPerS / w.rowsPerS, 3)}`);
  });
}

async function idleConnections() {
  const n = Number(values.connections ?? 10_000);
  const hubRuns: IdleResult[] = [];
  const bareRuns: IdleResult[] = [];
  for (let r = 0; r < runs; r++) {
    hubRuns.push(await idle(n, store));
    bareRuns.push(await idle(n, 'bare uWS'));
  }
  const h = kept('hub', hubRuns);
  const b = kept('bare uWS', bareRuns);
  say(`idle: ${n} WebSocket connections that only hold open, median of ${runs} runs; RSS after a full GC, once settled`);
  say(`KiB per connection: over the second half (the marginal cost of one more); over all (also what a burst of connections grows once)`);
  for (const [name, m] of [[`hub (${store}, authenticated)`, h] as const, ['bare uWS', b] as const]) {
    say(
      `${name.padEnd(30)} ${fmt(m.perConnKiB, 2).padStart(6)} KiB marginal  ${fmt(m.overallKiB, 2).padStart(6)} KiB over all  RSS ${fmt(m.rssBefore, 0)} → ${fmt(m.rssHalf, 0)} → ${fmt(m.rssAfter, 0)} MiB`,
    );
  }
  say(`ratio hub : bare uWS = ${fmt(h.perConnKiB / b.perConnKiB, 2)} marginal, ${fmt(h.overallKiB / b.overallKiB, 2)} over all`);
}

const telemetryHeader = (o: TelemetryOptions) =>
  `telemetry: ${o.robots} robots × ${o.rate} Hz pose (latest) + 1 Hz log (reliable) × ${o.watchers} /ws watchers per robot${o.foxglove ? ' + 1 Foxglove watcher per robot (one node)' : ''}, 1 command/s per robot, ${durationS} s, median of ${runs} runs`;

async function telemetry() {
  const rate = Number(values.rate ?? 20);
  const ingestRate = values['ingest-rate'] === undefined ? rate : Number(values['ingest-rate']);
  const o = { robots: Number(values.robots), rate, watchers: Number(values.watchers), durationS, store, ingestRate, foxglove: true } as const;
  if (values.nodes !== undefined) return telemetryNodes({ ...o, store: 'postgres', foxglove: false }, Number(values.nodes));
  const hubRuns: HubTelemetryResult[] = [];
  const tlsRuns: IngestResult[] = [];
  const uwsRuns: IngestResult[] = [];
  const uplinkRuns: UplinkResult[] = [];
  const uplink = { store, seconds: 5, window: 1_000, dropRate: 200 } as const;
  const pki = await ingestPki(Math.max(o.robots, 200));
  try {
    for (let r = 0; r < runs; r++) {
      hubRuns.push(await telemetryHub(o));
      tlsRuns.push(await ingestBaseline('tls', o, pki));
      uwsRuns.push(await ingestBaseline('uws', o, pki));
      uplinkRuns.push(await reliableUplink(uplink));
    }
  } finally {
    await pki.remove();
  }
  const h = kept('hub', hubRuns);
  const tl = kept('bare Node tls', tlsRuns);
  const uw = kept('bare uWS', uwsRuns);
  const up = kept('reliable uplink', uplinkRuns);
  say(telemetryHeader(o));
  for (const line of hubTelemetryRows(`hub (${store})`, h)) say(line);
  say(
    `robot ingest alone: ${o.robots} robots × ${ingestRate} Hz (${ingestRate === rate ? 'the same load' : `--ingest-rate; the hub run had ${rate} Hz`}) from the load generator, decode only:`,
  );
  say(ingestRow('bare Node tls (mutual TLS)', tl));
  say(ingestRow('bare uWS SSLApp WebSocket', uw));
  say(
    `ratio Node tls : uWS = ${fmt(tl.cpuPer10k / uw.cpuPer10k, 2)} CPU per 10k frames/s, ${fmt(tl.p50 / uw.p50, 2)} p50, ${fmt(tl.p99 / uw.p99, 2)} p99, ${fmt(tl.perConnKiB / uw.perConnKiB, 2)} memory per connection`,
  );
  for (const line of uplinkRows(up, uplink)) say(line);
}

/** The telemetry hub run on a cluster of `nodes` nodes (--nodes): same-node against cross-node watchers. */
async function telemetryNodes(o: TelemetryOptions, nodes: number) {
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`--nodes: a whole number of nodes, 1 or more (got ${values.nodes})`);
  const hubRuns: HubTelemetryResult[] = [];
  const pki = await ingestPki(0); // the robot CA and server certificate every node shares
  try {
    await withClusterServices(async (nats, keyFile) => {
      for (let r = 0; r < runs; r++) hubRuns.push(await telemetryCluster(o, nodes, nats, keyFile, pki));
    });
  } finally {
    await pki.remove();
  }
  const h = kept('hub', hubRuns);
  const split = watcherSplit(o.watchers, nodes);
  say(
    `${telemetryHeader(o)}; ${nodes} hub node${nodes > 1 ? 's' : ''} (NATS + PostgreSQL), robots and lease holders on node 1, watchers round-robin over the nodes (${split.same} per robot on node 1, ${split.cross} on the others)`,
  );
  for (const line of hubTelemetryRows(`hub (${nodes} node${nodes > 1 ? 's' : ''})`, h)) say(line);
}

async function findPeople() {
  const o = { durationS, connections: Number(values.connections ?? 4), users: Number(values.users ?? 100_000), runs };
  await withPostgres(async (url) => {
    const all: SearchResult[] = await search(o, url);
    const baseline = kept(
      'GET /auth/me',
      all.map((r) => r.baseline),
    );
    say(`search among ${o.users} people, ${o.connections} connections, ${durationS} s per kind, median of ${runs} runs`);
    say(row('GET /auth/me (baseline)', baseline));
    for (const [kind] of SEARCH_KINDS) {
      const m = kept(
        kind,
        all.map((r) => r.kinds[kind] as LoadResult),
      );
      say(`${row(kind, m)}  req/s ÷ baseline ${fmt(m.rps / baseline.rps, 2)}`);
    }
  });
}

async function unreadCounts() {
  const o = { durationS, connections: Number(values.connections ?? 4), rooms: Number(values.rooms ?? 5_000), messages: Number(values.messages ?? 200), runs };
  await withPostgres(async (url) => {
    const all: UnreadResult[] = await unread(o, url);
    const baseline = kept(
      'GET /auth/me',
      all.map((r) => r.baseline),
    );
    const page = kept(
      'GET /rooms?scope=mine&limit=200',
      all.map((r) => r.page),
    );
    const full = kept(
      'every room, page by page',
      all.map((r) => ({ ms: r.fullListMs, countsRight: r.countsRight })),
    );
    say(
      `unread counts for a person in ${o.rooms} rooms of ${o.messages} messages, ${o.connections} connections, ${durationS} s per kind, median of ${runs} runs`,
    );
    say(row('GET /auth/me (baseline)', baseline));
    say(`${row('GET /rooms?scope=mine&limit=200', page)}  req/s ÷ baseline ${fmt(page.rps / baseline.rps, 2)}`);
    say(
      `all ${o.rooms} rooms listed with their counts in ${fmt(full.ms, 0)} ms (${Math.ceil(o.rooms / 200)} pages); counts right: ${all.every((r) => r.countsRight)}`,
    );
  });
}

async function notices() {
  const o = {
    durationS,
    runs,
    people: Number(values.people ?? 10_000),
    rooms: Number(values.rooms ?? 1_000),
    perPerson: Number(values['per-person'] ?? 5),
    connected: Number(values.connected ?? 2_000),
    rate: Number(values.rate ?? 500),
  };
  await withPostgres(async (url) => {
    const all: NotifyResult[] = await notify(o, url);
    const n = kept(
      'notices',
      all.map((r) => r.notices),
    );
    const m = kept(
      'room delivery',
      all.map((r) => r.rooms),
    );
    say(
      `notify: ${o.people} people in ${o.rooms} rooms (${(o.people * o.perPerson) / o.rooms} members each), ${o.connected} connected, ${o.rate} publishes/s to random rooms, ${durationS} s, median of ${runs} runs`,
    );
    say(`${'delivery'.padEnd(34)} ${'deliveries/s'.padStart(12)} delivered  p50 ms  p99 ms p999 ms  CPU µs/delivery`);
    const line = (name: string, r: typeof n) =>
      `${name.padEnd(34)} ${fmt(r.deliveriesPerS, 0).padStart(12)} ${fmt(r.delivered * 100, 1).padStart(8)}% ${fmt(r.p50, 2).padStart(7)} ${fmt(r.p99, 2).padStart(7)} ${fmt(r.p999, 2).padStart(7)} ${fmt(r.cpuUsPerDelivery, 1).padStart(16)}`;
    say(line('notice (person stream, unsubscribed)', n));
    say(line('msg (room subscription, muted)', m));
    say(
      `a notice costs ${fmt(n.cpuUsPerDelivery / m.cpuUsPerDelivery, 2)}× a room delivery in hub CPU (unread counts for a person in 5,000 rooms: the unread scenario)`,
    );
  });
}

/** Where each scenario writes its latest results unless --json says elsewhere, and `report` reads them. */
const RESULTS = path.resolve('bench/results');

async function reportPage() {
  const out = values.out ?? path.join(RESULTS, 'report.html');
  const written = await writeReport(positionals.slice(1), RESULTS, out, Object.keys(scenarios));
  console.log(`${written.join(', ')} → ${out}`);
}

const scenarios: Record<string, () => Promise<void>> = {
  login,
  history,
  fanout,
  peers,
  cluster,
  durable,
  search: findPeople,
  unread: unreadCounts,
  notify: notices,
  idle: idleConnections,
  telemetry,
  report: reportPage,
};
const name = positionals[0] ?? '';
const scenario = scenarios[name];
if (!scenario) {
  console.error(
    `usage: npm run bench -- <${Object.keys(scenarios).join('|')}> [--runs N] [--duration S] [--connections C] [--store embedded|postgres] [--robots R] [--rate HZ] [--watchers W] [--nodes N] [--users N]`,
  );
  process.exit(2);
}
await scenario();
if (name !== 'report') {
  const file = values.json ?? path.join(RESULTS, `${name}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${file}`);
}
