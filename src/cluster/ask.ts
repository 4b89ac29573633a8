// Questions every node answers for itself: who of some people holds a socket here (the server
// API's presence), and how this node is doing (the console's operators view). A question goes to
// every other node at once over core NATS (a request with many replies) while this node answers it
// too; the answers are this node's first, then the others' as they come, until every live node has
// replied or WAIT_MS runs out. `partial`: an answer is missing (a node, this one included, was
// silent that long, or sent something that is no answer). On a single node only its own counts.

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
    /** Whether a reply from another node is an answer (anything else is dropped, and makes the result partial). */
    private readonly isAnswer: (a: unknown) => a is A,
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

  /** Every node's answer, this node's first; `partial` when one is missing. */
  async ask(q: Q): Promise<{ answers: A[]; partial: boolean }> {
    const c = this.cluster;
    // The connection is noEcho: this node answers here, the others over NATS, at the same time.
    const others = c ? c.nodes() - 1 : 0;
    const [mine, theirs] = await Promise.all([this.mine(q), c && others > 0 ? this.theirs(c, q, others) : []]);
    return { answers: mine === undefined ? theirs : [mine, ...theirs], partial: mine === undefined || theirs.length < others };
  }

  /** This node's answer, or undefined when it fails or takes longer than the others may (a store that hangs). */
  private async mine(q: Q): Promise<A | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), WAIT_MS);
    });
    try {
      return await Promise.race([Promise.resolve().then(() => this.here(q)), late]);
    } catch (e) {
      this.log.warn({ err: e }, 'this node could not answer its own cluster question');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private async theirs(c: AskCluster, q: Q, others: number): Promise<A[]> {
    const answers: A[] = [];
    try {
      const replies = await c.nc.requestMany(c.subject, packPlain(q), { strategy: 'count', maxMessages: others, maxWait: WAIT_MS });
      for await (const m of replies) {
        let a: unknown;
        try {
          a = unpackPlain(m.data);
        } catch {
          a = undefined;
        }
        if (this.isAnswer(a)) answers.push(a);
        else this.log.warn({ subject: c.subject }, 'a node sent no answer to a cluster question');
      }
    } catch (e) {
      // No other node answered at all (NATS reports no responders), or the connection failed.
      this.log.warn({ err: e, subject: c.subject }, 'cluster question failed');
    }
    return answers;
  }

  close(): void {
    this.sub?.unsubscribe();
  }
}

export const isIdList = (q: unknown): q is string[] => Array.isArray(q) && q.every((id) => typeof id === 'string');

/** Who of `ids` holds a socket on some node: the union of the nodes' answers, in the order asked. */
export async function onlineOf(question: ClusterQuestion<string[], string[]>, ids: string[]): Promise<{ online: string[]; partial: boolean }> {
  const { answers, partial } = await question.ask(ids);
  const online = new Set(answers.flat());
  return { online: ids.filter((id) => online.has(id)), partial };
}
