// Durable before ack, at the process level: a hub is SIGKILLed in the middle of a burst of
// publishes; after a restart on the same store, every message that was acked is in the history,
// with the seq its ack gave, and the seqs are contiguous. Run on the embedded store and PostgreSQL.

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

async function killMidBurst(t: Test, env: Record<string, string>) {
  const first = await serve(t, env);
  const user = await first.api.signUp('writer');
  const room = (await first.api.post('/api/v1/rooms', { kind: 'group', name: 'durable' }, { token: user.token })).body.room.id as string;
  const acked = new Map<string, number>();
  const sockets = await Promise.all([0, 1].map(() => openSocket(first.url, user.token)));
  const KILL_AFTER = 150;
  const killed = new Promise<void>((resolve) => {
    for (const ws of sockets) {
      ws.on('message', (data: Buffer) => {
        const f = packr.unpack(data);
        if (f.t !== 'ack') return;
        acked.set(f.cid, f.seq);
        if (acked.size === KILL_AFTER) {
          first.p.child.kill('SIGKILL');
          resolve();
        }
      });
      ws.on('error', () => {});
    }
  });
  sockets.forEach((ws, s) => {
    for (let i = 0; i < 400; i++) ws.send(packr.pack({ t: 'pub', id: i + 1, room, cid: `s${s}-${i}`, body: `burst ${s}/${i}` }));
  });
  await killed;
  t.equal((await first.p.exited).signal, 'SIGKILL');
  const ackedAtKill = new Map(acked);
  t.ok(ackedAtKill.size >= KILL_AFTER, `${ackedAtKill.size} publishes acked before the kill`);

  const second = await serve(t, env);
  const login = await second.api.post('/api/v1/auth/login', { username: 'writer', password: user.password });
  const messages: { seq: number; cid: string }[] = [];
  for (let after = 0; ; ) {
    const page = await second.api.get(`/api/v1/rooms/${room}/messages?after=${after}&limit=200`, { token: login.body.accessToken });
    messages.push(...page.body.messages);
    if (page.body.messages.length < 200) break;
    after = messages[messages.length - 1]!.seq;
  }
  const stored = new Map(messages.map((m) => [m.cid, m.seq]));
  const lost = [...ackedAtKill].filter(([cid, seq]) => stored.get(cid) !== seq);
  t.same(lost, [], 'every acked message is stored with its acked seq');
  t.same(
    messages.map((m) => m.seq),
    Array.from({ length: messages.length }, (_, i) => i + 1),
    'seqs are contiguous from 1',
  );
  t.equal(new Set(messages.map((m) => m.cid)).size, messages.length, 'no message stored twice');
  second.p.child.kill('SIGTERM');
  t.equal((await second.p.exited).code, 0);
}

t.test('embedded store: acked messages survive SIGKILL', async (t) => {
  await killMidBurst(t, { SB_DATA_DIR: await tempDir(t) });
});

t.test('PostgreSQL: acked messages survive SIGKILL', async (t) => {
  await killMidBurst(t, { SB_DATA_DIR: await tempDir(t), DATABASE_URL: await freshDatabase(t) });
});
