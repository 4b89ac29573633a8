// Webhooks: admins register HTTP(S) endpoints for events; every node delivers from the outbox in the
// database (store/webhooks.ts), at least once, in order per room (and per robot), each delivery
// signed as Standard Webhooks specifies (Svix's scheme): `webhook-id` (the event's id, the same on
// every retry: the receiver's idempotency key), `webhook-timestamp` (seconds), and
// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the endpoint's
// secret. A failed attempt (a non-2xx answer, a timeout, no connection) is retried after 1, 2, 4...
// seconds, at most an hour apart; after MAX_ATTEMPTS it is given up and the next one goes.

import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { SbError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Claimed, Delivery, Webhook, WebhookEvent } from '../store/webhooks.js';

/** Attempts of one delivery before it is given up. */
export const MAX_ATTEMPTS = 20;
/** Endpoints one hub may have. */
export const MAX_WEBHOOKS = 100;
/** How long a receiver has to answer, ms. */
export const TIMEOUT_MS = 10_000;
/** Deliveries of one endpoint left pending before the hourly check disables it. */
export const MAX_PENDING = 100_000;
/** Days a finished delivery stays in the log. */
export const LOG_DAYS = 7;
const LEASE_S = 60;
const CONCURRENCY = 8;
const POLL_MS = 1_000;

export interface WebhookLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** The signature of one delivery, as its receiver recomputes it. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** Seconds before the next attempt after `attempts` failed ones; undefined: give up. */
export function retryIn(attempts: number): number | undefined {
  return attempts >= MAX_ATTEMPTS ? undefined : Math.min(2 ** (attempts - 1), 3_600);
}

export class WebhooksService {
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly aborts = new AbortController();

  constructor(
    private readonly store: Store,
    private readonly log: WebhookLog,
  ) {}

  /** A new endpoint at `url` (an http(s) URL, checked by the caller), and its signing secret (shown this once). */
  async create(adminId: string, url: string, events: WebhookEvent[]): Promise<{ webhook: Webhook; secret: string }> {
    if ((await this.store.webhooks.list()).length >= MAX_WEBHOOKS) throw new SbError('CONFLICT', `at most ${MAX_WEBHOOKS} webhooks; delete one first`);
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const webhook = await this.store.webhooks.create({ id: randomUUID(), url, secret, events: [...new Set(events)], createdBy: adminId });
    return { webhook, secret };
  }

  list(): Promise<Webhook[]> {
    return this.store.webhooks.list();
  }

  async delete(id: string): Promise<void> {
    if (!(await this.store.webhooks.delete(id))) throw new SbError('NOT_FOUND', 'no such webhook');
  }

  async deliveries(id: string, limit: number): Promise<Delivery[]> {
    if (!(await this.store.webhooks.get(id))) throw new SbError('NOT_FOUND', 'no such webhook');
    return this.store.webhooks.deliveries(id, limit);
  }

  /** A robot came online or went offline on this node (not stored state: written when it happens). */
  robot(robotId: string, online: boolean): void {
    const data = { robotId, at: new Date() };
    this.store.webhooks
      .event(online ? 'robot.online' : 'robot.offline', randomUUID(), robotId, data)
      .then(() => this.wake())
      .catch((e: unknown) => this.log.warn({ err: e, robot: robotId }, 'robot webhook event not recorded'));
  }

  /** The hourly upkeep: drops finished deliveries past LOG_DAYS, and disables endpoints with a backlog over MAX_PENDING. */
  prune(): void {
    this.store.webhooks
      .prune(LOG_DAYS, MAX_PENDING)
      .then(({ disabled }) => {
        if (disabled) this.log.warn({ disabled }, 'webhooks disabled: too many deliveries pending');
      })
      .catch((e: unknown) => this.log.warn({ err: e }, 'webhook log pruning failed'));
  }

  /** Something was written that may have deliveries: look now rather than at the next poll. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops delivering: attempts in flight are abandoned (their rows go back to the outbox at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.aborts.abort();
    this.wake();
    await this.running;
  }

  /**
   * Keeps up to CONCURRENCY attempts in flight: claims as many as there are free slots, and claims
   * again when one ends (a slow receiver holds one slot, not the round), when a commit here wakes
   * it, or every POLL_MS.
   */
  private async loop(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    while (!this.stopped) {
      const free = CONCURRENCY - inFlight.size;
      let claimed: Claimed[] = [];
      if (free > 0) {
        try {
          claimed = await this.store.webhooks.claim(free, LEASE_S);
        } catch (e) {
          this.log.warn({ err: e }, 'webhook deliveries could not be claimed');
        }
      }
      for (const c of claimed) {
        const p: Promise<void> = this.deliver(c).finally(() => {
          inFlight.delete(p);
          this.wake();
        });
        inFlight.add(p);
      }
      // All that was due is on its way, or every slot is taken: wait for a change.
      if ((claimed.length < free || inFlight.size >= CONCURRENCY) && !this.stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, POLL_MS);
          timer.unref();
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
    await Promise.all(inFlight);
  }

  private async deliver(c: Claimed): Promise<void> {
    const timestamp = Math.floor(Date.now() / 1000);
    let status: number | null = null;
    let error: string;
    try {
      const res = await fetch(c.url, {
        method: 'POST',
        body: c.payload,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), this.aborts.signal]),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Switchboard-Webhooks',
          'webhook-id': c.eventId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(c.secret, c.eventId, timestamp, c.payload),
        },
      });
      await res.body?.cancel();
      status = res.status;
      if (status >= 200 && status < 300) {
        await this.store.webhooks.delivered(c, status);
        return;
      }
      error = `HTTP ${status}`;
    } catch (e) {
      error = e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e);
    }
    // Abandoned by a shutdown: another node takes it at once, and this attempt does not count.
    const next = this.stopped ? 0 : retryIn(c.attempts);
    if (next === undefined) this.log.warn({ webhook: c.webhookId, event: c.eventId, attempts: c.attempts, error }, 'webhook delivery given up');
    await this.store.webhooks
      .attemptFailed(c, status, error, next, this.stopped)
      .catch((e: unknown) => this.log.warn({ err: e }, 'webhook attempt not recorded'));
  }
}
