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
