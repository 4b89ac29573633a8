// Node membership: each node puts a heartbeat in a JetStream KV bucket whose entries expire
// (bucket-level TTL: per-key TTLs are ignored by NATS 2.9), and reads the bucket's keys to know
// which nodes are alive. A node that stops heartbeating drops out within the TTL; one that shuts
// down deletes its key at once. A second, cheaper pulse on core NATS (one tiny message per node
// per second) detects a dead node faster than the TTL, and while JetStream itself is electing a
// leader: a member silent for SUSPECT_MS is treated as gone until it is heard again.

import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { JetStreamHealth } from './jetstream-health.js';

export interface NodeInfo {
  id: string;
  url: string;
  startedAt: number;
}

export interface MembershipOptions {
  bucket: string;
  /** The core NATS subject of the pulse. */
  pulseSubject: string;
  /** The pulse interval, and how long a member may be silent before it is treated as gone, ms. */
  pulseMs?: number; // default 1_000 ms
  suspectMs?: number; // default 5_000 ms
  self: NodeInfo;
  /** Heartbeat interval, ms; an entry expires after 5 of them. */
  heartbeatMs: number;
  log: Logger;
}

/**
 * The bucket, replicated on three JetStream servers, or on one where NATS is not clustered (or an
 * earlier node made it so). `create` opens an existing bucket of the same configuration. A NATS
 * cluster that has just started answers before JetStream has elected its leader: the caller
 * retries (the node keeps joining until JetStream is ready; see `untilJoined`).
 */
export async function openBucket(nc: NatsConnection, name: string, ttl: number): Promise<KV> {
  const kvm = new Kvm(nc);
  try {
    return await kvm.create(name, { ttl, history: 1, replicas: 3 });
  } catch (e) {
    // Only a NATS that is not clustered gets one replica; any other failure must not quietly put
    // the bucket on a single server.
    if (!/non-clustered|insufficient resources/i.test((e as Error).message)) throw e;
    return await kvm.create(name, { ttl, history: 1, replicas: 1 });
  }
}

const PULSE_MS = 1_000;
const SUSPECT_MS = 5_000;

export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private pulseTimer: NodeJS.Timeout | undefined;
  private pulses: Subscription | undefined;
  private live = new Map<string, NodeInfo>();
  /** When each other node was last heard on the pulse subject. */
  private readonly heard = new Map<string, number>();
  /** Members silent for suspectMs: gone until heard again. */
  private readonly silent = new Set<string>();
  private readonly leftListeners = new Set<(node: string) => void>();
  /** Whether the last heartbeat (write and read of the bucket) succeeded: the one JetStream health state. */
  private readonly health: JetStreamHealth;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly o: MembershipOptions,
  ) {
    this.health = new JetStreamHealth(o.heartbeatMs, o.log);
  }

  static async join(nc: NatsConnection, o: MembershipOptions): Promise<Membership> {
    const kv = await openBucket(nc, o.bucket, 5 * o.heartbeatMs);
    const m = new Membership(nc, kv, await jetstreamManager(nc, { checkAPI: false }), o);
    await m.beat();
    m.timer = setInterval(() => m.health.run(() => m.beat()), o.heartbeatMs);
    m.timer.unref();
    m.startPulse();
    return m;
  }

  private startPulse(): void {
    this.pulses = this.nc.subscribe(this.o.pulseSubject, {
      callback: (err, msg) => {
        if (err) return this.o.log.warn({ err }, 'membership pulse subscription failed');
        const node = msg.string();
        this.heard.set(node, Date.now());
        if (this.silent.delete(node)) this.o.log.info({ node }, 'a silent node is heard again');
      },
    });
    const pulse = () => {
      try {
        this.nc.publish(this.o.pulseSubject, this.o.self.id);
      } catch {
        // Disconnected: the other nodes will hear us after the reconnect.
      }
      const now = Date.now();
      for (const [node, at] of this.heard) {
        if (now - at < (this.o.suspectMs ?? SUSPECT_MS) || this.silent.has(node) || !this.live.has(node)) continue;
        this.silent.add(node);
        this.o.log.warn({ node, silentMs: now - at }, 'a node fell silent; treating it as gone');
        this.left(node);
      }
    };
    pulse();
    this.pulseTimer = setInterval(pulse, this.o.pulseMs ?? PULSE_MS);
    this.pulseTimer.unref();
  }

  private left(node: string): void {
    for (const l of this.leftListeners) l(node);
  }

  /** The nodes alive, this one included, by id. */
  nodes(): NodeInfo[] {
    return [...this.live.values()].filter((n) => !this.silent.has(n.id)).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * Whether JetStream works for this node: its last heartbeat (a write and a read of the bucket)
   * succeeded and is younger than two intervals. /readyz, `sb_jetstream_up` and the log all read
   * this one state, so they never disagree.
   */
  get jetstreamUp(): boolean {
    return this.health.up;
  }

  /** Why JetStream is failing for this node, while it is. */
  get jetstreamFailure(): string | undefined {
    return this.health.failure;
  }

  private async beat(): Promise<void> {
    await this.kv.put(this.o.self.id, JSON.stringify(this.o.self));
    const live = new Map<string, NodeInfo>();
    for (const key of await this.keys()) {
      const e = await this.kv.get(key);
      if (e?.operation !== 'PUT') continue;
      try {
        live.set(key, e.json<NodeInfo>());
      } catch {
        this.o.log.warn({ key }, 'unreadable membership entry');
      }
    }
    const joined = [...live.keys()].filter((id) => !this.live.has(id));
    const left = [...this.live.keys()].filter((id) => !live.has(id));
    if (joined.length || left.length) this.o.log.info({ joined, left, nodes: live.size }, 'cluster membership changed');
    this.live = live;
    for (const node of left) {
      this.heard.delete(node);
      // Already reported when it fell silent.
      if (!this.silent.delete(node)) this.left(node);
    }
  }

  /**
   * The bucket's keys, from the stream's per-subject counts (answered by the stream leader).
   * Not `kv.keys()`: that creates a consumer at every call, and while a NATS server is down the
   * consumer may be placed on it, so the call timed out every few heartbeats.
   */
  private async keys(): Promise<string[]> {
    const prefix = `$KV.${this.o.bucket}.`;
    const info = await this.jsm.streams.info(`KV_${this.o.bucket}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
  }

  /** Whether the node heartbeated within the TTL, as of this node's last heartbeat. */
  alive(node: string): boolean {
    if (node === this.o.self.id) return true;
    // Heard on the pulse lately (a node that just joined, before the next heartbeat read), or a
    // member not silent.
    const at = this.heard.get(node);
    if (at !== undefined && Date.now() - at < (this.o.suspectMs ?? SUSPECT_MS)) return true;
    return this.live.has(node) && !this.silent.has(node);
  }

  /** Calls `listener` with each node that drops out (stopped heartbeating, or left). */
  onLeft(listener: (node: string) => void): void {
    this.leftListeners.add(listener);
  }

  /** Leaves at once (the other nodes see it gone at their next heartbeat). */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.pulseTimer);
    this.pulses?.unsubscribe();
    await this.kv.delete(this.o.self.id).catch((e) => this.o.log.warn({ err: e }, 'could not leave the membership bucket'));
  }
}
