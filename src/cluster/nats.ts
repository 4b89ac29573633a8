// The node's NATS connection, the names it uses, and how plain MessagePack goes on and off a subject.
// Every subject and bucket carries the cluster's name, so several clusters (or test runs) can share
// one NATS deployment without seeing each other.

import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';

export interface ClusterNames {
  /** Fan-out of a room's committed messages to every node with local subscribers. */
  room(roomId: string): string;
  /** Room news between nodes: a member joined or left, the room deleted. */
  signals(roomId: string): string;
  /** Ephemeral room news between nodes: who is present, who is typing. */
  presence(roomId: string): string;
  /** The KV bucket of node heartbeats. */
  nodesBucket: string;
  /** Every node's one-second pulse. */
  nodesPulse: string;
  /** Requests of other nodes to a robot's home. */
  robotRequests(robotId: string): string;
  /** A robot's home's events, to the nodes that follow it. */
  robotEvents(robotId: string): string;
  /** The KV bucket of robot homes. */
  robotsBucket: string;
  /** A robot's grants, certificates or existence changed (every node's actor re-reads them). */
  robotChanges: string;
  /** People news: ended sessions and accounts, frames for a person's sockets, blocked direct rooms. */
  people: string;
  /** Digests of every committed batch, for the live message notices of every node's people. */
  notices: string;
  /** Requests for who of some people is connected: every node answers for its own sockets. */
  online: string;
  /** Requests for each node's own figures (the operators view): every node answers for itself. */
  nodeStats: string;
}

export function clusterNames(cluster: string): ClusterNames {
  return {
    room: (roomId) => `sb.${cluster}.room.${roomId}`,
    signals: (roomId) => `sb.${cluster}.signal.${roomId}`,
    presence: (roomId) => `sb.${cluster}.presence.${roomId}`,
    nodesBucket: `sb_${cluster}_nodes`,
    nodesPulse: `sb.${cluster}.nodes.pulse`,
    robotRequests: (robotId) => `sb.${cluster}.robot.${robotId}.req`,
    robotEvents: (robotId) => `sb.${cluster}.robot.${robotId}.ev`,
    robotsBucket: `sb_${cluster}_robots`,
    robotChanges: `sb.${cluster}.robots.changed`,
    people: `sb.${cluster}.people`,
    notices: `sb.${cluster}.notices`,
    online: `sb.${cluster}.online`,
    nodeStats: `sb.${cluster}.nodestats`,
  };
}

export interface NatsLink {
  nc: NatsConnection;
  /** Connected right now (false while reconnecting, and once closed). */
  readonly up: boolean;
  /** Called after each reconnect: messages published meanwhile may have been missed. */
  onReconnect(fn: () => void): void;
}

/** Connects, reconnecting forever in the background; the node reports not ready while it is down. */
export async function openNats(url: string, nodeId: string, log: Logger): Promise<NatsLink> {
  const servers = url.split(',').map((s) => s.trim());
  const nc = await connect({
    servers,
    name: `switchboard ${nodeId}`,
    // A node never needs its own publications back: its local listeners hear them directly.
    noEcho: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 5_000,
  });
  let up = true;
  const reconnected = new Set<() => void>();
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        up = false;
        log.warn({ server: s.server }, 'NATS connection lost; reconnecting');
      } else if (s.type === 'reconnect') {
        up = true;
        log.info({ server: s.server }, 'NATS reconnected');
        for (const fn of reconnected) fn();
      }
    }
  })().catch((e) => log.error({ err: e }, 'NATS status loop failed'));
  nc.closed().then(() => {
    up = false;
  });
  log.info({ server: nc.getServer() }, 'connected to NATS');
  return {
    nc,
    get up() {
      return up && !nc.isClosed();
    },
    onReconnect: (fn) => reconnected.add(fn),
  };
}

/**
 * Publishes `value` on `subject` as plain MessagePack. Core NATS is at most once anyway, so a
 * closed or draining connection is logged (with `context`), not thrown.
 */
export function publishPlain(nc: NatsConnection, subject: string, value: unknown, log: Logger, what: string, context: object): void {
  try {
    nc.publish(subject, packPlain(value));
  } catch (e) {
    log.warn({ ...context, err: e }, `could not send ${what} to the cluster`);
  }
}

/**
 * Subscribes to `subject`, handing each message's plain-MessagePack value to `handle`. A failed
 * subscription, an undecodable message and a handler that throws are logged (with `context`): none
 * reaches NATS, which would end the subscription.
 */
export function subscribePlain<T>(
  nc: NatsConnection,
  subject: string,
  log: Logger,
  what: string,
  context: object,
  handle: (value: T, msg: Msg) => void,
): Subscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) return log.warn({ ...context, err }, `${what} subscription failed`);
      let value: T;
      try {
        value = unpackPlain(msg.data) as T;
      } catch (e) {
        return log.error({ ...context, err: e }, `undecodable ${what} from the cluster`);
      }
      try {
        handle(value, msg);
      } catch (e) {
        log.error({ ...context, err: e }, `${what} from the cluster could not be handled`);
      }
    },
  });
}
