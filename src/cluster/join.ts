// Joining the cluster: NATS, the robots bucket, then the membership, all before the robot endpoint
// listens (a robot's home must be a node the others see alive). Each step is retried until NATS and JetStream
// answer, so a node never exits because they are not ready yet (servers still starting, JetStream
// electing its leader); meanwhile `JoinStatus.reason` says what it waits for (/readyz reports it).

import type { Logger } from '../log.js';
import { Membership } from './membership.js';
import { type ClusterNames, type NatsLink, openNats } from './nats.js';
import { NatsRobotCluster, type RobotClusterOptions } from './robots-nats.js';

/** Where a node that is joining its cluster stands: /readyz reports `reason` until it has joined. */
export interface JoinStatus {
  reason: string;
}

/** The pause between two attempts to join, ms. */
const JOIN_RETRY_MS = 500;

/**
 * Runs `attempt` until it succeeds: a node never gives up because NATS or JetStream is not ready
 * yet (servers still starting, JetStream still electing its leader). `status.reason` says what it
 * waits for; a failure is logged when its message changes, not at every attempt.
 */
export async function untilJoined<T>(what: string, attempt: () => Promise<T>, status: JoinStatus, log: Logger): Promise<T> {
  let last: string | undefined;
  for (let tries = 1; ; tries++) {
    try {
      const r = await attempt();
      if (last !== undefined) log.info({ step: what, tries }, 'joined after waiting for NATS / JetStream');
      return r;
    } catch (e) {
      const message = (e as Error).message;
      status.reason = `${what}: ${message}`;
      if (message !== last) log.warn({ step: what, err: e }, 'NATS or JetStream not ready yet; retrying');
      last = message;
      await new Promise((r) => setTimeout(r, JOIN_RETRY_MS));
    }
  }
}

export interface JoinOptions {
  natsUrl: string;
  nodeId: string;
  names: ClusterNames;
  /** This node's URL, as the other members see it. */
  url: string;
  /** What the robots bucket tells this node. */
  robots: Pick<RobotClusterOptions, 'alive' | 'changed'>;
  status: JoinStatus;
  log: Logger;
}

export interface Joined {
  nats: NatsLink;
  robotCluster: NatsRobotCluster;
  membership: Membership;
}

/** Connects and joins, however long NATS and JetStream take to be ready. */
export async function joinCluster(o: JoinOptions): Promise<Joined> {
  const log = o.log.child({ component: 'nats' });
  const nats = await untilJoined('connecting to NATS', () => openNats(o.natsUrl, o.nodeId, log), o.status, log);
  const robotCluster = await untilJoined(
    'opening the robots bucket',
    () => NatsRobotCluster.open(nats.nc, { nodeId: o.nodeId, names: o.names, ...o.robots, log: o.log.child({ component: 'robot-cluster' }) }),
    o.status,
    log,
  );
  const membership = await untilJoined(
    'joining the membership',
    () =>
      Membership.join(nats.nc, {
        bucket: o.names.nodesBucket,
        pulseSubject: o.names.nodesPulse,
        self: { id: o.nodeId, url: o.url, startedAt: Date.now() },
        heartbeatMs: 2_000,
        log: o.log,
      }),
    o.status,
    log,
  );
  return { nats, robotCluster, membership };
}
