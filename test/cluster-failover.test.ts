// Failover, with three hub processes over real NATS and PostgreSQL: one node is SIGKILLed while
// publishers on every node keep publishing. The clients it had reconnect to the surviving nodes,
// resubscribe with the last seq they saw and republish what was not acked with the same cid.
// Every acked message is then in every subscriber's stream and in PostgreSQL exactly once, at the
// seq its ack announced, and the streams are contiguous.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Api, uniqueName } from './helpers/api.js';
import { natsUrl } from './helpers/cluster.js';
import { freshDatabase } from './helpers/db.js';
import { tempDir } from './helpers/hub.js';
import { type Spawned, spawnCli } from './helpers/process.js';
import { connect, type Frame, type RawClient } from './helpers/ws.js';

const env = async (t: Test) => {
  const dir = await tempDir(t, 'sb-failover-');
  const keyFile = path.join(dir, 'jwt.pem');
  await writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return {
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: await freshDatabase(t),
    NATS_URL: natsUrl(),
    SB_CLUSTER_NAME: `f${randomBytes(6).toString('hex')}`,
    SB_JWT_KEY_FILE: keyFile,
    SB_DATA_DIR: dir,
    SB_WS_PUBLISH_PER_SECOND: '1000000',
    SB_WS_PUBLISH_BURST: '1000000',
    SB_ARGON2_MEMORY_KIB: '8192',
    SB_ARGON2_TIME_COST: '1',
    SB_REGISTER_PER_IP_PER_HOUR: '10000',
    SB_LOGIN_PER_IP_PER_MINUTE: '10000',
  };
};

interface Node {
  p: Spawned;
  url: string;
}

/** A subscriber that follows the room across nodes: on a close it resubscribes elsewhere with `since`. */
class Follower {
  seqs: number[] = [];
  client!: RawClient;
  subscribed = false;
  constructor(
    private readonly token: string,
    private readonly room: string,
  ) {}
  async attach(url: string): Promise<void> {
    const c = await connect(url, { token: this.token });
    this.client = c;
    this.subscribed = false;
    c.ws.on('message', () => {
      for (const f of c.frames.splice(0)) {
        if (f.t === 'msg') this.seqs.push(f.seq);
        else if (f.t === 'subscribed') this.subscribed = true;
        else if (f.t === 'error') throw new Error(`follower: ${JSON.stringify(f)}`);
      }
    });
    const last = this.seqs.at(-1);
    const id = c.id();
    c.send({ t: 'sub', id, room: this.room, ...(last === undefined ? {} : { since: last }) });
  }
}

/** A publisher that keeps a window of unacked publishes and, after a close, republishes them elsewhere. */
class Publisher {
  readonly acked = new Map<string, number>();
  /** Sent on the current connection, by request id. */
  private readonly unacked = new Map<number, { cid: string; body: string }>();
  /** To send once connected again. */
  private backlog: { cid: string; body: string }[] = [];
  private next = 0;
  client!: RawClient;
  constructor(
    private readonly token: string,
    private readonly room: string,
    private readonly name: string,
    private readonly total: number,
  ) {}
  async attach(url: string): Promise<void> {
    const c = await connect(url, { token: this.token });
    this.client = c;
    c.ws.on('message', () => {
      for (const f of c.frames.splice(0)) this.onFrame(f);
    });
    // Whatever was in flight on the old connection is sent again with the same cid.
    const pending = [...this.backlog, ...this.unacked.values()];
    this.backlog = [];
    this.unacked.clear();
    for (const p of pending) this.send(p.cid, p.body);
    this.fill();
  }
  get done(): boolean {
    return this.acked.size === this.total;
  }
  private onFrame(f: Frame): void {
    const p = this.unacked.get(f.id);
    if (!p) return;
    this.unacked.delete(f.id);
    if (f.t === 'ack') this.acked.set(p.cid, f.seq);
    else if (f.t === 'nack' && ['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED'].includes(f.code))
      this.send(p.cid, p.body); // retryable: again, same cid
    else throw new Error(`publisher: ${JSON.stringify(f)}`);
    this.fill();
  }
  private fill(): void {
    while (this.unacked.size < 10 && this.next < this.total) {
      const n = this.next++;
      this.send(`${this.name}-${n}`, `${this.name} #${n}`);
    }
  }
  private send(cid: string, body: string): void {
    if (this.client.closeInfo) {
      this.backlog.push({ cid, body });
      return;
    }
    const id = this.client.id();
    this.unacked.set(id, { cid, body });
    this.client.send({ t: 'pub', id, room: this.room, cid, body });
  }
}

function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = () => (cond() ? resolve() : Date.now() > deadline ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(check, 5));
    check();
  });
}

t.test('SIGKILL of a node under publishing: clients move, nothing acked is lost or doubled', async (t) => {
  const e = await env(t);
  const nodes: Node[] = [];
  for (let i = 1; i <= 3; i++) {
    const p = spawnCli(t, ['serve'], { ...e, SB_NODE_ID: `node${i}` });
    const listening = await p.waitFor((l) => l.msg === 'listening', `node${i} listening`, 30_000);
    nodes.push({ p, url: listening.url as string });
  }
  const [n1, n2, n3] = nodes as [Node, Node, Node];
  const api = new Api(n1.url);
  const people = await Promise.all([0, 1, 2].map(() => api.signUp(uniqueName('fo'))));
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'failover' }, { token: people[0]?.token })).body.room.id as string;
  for (const u of people.slice(1)) await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: u.token });

  const PER = 300;
  const followers = people.map((u) => new Follower(u.token, room));
  const publishers = people.map((u, i) => new Publisher(u.token, room, `p${i}`, PER));
  await Promise.all(followers.map((f, i) => f.attach((nodes[i] as Node).url)));
  await until(() => followers.every((f) => f.subscribed), 'subscribed');
  await Promise.all(publishers.map((p, i) => p.attach((nodes[i] as Node).url)));

  // Kill node 2 once a third of the messages are acked; its follower and publisher move to node 3.
  await until(() => publishers.reduce((n, p) => n + p.acked.size, 0) >= PER, 'a third acked');
  const killedAt = Date.now();
  n2.p.child.kill('SIGKILL');
  const moved = [followers[1] as Follower, publishers[1] as Publisher];
  await Promise.all(moved.map((c) => c.client.waitClose(10_000)));
  await Promise.all(moved.map((c) => c.attach(n3.url)));
  await until(() => (followers[1] as Follower).subscribed, 'resubscribed on node 3');
  const resumeMs = Date.now() - killedAt;
  t.comment(`clients of the killed node were publishing and subscribed on another node ${resumeMs} ms after the SIGKILL`);

  await until(() => publishers.every((p) => p.done), 'every message acked', 120_000);
  const total = 3 * PER;
  await until(() => followers.every((f) => (f.seqs.at(-1) ?? 0) >= total), 'every follower to reach the last seq', 60_000);

  const range = Array.from({ length: total }, (_, i) => i + 1);
  for (const [i, f] of followers.entries()) t.same(f.seqs, range, `follower ${i + 1} saw every seq once, in order`);
  const acked = new Map<string, number>();
  for (const p of publishers) for (const [cid, seq] of p.acked) acked.set(cid, seq);
  t.equal(acked.size, total, 'every publish was acked');
  t.same(
    [...acked.values()].sort((a, b) => a - b),
    range,
    'the acks announce seqs 1..N, each once',
  );

  const survivor = new Api(n3.url);
  const stored: { seq: number; cid: string }[] = [];
  let after = 0;
  for (;;) {
    const page = await survivor.get(`/api/v1/rooms/${room}/messages?after=${after}&limit=200`, { token: people[0]?.token });
    if (page.status !== 200) throw new Error(`history: ${page.status} ${page.text}`);
    stored.push(...page.body.messages);
    if (page.body.messages.length < 200) break;
    after = stored.at(-1)?.seq ?? after;
  }
  t.same(
    stored.map((m) => m.seq),
    range,
    'PostgreSQL holds seqs 1..N, once each',
  );
  t.ok(
    stored.every((m) => acked.get(m.cid) === m.seq),
    'each stored message has the seq its ack announced',
  );
  for (const n of [n1, n3]) n.p.child.kill('SIGTERM');
  await Promise.all([n1.p.exited, n3.p.exited]);
});
