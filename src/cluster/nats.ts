// The node's NATS connection and the names it uses. Every subject and bucket carries the cluster's
// name, so several clusters (or test runs) can share one NATS deployment without seeing each other.

import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log.js';

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
