// Webhooks (migration 13): the endpoints admins register, and the outbox of their deliveries. An
// event is a row per subscribed endpoint, written by `event` in the transaction of the change it
// reports (or by the commit of messages itself); nodes claim due rows with a lease, one at a time
// per endpoint and `ordering` (a room, a robot), oldest first, and record each attempt on its row:
// the outbox is also the delivery log.

import type { Sql, Tx } from './db.js';

export const WEBHOOK_EVENTS = [
  'message.created',
  'message.edited',
  'message.deleted',
  'member.joined',
  'member.left',
  'user.registered',
  'robot.online',
  'robot.offline',
  'command.completed',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  createdBy: string | null;
  createdAt: Date;
  disabledAt: Date | null;
  disabledReason: string | null;
}

interface WebhookRow {
  id: string;
  url: string;
  secret: string;
  events: WebhookEvent[];
  created_by: string | null;
  created_at: Date;
  disabled_at: Date | null;
  disabled_reason: string | null;
}

const toWebhook = (r: WebhookRow): Webhook => ({
  id: r.id,
  url: r.url,
  events: r.events,
  createdBy: r.created_by,
  createdAt: r.created_at,
  disabledAt: r.disabled_at,
  disabledReason: r.disabled_reason,
});

/** A delivery claimed for an attempt: what to send, where, signed with what. */
export interface Claimed {
  id: string;
  webhookId: string;
  eventId: string;
  attempts: number;
  payload: string;
  url: string;
  secret: string;
  /**
   * The lease this node holds on it, as PostgreSQL's text (compared as text: a JS Date, which the
   * driver would make of it, drops the microseconds): the attempt's result is written only while it holds.
   */
  lease: string;
}

export interface Delivery {
  id: string;
  eventId: string;
  type: WebhookEvent;
  createdAt: Date;
  attempts: number;
  state: 'pending' | 'delivered' | 'failed';
  deliveredAt: Date | null;
  nextAt: Date | null;
  lastStatus: number | null;
  lastError: string | null;
}

export class Webhooks {
  constructor(private readonly sql: Sql) {}

  async create(w: { id: string; url: string; secret: string; events: WebhookEvent[]; createdBy: string }): Promise<Webhook> {
    const [row] = await this.sql<WebhookRow[]>`
      INSERT INTO webhooks (id, url, secret, events, created_by)
      VALUES (${w.id}, ${w.url}, ${w.secret}, ${w.events}::text[], ${w.createdBy}) RETURNING *`;
    return toWebhook(row as WebhookRow);
  }

  async list(): Promise<Webhook[]> {
    return (await this.sql<WebhookRow[]>`SELECT * FROM webhooks ORDER BY created_at, id`).map(toWebhook);
  }

  async get(id: string): Promise<Webhook | undefined> {
    const [row] = await this.sql<WebhookRow[]>`SELECT * FROM webhooks WHERE id = ${id}`;
    return row && toWebhook(row);
  }

  /** Deletes the endpoint and its deliveries, pending or not. */
  async delete(id: string): Promise<boolean> {
    return (await this.sql`DELETE FROM webhooks WHERE id = ${id}`).count > 0;
  }

  /** Records an event for every endpoint subscribed to its type (in `tx` when given: the change's transaction). */
  async event(type: WebhookEvent, eventId: string, ordering: string, data: unknown, tx?: Tx): Promise<void> {
    await (tx ?? this.sql)`SELECT sb_webhook_event(${type}, ${eventId}, ${ordering}, ${JSON.stringify(data)})`;
  }

  /**
   * Claims up to `limit` due deliveries, each the oldest undelivered one of its endpoint and
   * ordering (of an enabled endpoint), for `leaseS` seconds: another node takes it over if this
   * one dies meanwhile. The heads are read off the pending index (one pass, no probe per row); a
   * row another node claimed or finished meanwhile is skipped by the re-check after its lock.
   */
  async claim(limit: number, leaseS: number): Promise<Claimed[]> {
    const rows = await this.sql<
      { id: string; webhook_id: string; event_id: string; attempts: number; payload: string; url: string; secret: string; lease: string }[]
    >`
      WITH heads AS (
        SELECT DISTINCT ON (d.webhook_id, d.ordering) d.id, d.webhook_id, d.next_at, d.lease_until
        FROM webhook_outbox d
        WHERE d.delivered_at IS NULL AND d.failed_at IS NULL
        ORDER BY d.webhook_id, d.ordering, d.id
      ), due AS (
        SELECT h.id FROM heads h JOIN webhooks e ON e.id = h.webhook_id AND e.disabled_at IS NULL
        WHERE h.next_at <= now() AND (h.lease_until IS NULL OR h.lease_until < now())
        ORDER BY h.id LIMIT ${limit}
      )
      UPDATE webhook_outbox o SET lease_until = now() + make_interval(secs => ${leaseS}), attempts = o.attempts + 1
      FROM webhooks w
      WHERE w.id = o.webhook_id
        AND o.id IN (SELECT x.id FROM webhook_outbox x WHERE x.id IN (SELECT id FROM due) FOR UPDATE SKIP LOCKED)
        AND o.delivered_at IS NULL AND o.failed_at IS NULL AND (o.lease_until IS NULL OR o.lease_until < now())
      RETURNING o.id, o.webhook_id, o.event_id, o.attempts, o.payload, w.url, w.secret, o.lease_until::text AS lease`;
    return rows.map((r) => ({
      id: r.id,
      webhookId: r.webhook_id,
      eventId: r.event_id,
      attempts: r.attempts,
      payload: r.payload,
      url: r.url,
      secret: r.secret,
      lease: r.lease,
    }));
  }

  /** Delivered: unless the lease lapsed and another node holds the row now (its attempt decides). */
  async delivered(c: Pick<Claimed, 'id' | 'lease'>, status: number): Promise<void> {
    await this.sql`
      UPDATE webhook_outbox SET delivered_at = now(), lease_until = NULL, last_status = ${status}, last_error = NULL
      WHERE id = ${c.id} AND lease_until::text = ${c.lease}`;
  }

  /**
   * An attempt failed: retried after `retryInS`, or, with undefined, given up on (the next of its
   * ordering goes on). `abandoned`: it never really happened (a shutdown), so it does not count.
   */
  async attemptFailed(c: Pick<Claimed, 'id' | 'lease'>, status: number | null, error: string, retryInS: number | undefined, abandoned = false): Promise<void> {
    await this.sql`
      UPDATE webhook_outbox SET lease_until = NULL, last_status = ${status}, last_error = ${error.slice(0, 500)},
        next_at = now() + make_interval(secs => ${retryInS ?? 0}),
        failed_at = ${retryInS === undefined ? this.sql`now()` : this.sql`NULL`},
        attempts = attempts - ${abandoned ? 1 : 0}
      WHERE id = ${c.id} AND lease_until::text = ${c.lease}`;
  }

  /** The endpoint's deliveries, newest first. */
  async deliveries(webhookId: string, limit: number): Promise<Delivery[]> {
    const rows = await this.sql<
      {
        id: string;
        event_id: string;
        event_type: WebhookEvent;
        created_at: Date;
        attempts: number;
        delivered_at: Date | null;
        failed_at: Date | null;
        next_at: Date;
        last_status: number | null;
        last_error: string | null;
      }[]
    >`SELECT id, event_id, event_type, created_at, attempts, delivered_at, failed_at, next_at, last_status, last_error
      FROM webhook_outbox WHERE webhook_id = ${webhookId} ORDER BY id DESC LIMIT ${limit}`;
    return rows.map((r) => ({
      id: r.id,
      eventId: r.event_id,
      type: r.event_type,
      createdAt: r.created_at,
      attempts: r.attempts,
      state: r.delivered_at ? 'delivered' : r.failed_at ? 'failed' : 'pending',
      deliveredAt: r.delivered_at,
      nextAt: r.delivered_at || r.failed_at ? null : r.next_at,
      lastStatus: r.last_status,
      lastError: r.last_error,
    }));
  }

  /**
   * Drops deliveries finished more than `days` ago, and disables endpoints with more than
   * `maxPending` undelivered (their receiver has been failing for long: nothing more is queued).
   */
  async prune(days: number, maxPending: number): Promise<{ pruned: number; disabled: number }> {
    const pruned = await this.sql`
      DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < now() - make_interval(days => ${days})`;
    const disabled = await this.sql`
      UPDATE webhooks SET disabled_at = now(), disabled_reason = ${`more than ${maxPending} deliveries pending`}
      WHERE disabled_at IS NULL AND id IN (
        SELECT webhook_id FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL
        GROUP BY webhook_id HAVING count(*) > ${maxPending})`;
    return { pruned: pruned.count, disabled: disabled.count };
  }
}
