// Questions every node answers for itself: who of some people holds a socket here (the server
// API's presence), and how this node is doing (the console's operators view). A question goes to
// every other node at once over core NATS (a request with many replies); the answers are this
// node's own first, then the others' as they come, until every live node has replied or WAIT_MS
// runs out (`partial`: a node did not answer in time). On a single node only its own answer counts.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';

/** How long a question waits for the nodes' answers. */
export const WAIT_MS = 500;

export interface AskCluster {
  nc: NatsConnection;
  subject: string;
  /** How many nodes are alive, this one included: the answers to wait for. */
  nodes(): number;
}

export class ClusterQuestion<Q, A> {
  private readonly sub: Subscription | undefined;

  constructor(
    /** This node's answer. */
    private readonly here: (q: Q) => A | Promise<A>,
    /** Whether a question from the wire is well-formed (anything else goes unanswered). */
    isQuestion: (q: unknown) => q is Q,
    private readonly log: Logger,
    private readonly cluster?: AskCluster,
  ) {
    this.sub = cluster?.nc.subscribe(cluster.subject, {
      callback: (err, msg) => {
        if (err) return log.warn({ err, subject: cluster.subject }, 'cluster questions: subscription failed');
        void (async () => {
          const q = unpackPlain(msg.data);
          if (isQuestion(q)) msg.respond(packPlain(await this.here(q)));
        })().catch((e) => log.warn({ err: e, subject: cluster.subject }, 'a cluster question could not be answered'));
      },
    });
  }

  /** Every node's answer, this node's first; `partial` when a node did not answer within WAIT_MS. */
  async ask(q: Q): Promise<{ answers: unknown[]; partial: boolean }> {
    const answers: unknown[] = [await this.here(q)];
    const c = this.cluster;
    // The connection is noEcho: this node answered above, the others answer over NATS.
    const others = c ? c.nodes() - 1 : 0;
    if (!c || others < 1) return { answers, partial: false };
    try {
      const replies = await c.nc.requestMany(c.subject, packPlain(q), { strategy: 'count', maxMessages: others, maxWait: WAIT_MS });
      for await (const m of replies) answers.push(unpackPlain(m.data));
    } catch (e) {
      // No other node answered at all (NATS reports no responders), or the connection failed.
      this.log.warn({ err: e, subject: c.subject }, 'cluster question failed');
    }
    return { answers, partial: answers.length - 1 < others };
  }

  close(): void {
    this.sub?.unsubscribe();
  }
}

export const isIdList = (q: unknown): q is string[] => Array.isArray(q) && q.every((id) => typeof id === 'string');

/** Who of `ids` holds a socket on some node: the union of the nodes' answers, in the order asked. */
export async function onlineOf(question: ClusterQuestion<string[], string[]>, ids: string[]): Promise<{ online: string[]; partial: boolean }> {
  const { answers, partial } = await question.ask(ids);
  const online = new Set(answers.filter(isIdList).flat());
  return { online: ids.filter((id) => online.has(id)), partial };
}
