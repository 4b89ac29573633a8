// Issue 16 items 6 and 8 at full size, against a hub child process on loopback: node RSS while
// stalled readers sit in a busy room, and live actors while one account subscribes to ids that do
// not exist. Bounded loops; the sizes are the unless overridden by environment.
//   npm run -s build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/ws-bounds.ts
// STALLED (300), MESSAGES (2000), SOCKETS (1500), SUBS (200), SCENARIO (stalled|unknown|both).

import { randomUUID } from 'node:crypto';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { json, rssMiB, type Server, startHub } from './lib.js';

const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const num = (name: string, def: number) => Number(process.env[name] ?? def);

async function user(hub: Server, name: string): Promise<{ id: string; token: string }> {
  const r = await json(`${hub.url}/api/v1/auth/register`, 'POST', { username: name, password: 'correct horse battery' });
  const l = await json(`${hub.url}/api/v1/auth/login`, 'POST', { username: name, password: 'correct horse battery' });
  return { id: r.user.id, token: l.accessToken };
}

function open(hub: Server, token: string, onFrame: (f: any) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${hub.url.replace(/^http/, 'ws')}/ws`, 'sb.v1.msgpack', { headers: { authorization: `Bearer ${token}` } });
    ws.on('message', (d: Buffer) => onFrame(packr.unpack(d)));
    ws.once('message', () => resolve(ws));
    ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

async function metric(hub: Server, name: string): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** Peak RSS of the hub while `work` runs, sampled every 100 ms. */
async function peakRss<T>(hub: Server, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = rssMiB(hub.pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMiB(hub.pid));
  }, 100);
  try {
    return { result: await work(), peak };
  } finally {
    clearInterval(timer);
  }
}

async function stalledReaders(): Promise<void> {
  const STALLED = num('STALLED', 300);
  const MESSAGES = num('MESSAGES', 2000);
  // The default per-user cap (32) would refuse most of one account's 300 sockets: lifted here so
  // the backpressure bound and budget are what is measured.
  const hub = await startHub('postgres', {
    SB_WS_PUBLISH_PER_SECOND: '1000000',
    SB_WS_PUBLISH_BURST: '1000000',
    SB_WS_MAX_CONNECTIONS_PER_USER: String(STALLED + 10),
    SB_WS_MAX_CONNECTIONS_PER_IP: String(STALLED + 10),
  });
  try {
    const owner = await user(hub, `owner${Date.now()}`);
    const reader = await user(hub, `reader${Date.now()}`);
    const room = (await json(`${hub.url}/api/v1/rooms`, 'POST', { kind: 'group', name: 'firehose' }, owner.token)).room.id as string;
    await json(`${hub.url}/api/v1/rooms/${room}/join`, 'POST', undefined, reader.token);
    const socks: WebSocket[] = [];
    for (let i = 0; i < STALLED; i++) {
      let subscribed!: () => void;
      const sub = new Promise<void>((r) => {
        subscribed = r;
      });
      const ws = await open(hub, reader.token, (f) => f.t === 'subscribed' && subscribed());
      ws.send(packr.pack({ t: 'sub', id: 1, room }));
      await sub;
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      socks.push(ws);
    }
    const before = rssMiB(hub.pid);
    let acked = 0;
    let wake: () => void = () => {};
    const pub = await open(hub, owner.token, (f) => {
      if (f.t === 'ack') {
        acked++;
        wake();
      }
    });
    const body = 'x'.repeat(16_000);
    const WINDOW = 16;
    const { peak } = await peakRss(hub, async () => {
      for (let i = 1; i <= MESSAGES; i++) {
        while (i - acked > WINDOW) await new Promise<void>((r) => (wake = r));
        pub.send(packr.pack({ t: 'pub', id: i, room, cid: `b-${i}`, body }));
      }
      while (acked < MESSAGES) await new Promise<void>((r) => (wake = r));
    });
    const open_ = await metric(hub, 'sb_ws_connections');
    console.log(
      JSON.stringify({
        scenario: 'stalled readers',
        stalled: STALLED,
        messages: MESSAGES,
        bodyBytes: 16_000,
        rssBeforeMiB: Math.round(before),
        rssPeakMiB: Math.round(peak),
        rssAfterMiB: Math.round(rssMiB(hub.pid)),
        openSocketsAfter: open_,
      }),
    );
    for (const ws of socks) ws.terminate();
    pub.terminate();
  } finally {
    await hub.stop();
  }
}

async function unknownSubs(): Promise<void> {
  const SOCKETS = num('SOCKETS', 1500);
  const SUBS = num('SUBS', 200);
  const base = await startHub('postgres');
  // With the default caps: how many sockets one account gets.
  try {
    const u = await user(base, `cap${Date.now()}`);
    let accepted = 0;
    let refused = 0;
    const held: WebSocket[] = [];
    for (let i = 0; i < 100; i++) {
      try {
        held.push(await open(base, u.token, () => {}));
        accepted++;
      } catch {
        refused++;
      }
    }
    console.log(JSON.stringify({ scenario: 'sockets per account, default caps', tried: 100, accepted, refused }));
    for (const ws of held) ws.terminate();
  } finally {
    await base.stop();
  }
  // Caps lifted so the 1,500 sockets × 200 subs all reach the actor layer.
  const hub = await startHub('postgres', {
    SB_WS_MAX_CONNECTIONS_PER_USER: String(SOCKETS),
    SB_WS_MAX_CONNECTIONS_PER_IP: String(SOCKETS),
    SB_WS_REQUESTS_PER_SECOND: '100000',
  });
  try {
    const u = await user(hub, `flood${Date.now()}`);
    const codes: Record<string, number> = {};
    let peakActors = 0;
    const socks: WebSocket[] = [];
    const { peak } = await peakRss(hub, async () => {
      const BATCH = 50;
      for (let b = 0; b < SOCKETS; b += BATCH) {
        await Promise.all(
          Array.from({ length: Math.min(BATCH, SOCKETS - b) }, async () => {
            let left = SUBS;
            let done!: () => void;
            const all = new Promise<void>((r) => {
              done = r;
            });
            const ws = await open(hub, u.token, (f) => {
              if (f.t !== 'error') return;
              codes[f.code] = (codes[f.code] ?? 0) + 1;
              if (--left === 0) done();
            });
            socks.push(ws);
            for (let i = 1; i <= SUBS; i++) ws.send(packr.pack({ t: 'sub', id: i, room: randomUUID() }));
            await all;
          }),
        );
        peakActors = Math.max(peakActors, await metric(hub, 'sb_actors'));
      }
    });
    console.log(
      JSON.stringify({
        scenario: 'unknown subs',
        sockets: SOCKETS,
        subsPerSocket: SUBS,
        replies: codes,
        actorsPeakSampled: peakActors,
        actorsAfter: await metric(hub, 'sb_actors'),
        rssPeakMiB: Math.round(peak),
      }),
    );
    for (const ws of socks) ws.terminate();
  } finally {
    await hub.stop();
  }
}

const scenario = process.env.SCENARIO ?? 'both';
if (scenario !== 'unknown') await stalledReaders();
if (scenario !== 'stalled') await unknownSubs();
