// Failover, with three hub processes over real NATS and PostgreSQL: one node is SIGKILLed while
// publishers on every node keep publishing. The clients it had reconnect to the surviving nodes,
// resubscribe with the last seq they saw and republish what was not acked with the same cid.
// Every acked message is then in every subscriber's stream and in PostgreSQL exactly once, at the
// seq its ack announced, and the streams are contiguous.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Api, storedMessages, uniqueName } from './helpers/api.js';
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
  /** Presence frames received, on any connection. */
  presence: Frame[] = [];
  client!: RawClient;
  subscribed = false;
  /** The last frames received, for a failure message. */
  private readonly recent: Frame[] = [];
  constructor(
    private readonly token: string,
    private readonly room: string,
  ) {}
  /** The request id of the last `sub`. */
  private subId = 0;
  /** Where the follower stands: subscribed, or what its socket saw. */
  state(): string {
    if (this.subscribed) return 'subscribed';
    const c = this.client;
    const socket = c.closeInfo ? `closed ${c.closeInfo.code}${c.clientError ? ` after a client error: ${c.clientError}` : ''}` : 'open';
    return `no reply to sub #${this.subId}, socket ${socket}, last frames ${JSON.stringify(this.recent)}`;
  }
  async attach(url: string): Promise<void> {
    const c = await connect(url, { token: this.token });
    this.client = c;
    this.subscribed = false;
    c.ws.on('message', () => {
      for (const f of c.frames.splice(0)) {
        this.recent.push(f);
        if (this.recent.length > 3) this.recent.shift();
        if (f.t === 'msg') this.seqs.push(f.seq);
        else if (f.t === 'presence') this.presence.push(f);
        else if (f.t === 'subscribed') this.subscribed = true;
        else if (f.t === 'error') throw new Error(`follower: ${JSON.stringify(f)}`);
      }
    });
    const last = this.seqs.at(-1);
    const id = c.id();
    this.subId = id;
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

async function startNode(t: Test, e: Record<string, string>, i: number): Promise<Node> {
  const p = spawnCli(t, ['serve'], { ...e, SB_NODE_ID: `node${i}` });
  const listening = await p.waitFor((l) => l.msg === 'listening', `node${i} listening`, 30_000);
  return { p, url: listening.url as string };
}

/** Three nodes, three members of one room, each with a follower and a publisher on "their" node. */
async function scenario(t: Test, per: number) {
  const e = await env(t);
  const nodes: Node[] = [];
  for (let i = 1; i <= 3; i++) nodes.push(await startNode(t, e, i));
  const api = new Api((nodes[0] as Node).url);
  const people = await Promise.all([0, 1, 2, 3].map(() => api.signUp(uniqueName('fo'))));
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'failover' }, { token: people[0]?.token })).body.room.id as string;
  for (const u of people.slice(1)) await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: u.token });
  // The joins took the first seqs: the messages follow them.
  const base = (await api.get(`/api/v1/rooms/${room}`, { token: people[0]?.token })).body.room.lastSeq as number;
  // A fourth member only watches, from node 2, and never reconnects: who is present after a node dies.
  const lurker = people.pop() as (typeof people)[0];
  const followers = people.map((u) => new Follower(u.token, room));
  const publishers = people.map((u, i) => new Publisher(u.token, room, `p${i}`, per));
  await Promise.all(followers.map((f, i) => f.attach((nodes[i] as Node).url)));
  await until(() => followers.every((f) => f.subscribed), 'subscribed').catch((e: Error) => {
    // Which one, and what its socket saw (a rare first request that is never answered is not understood yet).
    throw new Error(`${e.message}: ${followers.map((f, i) => `follower ${i + 1}: ${f.state()}`).join('; ')}`);
  });
  await Promise.all(publishers.map((p, i) => p.attach((nodes[i] as Node).url)));
  const acked = () => publishers.reduce((n, p) => n + p.acked.size, 0);
  const lurking = new Follower(lurker.token, room);
  await lurking.attach((nodes[1] as Node).url);
  await until(() => lurking.subscribed, 'the lurker subscribed');
  await until(
    () => followers[0]?.presence.some((f) => f.op !== 'leave' && f.users.some((u: { id: string }) => u.id === lurker.id)) ?? false,
    'node 1 to see the lurker on node 2',
    15_000,
  );
  return { e, nodes, people, room, base, followers, publishers, acked, lurker };
}

/** Every publish acked once at the N seqs after the joins, every follower saw them in order, PostgreSQL holds each at its acked seq. */
async function verify(t: Test, s: Awaited<ReturnType<typeof scenario>>, total: number, via: Node): Promise<void> {
  await until(() => s.publishers.every((p) => p.done), 'every message acked', 120_000);
  await until(() => s.followers.every((f) => (f.seqs.at(-1) ?? 0) >= s.base + total), 'every follower to reach the last seq', 60_000);
  const range = Array.from({ length: total }, (_, i) => s.base + i + 1);
  for (const [i, f] of s.followers.entries()) t.same(f.seqs, range, `follower ${i + 1} saw every seq once, in order`);
  const acked = new Map<string, number>();
  for (const p of s.publishers) for (const [cid, seq] of p.acked) acked.set(cid, seq);
  t.equal(acked.size, total, 'every publish was acked');
  t.same(
    [...acked.values()].sort((a, b) => a - b),
    range,
    'the acks announce seqs 1..N, each once',
  );
  const stored = (await storedMessages(new Api(via.url), s.room, s.people[0]?.token as string)).filter((m) => m.seq > s.base);
  t.same(
    stored.map((m) => m.seq),
    range,
    'PostgreSQL holds seqs 1..N, once each',
  );
  t.ok(
    stored.every((m) => acked.get(m.cid) === m.seq),
    'each stored message has the seq its ack announced',
  );
}

async function stopAll(nodes: Node[]): Promise<void> {
  for (const n of nodes) if (n.p.child.exitCode === null && n.p.child.signalCode === null) n.p.child.kill('SIGTERM');
  await Promise.all(nodes.map((n) => n.p.exited));
}

t.test('SIGKILL of a node under publishing: clients move, nothing acked is lost or doubled', async (t) => {
  const PER = 300;
  const s = await scenario(t, PER);
  const [, n2, n3] = s.nodes as [Node, Node, Node];
  // Kill node 2 once a third of the messages are acked; its follower and publisher move to node 3.
  await until(() => s.acked() >= PER, 'a third acked');
  const killedAt = Date.now();
  n2.p.child.kill('SIGKILL');
  const moved = [s.followers[1] as Follower, s.publishers[1] as Publisher];
  await Promise.all(moved.map((c) => c.client.waitClose(10_000)));
  await Promise.all(moved.map((c) => c.attach(n3.url)));
  await until(() => (s.followers[1] as Follower).subscribed, 'resubscribed on node 3');
  t.comment(`clients of the killed node were publishing and subscribed on another node ${Date.now() - killedAt} ms after the SIGKILL`);
  await verify(t, s, 3 * PER, n3);
  // The killed node never said goodbye: its members' presence lapses on the others.
  await until(
    () => s.followers[0]?.presence.some((f) => f.op === 'leave' && f.users.some((u: { id: string }) => u.id === s.lurker.id)) ?? false,
    'node 1 to see the lurker leave',
    30_000,
  );
  t.comment(`the killed node's members were shown gone ${Date.now() - killedAt} ms after the SIGKILL`);
  await stopAll(s.nodes);
});

t.test('rolling restart of every node under publishing (SIGTERM, then start again)', async (t) => {
  const PER = 300;
  const s = await scenario(t, PER);
  // Where each client is: moved to the next node whenever its own goes down.
  const home = [0, 1, 2];
  for (let i = 0; i < 3; i++) {
    await until(() => s.acked() >= ((i + 1) * 3 * PER) / 4, `${i + 1}/4 acked`);
    const node = s.nodes[i] as Node;
    node.p.child.kill('SIGTERM');
    const leaving = home.flatMap((h, k) => (h === i ? [k] : []));
    const target = (i + 1) % 3;
    const closes = await Promise.all(leaving.flatMap((k) => [s.followers[k] as Follower, s.publishers[k] as Publisher]).map((c) => c.client.waitClose(10_000)));
    t.ok(
      closes.every((c) => c.code === 4000),
      `node${i + 1}'s clients were told to reconnect (4000): ${closes.map((c) => c.code)}`,
    );
    for (const k of leaving) {
      await (s.followers[k] as Follower).attach((s.nodes[target] as Node).url);
      await (s.publishers[k] as Publisher).attach((s.nodes[target] as Node).url);
      home[k] = target;
    }
    t.same(await node.p.exited, { code: 0, signal: null }, `node${i + 1} exited cleanly`);
    s.nodes[i] = await startNode(t, s.e, i + 1);
  }
  await verify(t, s, 3 * PER, s.nodes[0] as Node);
  await stopAll(s.nodes);
});
