// This node's picture of one robot, shared by its home and its follower: the channels, the latest
// sample of each, when it was last seen, and this node's watchers. The home writes it from the
// robot's link; a follower from the home's events. Either way, what changes reaches the watchers
// here: `reliable` channels through a topic per (robot, channel name) (every frame, in order),
// `latest` channels conflated per watcher (a slow watcher gets the newest sample when it drains).
// A watcher may choose channels by name: it is subscribed only to those channels' topics and only
// they are conflated for it, so a channel nobody here chose is never encoded for anyone; a watcher
// of every channel follows the robot's channel list as it changes (ADVERTISE, WITHDRAW, reconnect).

import { CloseCode, type LeaseEventFrame, type LeaseInfo, type ServerFrame, type WatchingFrame } from '../protocol/frames.js';
import type { Channel } from '../protocol/robot.js';
import { type Conflater, type Connection, type Fanout, robotChannelTopic, robotTopic } from './ports.js';

export interface Watcher {
  conn: Connection;
  userId: string;
  admin: boolean;
  /** The channel names this watcher chose; undefined: every channel. */
  channels?: ReadonlySet<string>;
}

/** Numbered samples a node remembers per channel: what a `since` replay takes that is not stored yet. */
export const RECENT = 256;
/** Their bytes per channel at most (roughly: binary and text counted, beside the newest sample, which is always kept). */
export const RECENT_BYTES = 1024 * 1024;

/** Roughly how many bytes a decoded payload holds: binary and text by length, anything else a few bytes. */
export function approxBytes(v: unknown, depth = 0): number {
  if (typeof v === 'string') return v.length;
  if (v instanceof Uint8Array) return v.byteLength;
  if (v === null || typeof v !== 'object' || depth > 8) return 8;
  let n = 8;
  for (const x of Array.isArray(v) ? v : Object.values(v)) n += approxBytes(x, depth + 1);
  return n;
}

/** Two descriptors of a channel id are the same channel (its samples stay meaningful). */
const sameChannel = (a: Channel, b: Channel): boolean =>
  a.name === b.name &&
  a.encoding === b.encoding &&
  a.schema === b.schema &&
  a.delivery === b.delivery &&
  a.schemaEncoding === b.schemaEncoding &&
  sameData(a.schemaData, b.schemaData);

const sameData = (a: unknown, b: unknown): boolean => (a instanceof Uint8Array && b instanceof Uint8Array ? Buffer.from(a).equals(Buffer.from(b)) : a === b);

/** Live frames held for one watcher while its `since` replay runs, before it is cut off as too slow. */
export const MAX_HELD = 10_000;

/** A watcher whose `since` replay is running: its live frames of the replayed channels wait here. */
interface CatchUp {
  names: ReadonlySet<string>;
  held: { name: string; frame: ServerFrame }[];
}

export interface Numbered {
  seq: number;
  ts: number;
  data: unknown;
}

interface Ring {
  samples: (Numbered & { bytes: number })[];
  bytes: number;
}

export class RobotView {
  readonly topic: string;
  channels = new Map<number, Channel>();
  latest = new Map<number, { ts: number; data: unknown }>();
  /** By channel name: the highest seq this node has seen (or its home stored), and the last RECENT numbered samples. */
  readonly numbered = new Map<string, number>();
  private readonly rings = new Map<string, Ring>();
  lastSeen: number | null = null;
  readonly watchers = new Map<string, Watcher>();
  /** Watchers replaying: not in their replayed channels' topics yet, those frames held instead. */
  private readonly catchingUp = new Map<Watcher, CatchUp>();

  constructor(
    readonly id: string,
    private readonly fanout: Fanout & Conflater,
  ) {
    this.topic = robotTopic(id);
  }

  /** To every watcher on this node. */
  publish(frame: ServerFrame): void {
    if (this.watchers.size) this.fanout.publish(this.topic, frame);
  }

  /** A sample: kept as the channel's latest, and sent on to the watchers. */
  sample(ch: number, ts: number, data: unknown, frame: ServerFrame): void {
    const channel = this.channels.get(ch);
    if (!channel) return;
    this.latest.set(ch, { ts, data });
    if (frame.t === 'tm' && frame.seq !== undefined) this.remember(channel.name, { seq: frame.seq, ts, data });
    if (this.watchers.size === 0) return;
    if (channel.delivery === 'reliable') {
      this.fanout.publish(robotChannelTopic(this.id, channel.name), frame);
      if (this.catchingUp.size) this.hold(channel.name, frame);
    } else this.fanout.conflate(this.conns(channel.name), `${this.id}:${channel.id}`, frame);
  }

  /** A numbered sample of channel `name` this node saw (or its home had not stored yet). */
  remember(name: string, s: Numbered): void {
    if (s.seq > (this.numbered.get(name) ?? -1)) this.numbered.set(name, s.seq);
    let ring = this.rings.get(name);
    if (!ring) {
      ring = { samples: [], bytes: 0 };
      this.rings.set(name, ring);
    }
    const bytes = approxBytes(s.data);
    ring.samples.push({ ...s, bytes });
    ring.bytes += bytes;
    while (ring.samples.length > 1 && (ring.samples.length > RECENT || ring.bytes > RECENT_BYTES)) ring.bytes -= ring.samples.shift()?.bytes ?? 0;
  }

  /** The numbered samples remembered of channel `name`, oldest first. */
  recent(name: string): readonly Numbered[] {
    return this.rings.get(name)?.samples ?? [];
  }

  /** The channel names whose numbered samples are remembered. */
  remembered(): string[] {
    return [...new Set([...this.rings.keys(), ...this.numbered.keys()])];
  }

  /** The watchers here who chose `name` (or every channel). */
  private *conns(name: string): Iterable<Connection> {
    for (const w of this.watchers.values()) if (!w.channels || w.channels.has(name)) yield w.conn;
  }

  /** The channel topics a watcher is subscribed to: its choice, or every current channel, but those it is replaying. */
  private topicsOf(w: Watcher): Set<string> {
    const held = this.catchingUp.get(w)?.names;
    return new Set([...(w.channels ?? [...this.channels.values()].map((c) => c.name))].filter((n) => !held?.has(n)));
  }

  /** A reliable frame of channel `name`, kept for each watcher replaying it; one too far behind is cut off. */
  private hold(name: string, frame: ServerFrame): void {
    for (const [w, c] of this.catchingUp) {
      if (!c.names.has(name)) continue;
      c.held.push({ name, frame });
      if (c.held.length <= MAX_HELD) continue;
      this.unsubscribe(w);
      w.conn.close(CloseCode.SLOW_CONSUMER, 'could not catch up with the robot: reconnect and watch again');
    }
  }

  /**
   * The replay of `w` is over (or failed: the watcher then sees a jump in seq): its held frames
   * above what the replay covered (`upTo`, by channel name) are sent in order, then it joins the
   * replayed channels' topics. In a mailbox step, so no frame falls between.
   */
  caughtUp(w: Watcher, upTo: ReadonlyMap<string, number>): void {
    const c = this.catchingUp.get(w);
    if (!c) return;
    this.catchingUp.delete(w);
    if (this.watchers.get(w.conn.id) !== w || w.conn.closed) return;
    for (const { name, frame } of c.held) {
      if (frame.t === 'tm' && frame.seq !== undefined && frame.seq <= (upTo.get(name) ?? -1)) continue;
      w.conn.send(frame);
    }
    for (const n of this.topicsOf(w)) if (c.names.has(n)) w.conn.subscribe(robotChannelTopic(this.id, n));
  }

  /** The watcher `w` is the connection's current one (its replay is still wanted). */
  current(w: Watcher): boolean {
    return !w.conn.closed && this.watchers.get(w.conn.id) === w;
  }

  /**
   * The robot's channels now (it connected, advertised or withdrew): samples of channels it no
   * longer has go, and watchers of every channel follow the new list's topics.
   */
  setChannels(channels: Channel[]): void {
    const previous = this.channels;
    const before = new Set([...previous.values()].map((c) => c.name));
    this.channels = new Map(channels.map((c) => [c.id, c]));
    // A channel gone, or an id that now names another channel (ADVERTISE replaced it): its latest
    // sample is not a sample of what the id means now.
    for (const ch of this.latest.keys()) {
      const now = this.channels.get(ch);
      const then = previous.get(ch);
      if (!now || (then && !sameChannel(then, now))) this.latest.delete(ch);
    }
    const after = new Set(channels.map((c) => c.name));
    // Names can be cycled (ADVERTISE, WITHDRAW): what is remembered of a name that is gone goes too.
    for (const n of this.remembered()) {
      if (after.has(n)) continue;
      this.rings.delete(n);
      this.numbered.delete(n);
    }
    for (const w of this.watchers.values()) {
      if (w.channels) continue;
      for (const n of before) if (!after.has(n)) w.conn.unsubscribe(robotChannelTopic(this.id, n));
      for (const n of after) if (!before.has(n) && !this.catchingUp.get(w)?.names.has(n)) w.conn.subscribe(robotChannelTopic(this.id, n));
    }
  }

  /** The robot (re)connected, here or at its home, with these channels: older samples of channels it dropped go. */
  cameOnline(channels: Channel[], at: number): void {
    this.setChannels(channels);
    this.lastSeen = at;
  }

  /**
   * Adds a watcher, or replaces a connection's earlier watch (and its choice of channels). The
   * channels in `replaying` are left out of its subscriptions and their frames held until
   * `caughtUp`: its `since` replay runs meanwhile, beside the mailbox.
   */
  addWatcher(w: Watcher, frame: Omit<WatchingFrame, 'channels' | 'latest' | 'lastSeen' | 'robot'>, replaying: readonly string[] = []): void {
    const wanted = (ch: number) => {
      const name = this.channels.get(ch)?.name;
      return name !== undefined && (!w.channels || w.channels.has(name));
    };
    w.conn.send({
      ...frame,
      robot: this.id,
      lastSeen: this.lastSeen,
      channels: [...this.channels.values()],
      latest: [...this.latest].filter(([ch]) => wanted(ch)).map(([ch, s]) => ({ ch, ts: s.ts, data: s.data })),
    });
    const old = this.watchers.get(w.conn.id);
    if (old) this.catchingUp.delete(old);
    if (replaying.length) this.catchingUp.set(w, { names: new Set(replaying), held: [] });
    const topics = this.topicsOf(w);
    if (old) for (const n of this.topicsOf(old)) if (!topics.has(n)) w.conn.unsubscribe(robotChannelTopic(this.id, n));
    w.conn.subscribe(this.topic);
    for (const n of topics) w.conn.subscribe(robotChannelTopic(this.id, n));
    this.watchers.set(w.conn.id, w);
  }

  removeWatcher(conn: Connection): void {
    const w = this.watchers.get(conn.id);
    if (w) this.unsubscribe(w);
  }

  private unsubscribe(w: Watcher): void {
    this.catchingUp.delete(w);
    this.watchers.delete(w.conn.id);
    w.conn.unsubscribe(this.topic);
    for (const n of this.topicsOf(w)) w.conn.unsubscribe(robotChannelTopic(this.id, n));
  }

  /** Drops the watchers who may no longer see the robot, telling each why. */
  dropWatchers(keep: (w: Watcher) => boolean, frame: ServerFrame | undefined): void {
    for (const w of [...this.watchers.values()]) {
      if (keep(w)) continue;
      this.unsubscribe(w);
      if (frame) w.conn.send(frame);
    }
  }

  onlineFrame(): ServerFrame {
    return { t: 'robot', robot: this.id, kind: 'online', channels: [...this.channels.values()] };
  }

  leaseFrame(lease: LeaseInfo | null, reason: LeaseEventFrame['reason']): ServerFrame {
    return { t: 'lease', robot: this.id, lease, reason };
  }
}
