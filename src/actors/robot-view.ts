// This node's picture of one robot, shared by its home and its follower: the channels, the latest
// sample of each, when it was last seen, and this node's watchers. The home writes it from the
// robot's link; a follower from the home's events. Either way, what changes reaches the watchers
// here: `reliable` channels through a topic per (robot, channel name) (every frame, in order),
// `latest` channels conflated per watcher (a slow watcher gets the newest sample when it drains).
// A watcher may choose channels by name: it is subscribed only to those channels' topics and only
// they are conflated for it, so a channel nobody here chose is never encoded for anyone; a watcher
// of every channel follows the robot's channel list as it changes (ADVERTISE, WITHDRAW, reconnect).

import type { LeaseEventFrame, LeaseInfo, ServerFrame, WatchingFrame } from '../protocol/frames.js';
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

export interface Numbered {
  seq: number;
  ts: number;
  data: unknown;
}

export class RobotView {
  readonly topic: string;
  channels = new Map<number, Channel>();
  latest = new Map<number, { ts: number; data: unknown }>();
  /** By channel name: the highest seq this node has seen (or its home stored), and the last RECENT numbered samples. */
  readonly numbered = new Map<string, number>();
  readonly recent = new Map<string, Numbered[]>();
  lastSeen: number | null = null;
  readonly watchers = new Map<string, Watcher>();

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
    if (channel.delivery === 'reliable') this.fanout.publish(robotChannelTopic(this.id, channel.name), frame);
    else this.fanout.conflate(this.conns(channel.name), `${this.id}:${channel.id}`, frame);
  }

  /** A numbered sample of channel `name` this node saw (or its home had not stored yet). */
  remember(name: string, s: Numbered): void {
    if (s.seq > (this.numbered.get(name) ?? -1)) this.numbered.set(name, s.seq);
    let ring = this.recent.get(name);
    if (!ring) {
      ring = [];
      this.recent.set(name, ring);
    }
    ring.push(s);
    if (ring.length > RECENT) ring.shift();
  }

  /** The watchers here who chose `name` (or every channel). */
  private *conns(name: string): Iterable<Connection> {
    for (const w of this.watchers.values()) if (!w.channels || w.channels.has(name)) yield w.conn;
  }

  /** The channel topics a watcher is subscribed to: its choice, or every current channel. */
  private topicsOf(w: Watcher): Set<string> {
    return new Set(w.channels ?? [...this.channels.values()].map((c) => c.name));
  }

  /**
   * The robot's channels now (it connected, advertised or withdrew): samples of channels it no
   * longer has go, and watchers of every channel follow the new list's topics.
   */
  setChannels(channels: Channel[]): void {
    const before = new Set([...this.channels.values()].map((c) => c.name));
    this.channels = new Map(channels.map((c) => [c.id, c]));
    for (const ch of this.latest.keys()) if (!this.channels.has(ch)) this.latest.delete(ch);
    const after = new Set(channels.map((c) => c.name));
    for (const w of this.watchers.values()) {
      if (w.channels) continue;
      for (const n of before) if (!after.has(n)) w.conn.unsubscribe(robotChannelTopic(this.id, n));
      for (const n of after) if (!before.has(n)) w.conn.subscribe(robotChannelTopic(this.id, n));
    }
  }

  /** The robot (re)connected, here or at its home, with these channels: older samples of channels it dropped go. */
  cameOnline(channels: Channel[], at: number): void {
    this.setChannels(channels);
    this.lastSeen = at;
  }

  /** Adds a watcher, or replaces a connection's earlier watch (and its choice of channels). */
  addWatcher(w: Watcher, frame: Omit<WatchingFrame, 'channels' | 'latest' | 'lastSeen' | 'robot'>, replay: ServerFrame[] = []): void {
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
    // A `since` replay: after the snapshot, before any live frame (the subscription comes next).
    for (const f of replay) w.conn.send(f);
    const old = this.watchers.get(w.conn.id);
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
