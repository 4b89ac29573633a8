// A robot actor on a node of its own, under a fake clock, for unit tests of the home and the
// follower: the store, the fan-out, the connections and the robot cluster port are scripted, so a
// test plays the other nodes (answers, silence, lateness, a node lost) and reads what each side got.

import { pino } from 'pino';
import type { Connection, RobotConnection } from '../../src/actors/ports.js';
import { RobotActor, type RobotMsg, type RobotReplies, type RobotReply } from '../../src/actors/robot.js';
import { ActorSystem } from '../../src/actors/runtime.js';
import type { FollowEvent, RemoteRequest, RemoteServer, ReplyTo, RobotCluster, RobotEvent, RobotTimings } from '../../src/cluster/robots.js';
import type { ServerFrame, UserRef } from '../../src/protocol/frames.js';
import type { HubFrame } from '../../src/protocol/robot.js';
import type { Store } from '../../src/store/store.js';
import { FakeClock } from './fake-clock.js';

export const OWNER: UserRef = { id: 'owner', username: 'olive' };
export const ROBOT = '00000000-0000-4000-8000-000000000001';

/** One event-loop turn: the actor's work here is all microtasks, so it settles fully. */
export const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Asked {
  req: RemoteRequest;
  timeoutMs: number;
  resolve(value: unknown): void;
  reject(e: unknown): void;
}

/** The robot cluster as one node sees it; the test is every other node. */
export class ScriptedCluster implements RobotCluster {
  /** The home per the directory (this node's id once it claimed). */
  homeNode: string | undefined;
  served: { serve: RemoteServer; moved: (node: string) => void } | undefined;
  readonly emitted: Omit<RobotEvent, 'kind' | 'node'>[] = [];
  readonly asked: Asked[] = [];
  private listener: ((e: FollowEvent) => void) | undefined;
  following = false;

  constructor(readonly nodeId: string) {}

  home(): string | undefined {
    return this.homeNode;
  }
  async claim(_robotId: string, o: { online: boolean; force: boolean; serve: RemoteServer; moved: (node: string) => void }): Promise<boolean> {
    this.homeNode = this.nodeId;
    this.served = { serve: o.serve, moved: o.moved };
    return true;
  }
  setOnline(): void {}
  release(): void {
    if (this.homeNode === this.nodeId) this.homeNode = undefined;
    this.served = undefined;
  }
  emit(_robotId: string, event: Omit<RobotEvent, 'kind' | 'node'>): void {
    this.emitted.push(event);
  }
  follow(_robotId: string, listener: (e: FollowEvent) => void): () => void {
    this.listener = listener;
    this.following = true;
    return () => {
      this.following = false;
    };
  }
  request<R extends RemoteRequest>(_robotId: string, req: R, timeoutMs: number): Promise<ReplyTo<R>> {
    return new Promise((resolve, reject) => this.asked.push({ req, timeoutMs, resolve: resolve as (v: unknown) => void, reject }));
  }

  /** The home (the test) sends an event to this node. */
  hear(e: FollowEvent): void {
    if (!this.listener) throw new Error('this node does not follow the robot');
    this.listener(e);
  }

  /** The next request this node sent, of this op. */
  async next(op: RemoteRequest['op']): Promise<Asked> {
    for (let i = 0; i < 50; i++) {
      const found = this.asked.findIndex((a) => a.req.op === op);
      if (found >= 0) return this.asked.splice(found, 1)[0] as Asked;
      await flush();
    }
    throw new Error(`no ${op} request was sent`);
  }
}

/** A client connection that records what it is sent. */
export class FakeConn implements Connection {
  readonly frames: ServerFrame[] = [];
  readonly topics = new Set<string>();
  closed = false;
  constructor(
    readonly id: string,
    readonly user: UserRef,
  ) {}
  send(frame: ServerFrame): void {
    if (!this.closed) this.frames.push(frame);
  }
  writable(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(topic: string): void {
    this.topics.add(topic);
  }
  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }
  close(): void {
    this.closed = true;
  }
  of<T extends ServerFrame['t']>(t: T): Extract<ServerFrame, { t: T }>[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { t: T }> => f.t === t);
  }
}

/** A robot's link that records what the hub sends it. */
export class FakeLink implements RobotConnection {
  readonly sent: HubFrame[] = [];
  closed = false;
  closedWith: string | undefined;
  readonly fingerprint = 'ab';
  constructor(
    readonly id: string,
    readonly robotId = ROBOT,
  ) {}
  send(frame: HubFrame): boolean {
    if (this.closed) return false;
    this.sent.push(frame);
    return true;
  }
  close(code: string): void {
    this.closed = true;
    this.closedWith = code;
  }
}

/** A node with one robot actor; `conns` watch through the topic fan-out, which delivers to them directly. */
export function node(nodeId: string, timings: Partial<RobotTimings> = {}) {
  const clock = new FakeClock();
  clock.t = 1_000_000;
  const cluster = new ScriptedCluster(nodeId);
  const conns = new Map<string, FakeConn>();
  const audit: { id: string; command: string; stages: string[] }[] = [];
  const store = {
    robots: {
      byId: async () => ({ id: ROBOT, name: 'rover', ownerId: OWNER.id, lastSeenAt: null }),
      grants: async () => [],
      touch: async () => {},
      certificates: async () => [],
      insertCommand: async (r: { id: string; command: string }) => {
        audit.push({ id: r.id, command: r.command, stages: ['issued'] });
      },
      insertOperatorCommand: async (r: { id: string; command: string }) => {
        audit.push({ id: r.id, command: r.command, stages: ['issued'] });
        return true;
      },
      markCommand: async (id: string, stage: string, _at: Date, outcome?: string) => {
        audit.find((a) => a.id === id)?.stages.push(outcome ? `${stage}:${outcome}` : stage);
      },
    },
    // The reliable uplink's history: nothing stored (the scripted robots number no samples).
    robotTelemetry: { lastSeqs: async () => new Map(), insert: async () => {}, after: async () => [], prune: async () => 0 },
  } as unknown as Store;
  const fanout = {
    publish: (topic: string, frame: ServerFrame) => {
      for (const c of conns.values()) if (c.topics.has(topic)) c.send(frame);
    },
    conflate: (to: Iterable<Connection>, _key: string, frame: ServerFrame) => {
      for (const c of to) c.send(frame);
    },
  };
  const system = new ActorSystem(pino({ level: 'silent' }), { clock });
  system.register<RobotMsg, RobotReply, RobotReplies>(
    'robot',
    (id, ctx) =>
      new RobotActor(id, ctx, {
        store,
        fanout,
        cluster,
        timings,
        maxPendingCommands: 8,
        presence: { online() {}, offline() {} },
      }),
  );
  const robot = system.ref<RobotMsg, RobotReply, RobotReplies>('robot', ROBOT);
  const user = (id: string, u: UserRef = OWNER) => {
    const c = new FakeConn(id, u);
    conns.set(id, c);
    return c;
  };
  return { clock, cluster, robot, system, audit, user, by: { user: OWNER, admin: false } };
}
