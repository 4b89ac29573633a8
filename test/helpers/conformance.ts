// Shared pieces of the conformance suites (bus, presence): nodes of one cluster for each
// implementation, and a recorder that waits for what a listener hears.

import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { type ClusterNames, clusterNames, type NatsLink, openNats } from '../../src/cluster/nats.js';
import { createLogger, type Logger } from '../../src/log.js';
import { natsUrl } from './cluster.js';

export const log: Logger = createLogger('silent');

/** Nodes of one fresh NATS cluster (a name of the test's own), closed at teardown. */
export async function natsNodes(t: Test, n: number) {
  const names: ClusterNames = clusterNames(`c${randomBytes(6).toString('hex')}`);
  const links: NatsLink[] = [];
  for (let i = 0; i < n; i++) {
    const link = await openNats(natsUrl(), `node${i + 1}`, log);
    t.teardown(() => link.nc.close());
    links.push(link);
  }
  /** Everything published so far has reached every node: each connection round-trips in turn (the server keeps order per connection). */
  const settle = async () => {
    for (const l of links) await l.nc.flush();
    for (const l of links) await l.nc.flush();
  };
  return { names, links, settle };
}

/** What a listener heard, with a wait for the nth item (the test's timeout is the deadline). */
export class Heard<T> {
  readonly items: T[] = [];
  private wake: (() => void) | undefined;

  readonly push = (item: T): void => {
    this.items.push(item);
    this.wake?.();
  };

  async until(n: number): Promise<T[]> {
    while (this.items.length < n) await new Promise<void>((r) => (this.wake = r));
    return this.items;
  }
}

/** One implementation of a port, started as a cluster: its nodes, and a wait until all sent so far was handled. */
export interface Cluster<P> {
  /** The nodes with their ids; a single-node implementation has one. */
  nodes: { node: string; port: P }[];
  settle(): Promise<void>;
}

/**
 * The implementations a conformance suite runs against: the in-process one (a cluster of one node)
 * and NATS (two nodes on the test NATS server, a cluster name of their own). Closed at teardown.
 */
export function clusterOf<P extends { close(): Promise<void> }>(
  memory: () => P,
  nats: (link: NatsLink, names: ClusterNames, node: string) => P,
): Record<'memory' | 'nats', (t: Test) => Promise<Cluster<P>>> {
  return {
    memory: async (t) => {
      const port = memory();
      t.teardown(() => port.close());
      return { nodes: [{ node: 'node1', port }], settle: async () => {} };
    },
    nats: async (t) => {
      const { names, links, settle } = await natsNodes(t, 2);
      const nodes = links.map((link, i) => {
        const node = `node${i + 1}`;
        const port = nats(link, names, node);
        t.teardown(() => port.close());
        return { node, port };
      });
      return { nodes, settle };
    },
  };
}
