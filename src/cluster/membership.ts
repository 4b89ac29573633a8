// Node membership: each node puts a heartbeat in a JetStream KV bucket whose entries expire
// (bucket-level TTL: per-key TTLs are ignored by NATS 2.9), and reads the bucket's keys to know
// which nodes are alive. A node that stops heartbeating drops out within the TTL; one that shuts
// down deletes its key at once.

import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log.js';

export interface NodeInfo {
  id: string;
  url: string;
  startedAt: number;
}

export interface MembershipOptions {
  bucket: string;
  self: NodeInfo;
  /** Heartbeat interval, ms; an entry expires after 5 of them. */
  heartbeatMs: number;
  log: Logger;
}

/**
 * The bucket, replicated on three JetStream servers, or on one where NATS is not clustered (or an
 * earlier node made it so). `create` opens an existing bucket of the same configuration.
 */
export async function openBucket(kvm: Kvm, name: string, ttl: number): Promise<KV> {
  try {
    return await kvm.create(name, { ttl, history: 1, replicas: 3 });
  } catch (e) {
    // Only a NATS that is not clustered gets one replica; any other failure must not quietly put
    // the bucket on a single server.
    if (!/non-clustered|insufficient resources/i.test((e as Error).message)) throw e;
    return kvm.create(name, { ttl, history: 1, replicas: 1 });
  }
}

export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private live = new Map<string, NodeInfo>();
  private readonly leftListeners = new Set<(node: string) => void>();

  private constructor(
    private readonly kv: KV,
    private readonly o: MembershipOptions,
  ) {}

  static async join(nc: NatsConnection, o: MembershipOptions): Promise<Membership> {
    // A NATS cluster that has just started answers before JetStream has elected its leader.
    const deadline = Date.now() + 30_000;
    let kv: KV;
    for (;;) {
      try {
        kv = await openBucket(new Kvm(nc), o.bucket, 5 * o.heartbeatMs);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        o.log.info({ err: e }, 'JetStream not ready for the membership bucket; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const m = new Membership(kv, o);
    await m.beat();
    m.timer = setInterval(() => {
      m.beat().catch((e) => o.log.warn({ err: e }, 'node heartbeat failed'));
    }, o.heartbeatMs);
    m.timer.unref();
    return m;
  }

  /** The nodes alive at the last heartbeat, this one included, by id. */
  nodes(): NodeInfo[] {
    return [...this.live.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private async beat(): Promise<void> {
    await this.kv.put(this.o.self.id, JSON.stringify(this.o.self));
    const live = new Map<string, NodeInfo>();
    for await (const key of await this.kv.keys()) {
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
    for (const node of left) for (const l of this.leftListeners) l(node);
  }

  /** Whether the node heartbeated within the TTL, as of this node's last heartbeat. */
  alive(node: string): boolean {
    return node === this.o.self.id || this.live.has(node);
  }

  /** Calls `listener` with each node that drops out (stopped heartbeating, or left). */
  onLeft(listener: (node: string) => void): void {
    this.leftListeners.add(listener);
  }

  /** Leaves at once (the other nodes see it gone at their next heartbeat). */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    await this.kv.delete(this.o.self.id).catch((e) => this.o.log.warn({ err: e }, 'could not leave the membership bucket'));
  }
}
