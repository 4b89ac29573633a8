// Robots across the nodes of a cluster. A robot's home is the node that holds its link (or, while
// it is offline, its control lease); the JetStream KV bucket `sb_<cluster>_robots` records it,
// and every node watches the bucket, so listings know who is online anywhere and each node knows
// where to send a robot's requests. The home takes them on `sb.<cluster>.robot.<id>.req` (core
// NATS request/reply: no responders means nobody is home) and publishes the robot's events, in
// order, on `sb.<cluster>.robot.<id>.ev` to the nodes that follow it. An entry naming a node that
// left the membership is ignored, and its followers are told the node was lost.

import type { KV } from '@nats-io/kv';
import { type NatsConnection, RequestError, type Subscription, TimeoutError } from '@nats-io/transport-node';
import { type ErrorCode, httpStatus, NoAnswerError, NobodyHomeError, SbError } from '../errors.js';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';
import type { LeaseInfo, ServerFrame } from '../protocol/frames.js';
import { openBucket } from './membership.js';
import { type ClusterNames, publishPlain, subscribePlain } from './nats.js';
import type { FollowEvent, RemoteRequest, RemoteServer, ReplyTo, RobotCluster, RobotEvent } from './robots.js';

interface Entry {
  node: string;
  online: boolean;
}

/** How long a claim waits to learn whether the node an entry names still serves the robot. */
const PROBE_MS = 1_000;

type EventWire = [node: string, epoch: string, seq: number, frame: ServerFrame, toNode: string | null, toConn: string | null, lease: [LeaseInfo | null] | null];
/** An answer, an error, or: this node is not the robot's home (any more). */
type ReplyWire = [0, unknown] | [1, string, string, Record<string, unknown> | null] | [2];

interface Served {
  sub: Subscription;
  moved: (node: string) => void;
  /** The revision of this node's last write of the entry. */
  revision: number;
}

type FollowListener = (e: FollowEvent) => void;

export interface RobotClusterOptions {
  nodeId: string;
  names: ClusterNames;
  /** Whether a node is a live member of the cluster. */
  alive(node: string): boolean;
  /** Another node changed a robot's grants, certificates or existence. */
  changed(robotId: string, what: RobotChange): void;
  log: Logger;
}

export type RobotChange = 'access' | 'certificates' | 'deleted';

export class NatsRobotCluster implements RobotCluster {
  readonly nodeId: string;
  private readonly entries = new Map<string, Entry & { revision: number }>();
  private readonly served = new Map<string, Served>();
  private readonly followers = new Map<string, { sub: Subscription; listener: FollowListener }>();
  /** Writes of each robot's entry, one after another. */
  private readonly writes = new Map<string, Promise<unknown>>();
  private stopWatch: (() => void) | undefined;
  private readonly changes: Subscription;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly o: RobotClusterOptions,
  ) {
    this.nodeId = o.nodeId;
    this.changes = subscribePlain<[string, RobotChange]>(nc, o.names.robotChanges, o.log, 'robot change', {}, ([robotId, what]) => o.changed(robotId, what));
  }

  /** Tells the other nodes that a robot's grants, certificates or existence changed. */
  announceChange(robotId: string, what: RobotChange): void {
    publishPlain(this.nc, this.o.names.robotChanges, [robotId, what], this.o.log, 'a robot change', { robot: robotId });
  }

  static async open(nc: NatsConnection, o: RobotClusterOptions): Promise<NatsRobotCluster> {
    const kv = await openBucket(nc, o.names.robotsBucket, 0);
    const c = new NatsRobotCluster(nc, kv, o);
    try {
      await c.watch();
    } catch (e) {
      // JetStream not ready yet: the caller tries again, with a new instance.
      c.changes.unsubscribe();
      c.stopWatch?.();
      throw e;
    }
    // Entries a previous run of this node left (it crashed, and restarts under the same id) name
    // robots it does not serve: without this they would look online here for good.
    const stale = [...c.entries].filter(([, e]) => e.node === o.nodeId);
    await Promise.all(stale.map(([robotId, e]) => c.write(robotId, () => kv.delete(robotId, { previousSeq: e.revision }).catch(() => undefined))));
    return c;
  }

  /** Follows the bucket: its current entries first, then every change. Resolves once the current ones are in. */
  private async watch(): Promise<void> {
    const iter = await this.kv.watch();
    this.stopWatch = () => iter.stop();
    let caughtUp!: () => void;
    const ready = new Promise<void>((r) => {
      caughtUp = r;
    });
    // The current entries come first; the last of them has delta 0. An empty bucket sends none.
    if ((await this.kv.status()).values === 0) caughtUp();
    // Should the bucket have emptied between the two reads, start without waiting for ever.
    setTimeout(caughtUp, 5_000).unref();
    (async () => {
      for await (const e of iter) {
        if (e.delta === 0) caughtUp();
        if (e.operation !== 'PUT') {
          this.entries.delete(e.key);
          continue;
        }
        let entry: Entry;
        try {
          entry = e.json<Entry>();
        } catch {
          this.o.log.warn({ robot: e.key }, 'unreadable robot directory entry');
          continue;
        }
        this.entries.set(e.key, { ...entry, revision: e.revision });
        // Another node wrote after this one's own write (not while this one's claim is in flight:
        // the claim checks when its write is done).
        const served = this.served.get(e.key);
        if (served && served.revision > 0 && entry.node !== this.nodeId && e.revision > served.revision) served.moved(entry.node);
      }
    })().catch((err) => this.o.log.error({ err }, 'robot directory watch failed'));
    await ready;
  }

  home(robotId: string): string | undefined {
    const e = this.entries.get(robotId);
    // This node's own entry is only true while it serves the robot: otherwise it is a leftover
    // (released, or written by a previous run) and nobody is home.
    if (e?.node === this.nodeId && !this.served.has(robotId)) return undefined;
    return e && this.o.alive(e.node) ? e.node : undefined;
  }

  /** Online at a live node. */
  isOnline(robotId: string): boolean {
    const e = this.entries.get(robotId);
    return e?.online === true && this.o.alive(e.node);
  }

  async claim(robotId: string, o: { online: boolean; force: boolean; serve: RemoteServer; moved: (node: string) => void }): Promise<boolean> {
    const value = JSON.stringify({ node: this.nodeId, online: o.online } satisfies Entry);
    let current = this.served.has(robotId) || o.force ? undefined : await this.kv.get(robotId);
    if (current?.operation === 'PUT' && (current.json() as Entry).node !== this.nodeId) {
      // Another node's entry: taken over only if nobody serves the robot there (a node this one
      // has not heard of yet may be alive; one that left may have left its entry behind).
      try {
        await this.request(robotId, { op: 'sync' }, PROBE_MS);
        return false;
      } catch (e) {
        if (!(e instanceof NobodyHomeError)) return false;
      }
    }
    if (current && current.operation !== 'PUT') current = undefined;
    // Subscribed before the entry is written: whoever reads the entry finds this node answering.
    const served = this.served.get(robotId) ?? this.serve(robotId, o.serve);
    served.moved = o.moved;
    const revision = await this.write(robotId, () =>
      o.force || served.revision > 0
        ? this.kv.put(robotId, value)
        : current
          ? this.kv.update(robotId, value, current.revision).catch(() => undefined)
          : this.kv.create(robotId, value).catch(() => undefined),
    );
    if (revision === undefined) {
      if (served.revision === 0) this.unserve(robotId);
      return false;
    }
    served.revision = revision;
    const seen = this.entries.get(robotId);
    if (seen && seen.node !== this.nodeId && seen.revision > revision) served.moved(seen.node);
    return true;
  }

  /** Takes the robot's requests; `revision` stays 0 until this node's entry is written. */
  private serve(robotId: string, serve: RemoteServer): Served {
    const sub = subscribePlain<RemoteRequest>(this.nc, this.o.names.robotRequests(robotId), this.o.log, 'robot request', { robot: robotId }, (req, msg) => {
      const arrivedAt = Date.now();
      const respond = (wire: ReplyWire) => {
        try {
          msg.respond(packPlain(wire));
        } catch (e) {
          this.o.log.warn({ err: e, robot: robotId }, 'could not answer a robot request (NATS closed?)');
        }
      };
      serve(req, arrivedAt).then(
        (value) => respond([0, value ?? null]),
        (e: unknown) => {
          if (e instanceof NobodyHomeError) return respond([2]);
          const sb = e instanceof SbError ? e : new SbError('UNAVAILABLE', "the robot's node could not take the request");
          if (!(e instanceof SbError)) this.o.log.warn({ err: e, robot: robotId, op: req.op }, 'robot request failed');
          respond([1, sb.code, sb.message, (sb.details as Record<string, unknown> | undefined) ?? null]);
        },
      );
    });
    const served: Served = { sub, moved: () => {}, revision: 0 };
    this.served.set(robotId, served);
    return served;
  }

  private unserve(robotId: string): Served | undefined {
    const served = this.served.get(robotId);
    if (!served) return undefined;
    this.served.delete(robotId);
    served.sub.unsubscribe();
    return served;
  }

  setOnline(robotId: string, online: boolean): void {
    const served = this.served.get(robotId);
    if (!served) return;
    const value = JSON.stringify({ node: this.nodeId, online } satisfies Entry);
    // Only over this node's own entry: if another node wrote since, the robot is theirs. Any other
    // failure (JetStream electing a leader) is logged and leaves this node home.
    this.write(robotId, async () => {
      try {
        return await this.kv.update(robotId, value, served.revision);
      } catch (e) {
        if (/wrong last sequence/i.test((e as Error).message)) return 'conflict' as const;
        throw e;
      }
    }).then((rev) => {
      if (rev === 'conflict') {
        if (this.served.get(robotId) === served) served.moved(this.entries.get(robotId)?.node ?? 'another node');
      } else if (rev !== undefined) {
        served.revision = rev;
      }
    });
  }

  release(robotId: string): void {
    const served = this.unserve(robotId);
    // Only our own entry: if another node has written since, it is theirs.
    if (served && served.revision > 0) this.write(robotId, () => this.kv.delete(robotId, { previousSeq: served.revision }).catch(() => undefined));
  }

  private write<T>(robotId: string, fn: () => Promise<T>): Promise<T | undefined> {
    const next = (this.writes.get(robotId) ?? Promise.resolve()).then(fn).catch((e: unknown) => {
      this.o.log.warn({ err: e, robot: robotId }, 'robot directory write failed');
      return undefined;
    });
    this.writes.set(robotId, next);
    next.finally(() => {
      if (this.writes.get(robotId) === next) this.writes.delete(robotId);
    });
    return next;
  }

  emit(robotId: string, e: Omit<RobotEvent, 'kind' | 'node'>): void {
    const wire: EventWire = [this.nodeId, e.epoch, e.seq, e.frame, e.to?.node ?? null, e.to?.conn ?? null, e.lease === undefined ? null : [e.lease]];
    publishPlain(this.nc, this.o.names.robotEvents(robotId), wire, this.o.log, 'a robot event', { robot: robotId });
  }

  follow(robotId: string, listener: FollowListener): () => void {
    this.followers.get(robotId)?.sub.unsubscribe();
    const sub = subscribePlain<EventWire>(this.nc, this.o.names.robotEvents(robotId), this.o.log, 'robot event', { robot: robotId }, (w) => {
      const [node, epoch, seq, frame, toNode, toConn, lease] = w;
      listener({
        kind: 'event',
        node,
        epoch,
        seq,
        frame,
        ...(toNode && toConn ? { to: { node: toNode, conn: toConn } } : {}),
        ...(lease ? { lease: lease[0] } : {}),
      });
    });
    const f = { sub, listener };
    this.followers.set(robotId, f);
    return () => {
      sub.unsubscribe();
      if (this.followers.get(robotId) === f) this.followers.delete(robotId);
    };
  }

  /** A node left the cluster: whoever follows a robot there hears of it. */
  nodeLeft(node: string): void {
    for (const f of this.followers.values()) f.listener({ kind: 'lost', node });
  }

  /** This node's NATS connection came back: events may have been missed meanwhile. */
  reconnected(): void {
    for (const f of this.followers.values()) f.listener({ kind: 'reconnected' });
  }

  async request<R extends RemoteRequest>(robotId: string, req: R, timeoutMs: number): Promise<ReplyTo<R>> {
    let reply: ReplyWire;
    try {
      const msg = await this.nc.request(this.o.names.robotRequests(robotId), packPlain(req), { timeout: Math.max(1, timeoutMs) });
      reply = unpackPlain(msg.data) as ReplyWire;
    } catch (e) {
      if (e instanceof RequestError && e.isNoResponders()) throw new NobodyHomeError();
      if (e instanceof TimeoutError || (e instanceof RequestError && e.cause instanceof TimeoutError)) throw new NoAnswerError();
      throw new SbError('UNAVAILABLE', `the robot's node cannot be reached (${(e as Error).message})`);
    }
    // Decoded from the wire: the home answered this op (nodes of one cluster run one version).
    if (reply[0] === 0) return reply[1] as ReplyTo<R>;
    if (reply[0] === 2) throw new NobodyHomeError();
    const code = (Object.hasOwn(httpStatus, reply[1]) ? reply[1] : 'UNAVAILABLE') as ErrorCode;
    throw new SbError(code, reply[2], reply[3] ?? undefined);
  }

  async close(): Promise<void> {
    this.stopWatch?.();
    this.changes.unsubscribe();
    for (const id of [...this.served.keys()]) this.release(id);
    for (const f of this.followers.values()) f.sub.unsubscribe();
    this.followers.clear();
    await Promise.all(this.writes.values());
  }
}
