// Who of some people is online (holds a WebSocket on some node), for the server API. Each node
// knows only its own sockets, so a question goes to every other node at once over core NATS (a
// request with many replies): each answers with those it holds, and the answer is the union with
// this node's own once every live node has replied, or when WAIT_MS runs out (`partial`: a node did
// not answer in time).

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';

/** How long a question waits for the nodes' answers. */
export const WAIT_MS = 500;

export interface OnlineCluster {
  nc: NatsConnection;
  subject: string;
  /** How many nodes are alive, this one included: the answers to wait for. */
  nodes(): number;
}

export class Online {
  private readonly sub: Subscription | undefined;

  constructor(
    /** Of these user ids, those with a socket on this node. */
    private readonly local: (ids: string[]) => string[],
    private readonly log: Logger,
    private readonly cluster?: OnlineCluster,
  ) {
    this.sub = cluster?.nc.subscribe(cluster.subject, {
      callback: (err, msg) => {
        if (err) return log.warn({ err }, 'online questions: subscription failed');
        try {
          const ids = unpackPlain(msg.data);
          if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) return;
          msg.respond(packPlain(this.local(ids)));
        } catch (e) {
          log.warn({ err: e }, 'an online question could not be answered');
        }
      },
    });
  }

  /** Those of `ids` connected to some node; `partial` when a node did not answer within WAIT_MS. */
  async ask(ids: string[]): Promise<{ online: string[]; partial: boolean }> {
    const online = new Set(this.local(ids));
    const c = this.cluster;
    // The connection is noEcho: this node answers here, the others over NATS.
    const others = c ? c.nodes() - 1 : 0;
    if (!c || others < 1) return { online: ids.filter((id) => online.has(id)), partial: false };
    let answers = 0;
    try {
      const replies = await c.nc.requestMany(c.subject, packPlain(ids), { strategy: 'count', maxMessages: others, maxWait: WAIT_MS });
      for await (const m of replies) {
        answers++;
        const got = unpackPlain(m.data);
        if (Array.isArray(got)) for (const id of got) if (typeof id === 'string') online.add(id);
      }
    } catch (e) {
      // No other node answered at all (NATS reports no responders), or the connection failed.
      this.log.warn({ err: e }, 'online question failed');
    }
    return { online: ids.filter((id) => online.has(id)), partial: answers < others };
  }

  close(): void {
    this.sub?.unsubscribe();
  }
}
