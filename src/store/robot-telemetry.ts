// The history of robots' reliable channels: each sample the robot numbered (`seq`, per channel,
// +1 per sample) is stored once — a replayed one is a no-op thanks to the key — and kept for a
// window and up to a count per channel. The payload is kept as the MessagePack the robot sent it
// in (re-encoded plainly), so any value, binary included, comes back as it was.

import { packPlain, unpackPlain } from '../protocol/codec.js';
import type { Sql } from './db.js';

export interface StoredSample {
  channel: string;
  seq: number;
  ts: number;
  data: unknown;
}

export class RobotTelemetry {
  constructor(private readonly sql: Sql) {}

  /** Stores samples (a replayed seq changes nothing). */
  async insert(robotId: string, samples: StoredSample[]): Promise<void> {
    if (samples.length === 0) return;
    const channels = samples.map((s) => s.channel);
    const seqs = samples.map((s) => String(s.seq));
    const tss = samples.map((s) => String(s.ts));
    const data = samples.map((s) => Buffer.from(packPlain(s.data)).toString('base64'));
    await this.sql`
      INSERT INTO robot_telemetry (robot_id, channel, seq, ts, data)
      SELECT ${robotId}::uuid, c, s, t, decode(d, 'base64')
      FROM unnest(${channels}::text[], ${seqs}::bigint[], ${tss}::bigint[], ${data}::text[]) AS k(c, s, t, d)
      ON CONFLICT DO NOTHING`;
  }

  /** The highest stored seq of each of these channels that has one. */
  async lastSeqs(robotId: string, channels: string[]): Promise<Map<string, number>> {
    if (channels.length === 0) return new Map();
    const rows = await this.sql<{ channel: string; seq: string }[]>`
      SELECT channel, max(seq)::text AS seq FROM robot_telemetry
      WHERE robot_id = ${robotId} AND channel = ANY(${channels}::text[])
      GROUP BY channel`;
    return new Map(rows.map((r) => [r.channel, Number(r.seq)]));
  }

  /** Samples of a channel after `since`, oldest first, at most `limit`. */
  async after(robotId: string, channel: string, since: number, limit: number): Promise<StoredSample[]> {
    const rows = await this.sql<{ seq: string; ts: string; data: Buffer }[]>`
      SELECT seq::text, ts::text, data FROM robot_telemetry
      WHERE robot_id = ${robotId} AND channel = ${channel} AND seq > ${String(since)}::bigint
      ORDER BY robot_telemetry.seq LIMIT ${limit}`;
    return rows.map((r) => ({ channel, seq: Number(r.seq), ts: Number(r.ts), data: unpackPlain(r.data) }));
  }

  /** The newest `limit` samples of a channel numbered in (after, upTo], oldest first. */
  async newestIn(robotId: string, channel: string, after: number, upTo: number, limit: number): Promise<StoredSample[]> {
    const rows = await this.sql<{ seq: string; ts: string; data: Buffer }[]>`
      SELECT seq::text, ts::text, data FROM robot_telemetry
      WHERE robot_id = ${robotId} AND channel = ${channel} AND seq > ${String(after)}::bigint AND seq <= ${String(upTo)}::bigint
      ORDER BY robot_telemetry.seq DESC LIMIT ${limit}`;
    return rows.reverse().map((r) => ({ channel, seq: Number(r.seq), ts: Number(r.ts), data: unpackPlain(r.data) }));
  }

  /**
   * Drops every robot's samples stored before `before` (the hourly upkeep: a robot that stores
   * nothing any more is not pruned by its home). Robot by robot, so each uses the (robot, stored_at) index.
   */
  async pruneExpired(before: Date): Promise<number> {
    const r = await this.sql`
      DELETE FROM robot_telemetry t USING robots r
      WHERE t.robot_id = r.id AND t.stored_at < ${before}`;
    return r.count;
  }

  /** Drops the robot's samples stored before `before`, and those of each channel beyond its newest `keep`. */
  async prune(robotId: string, before: Date, keep: number): Promise<number> {
    const old = await this.sql`DELETE FROM robot_telemetry WHERE robot_id = ${robotId} AND stored_at < ${before}`;
    const over = await this.sql`
      DELETE FROM robot_telemetry t USING (
        SELECT channel, max(seq) - ${keep}::bigint AS floor FROM robot_telemetry WHERE robot_id = ${robotId} GROUP BY channel
      ) f
      WHERE t.robot_id = ${robotId} AND t.channel = f.channel AND t.seq <= f.floor`;
    return old.count + over.count;
  }
}
