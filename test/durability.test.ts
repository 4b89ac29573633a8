// Durable before ack, at the process level: a hub is SIGKILLed in the middle of a burst of
// publishes to several rooms, whose group commits share calls to the store (one transaction for
// several rooms: the test reads the hub's metrics to know they did); after a restart on the same
// store, every message that was acked is in its room's history, with the seq its ack gave, and each
// room's seqs are contiguous. Run on the embedded store and PostgreSQL.

import { Packr } from 'msgpackr';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { Api } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

// Timestamps arrive as 64-bit integers; read them as JS numbers (they are below 2^53).
const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const limits = { SB_WS_PUBLISH_PER_SECOND: '1000000', SB_WS_PUBLISH_BURST: '1000000', SB_LOGIN_PER_IP_PER_MINUTE: '1000' };

async function serve(t: Test, env: Record<string, string>) {
  const p = spawnCli(t, ['serve'], { PORT: '0', HOST: '127.0.0.1', ...limits, ...env });
  const listening = await p.waitFor((l) => l.msg === 'listening', 'listening', 20_000);
  return { p, api: new Api(listening.url as string), url: listening.url as string };
}

function openSocket(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, 'sb.v1.msgpack', { headers: { authorization: `Bearer ${token}` } });
    ws.once('message', () => resolve(ws)); // hello
    ws.once('error', reject);
  });
}

const ROOMS = 6;
/** Publishes per socket: enough that the kill comes in the middle. */
const BURST = 2000;

/** A counter's value in a Prometheus exposition. */
const counter = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);

async function killMidBurst(t: Test, env: Record<string, string>) {
  const first = await serve(t, env);
  const user = await first.api.signUp('writer');
  const rooms: string[] = [];
  for (let r = 0; r < ROOMS; r++)
    rooms.push((await first.api.post('/api/v1/rooms', { kind: 'group', name: `durable ${r}` }, { token: user.token })).body.room.id);
  const acked = new Map<string, { room: string; seq: number }>();
  const sent = new Map<string, string>(); // cid → room
  const sockets = await Promise.all([0, 1].map(() => openSocket(first.url, user.token)));
  const KILL_AFTER = 300;
  // What the first commits carried, read while the burst goes on (counters start again at a
  // restart); the kill waits for it.
  let metrics: string | undefined;
  let asked = false;
  const killed = new Promise<void>((resolve) => {
    const maybeKill = () => {
      if (acked.size < KILL_AFTER || metrics === undefined || first.p.child.exitCode !== null || first.p.child.signalCode !== null) return;
      first.p.child.kill('SIGKILL');
      resolve();
    };
    for (const ws of sockets) {
      ws.on('message', (data: Buffer) => {
        const f = packr.unpack(data);
        if (f.t !== 'ack') return;
        acked.set(f.cid, { room: sent.get(f.cid) as string, seq: f.seq });
        if (!asked) {
          asked = true;
          fetch(`${first.url}/metrics`)
            .then((r) => r.text())
            .then((text) => {
              metrics = text;
              maybeKill();
            });
        }
        maybeKill();
      });
      ws.on('error', () => {});
    }
  });
  sockets.forEach((ws, s) => {
    for (let i = 0; i < BURST; i++) {
      const cid = `s${s}-${i}`;
      const room = rooms[i % ROOMS] as string;
      sent.set(cid, room);
      ws.send(packr.pack({ t: 'pub', id: i + 1, room, cid, body: `burst ${s}/${i}` }));
    }
  });
  await killed;
  t.equal((await first.p.exited).signal, 'SIGKILL');
  const ackedAtKill = new Map(acked);
  t.ok(ackedAtKill.size >= KILL_AFTER, `${ackedAtKill.size} publishes acked before the kill`);
  t.ok(ackedAtKill.size < 2 * BURST, 'the kill came before every publish was acked');
  const text = metrics as string;
  const calls = counter(text, 'sb_commit_calls_total');
  const roomBatches = counter(text, 'sb_commit_call_rooms_total');
  t.ok(roomBatches > calls, `the calls to the store carried several rooms: ${roomBatches} room batches in ${calls} calls`);

  const second = await serve(t, env);
  const login = await second.api.post('/api/v1/auth/login', { username: 'writer', password: user.password });
  const stored = new Map<string, { room: string; seq: number }>();
  const twice: string[] = [];
  for (const room of rooms) {
    const messages: { seq: number; cid: string }[] = [];
    for (let after = 0; ; ) {
      const page = await second.api.get(`/api/v1/rooms/${room}/messages?after=${after}&limit=200`, { token: login.body.accessToken });
      messages.push(...page.body.messages);
      if (page.body.messages.length < 200) break;
      after = messages[messages.length - 1]!.seq;
    }
    t.same(
      messages.map((m) => m.seq),
      Array.from({ length: messages.length }, (_, i) => i + 1),
      'seqs are contiguous from 1 in each room',
    );
    for (const m of messages) {
      if (stored.has(m.cid)) twice.push(m.cid);
      stored.set(m.cid, { room, seq: m.seq });
    }
  }
  t.same(twice, [], 'no message stored twice');
  const lost = [...ackedAtKill].filter(([cid, at]) => stored.get(cid)?.room !== at.room || stored.get(cid)?.seq !== at.seq);
  t.same(lost, [], 'every acked message is stored in its room with its acked seq');
  second.p.child.kill('SIGTERM');
  t.equal((await second.p.exited).code, 0);
}

t.test('embedded store: acked messages survive SIGKILL', async (t) => {
  await killMidBurst(t, { SB_DATA_DIR: await tempDir(t) });
});

t.test('PostgreSQL: acked messages survive SIGKILL', async (t) => {
  // Two connections: one commit call at a time, so rooms' batches share calls.
  await killMidBurst(t, { SB_DATA_DIR: await tempDir(t), DATABASE_URL: await freshDatabase(t), SB_DB_POOL_SIZE: '2' });
});
