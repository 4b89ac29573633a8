// This node's picture of one robot, shared by its home and its follower: the channels, the latest
// sample of each, when it was last seen, and this node's watchers. The home writes it from the
// robot's link; a follower from the home's events. Either way, what changes reaches the watchers
// here: `reliable` channels through the robot's topic (every frame, in order), `latest` channels
// conflated per watcher (a slow watcher gets the newest sample when it drains).

import type { LeaseEventFrame, LeaseInfo, ServerFrame, WatchingFrame } from '../protocol/frames.js';
import type { Channel } from '../protocol/robot.js';
import { type Conflater, type Connection, type Fanout, robotTopic } from './ports.js';

export interface Watcher {
  conn: Connection;
  userId: string;
  admin: boolean;
}

export class RobotView {
  readonly topic: string;
  channels = new Map<number, Channel>();
  latest = new Map<number, { ts: number; data: unknown }>();
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
    if (this.watchers.size === 0) return;
    if (channel.delivery === 'reliable') this.fanout.publish(this.topic, frame);
    else this.fanout.conflate(this.conns(), `${this.id}:${channel.id}`, frame);
  }

  private *conns(): Iterable<Connection> {
    for (const w of this.watchers.values()) yield w.conn;
  }

  /** The robot (re)connected, here or at its home, with these channels: older samples of channels it dropped go. */
  cameOnline(channels: Channel[], at: number): void {
    this.channels = new Map(channels.map((c) => [c.id, c]));
    for (const ch of this.latest.keys()) if (!this.channels.has(ch)) this.latest.delete(ch);
    this.lastSeen = at;
  }

  addWatcher(w: Watcher, frame: Omit<WatchingFrame, 'channels' | 'latest' | 'lastSeen' | 'robot'>): void {
    w.conn.send({
      ...frame,
      robot: this.id,
      lastSeen: this.lastSeen,
      channels: [...this.channels.values()],
      latest: [...this.latest].map(([ch, s]) => ({ ch, ts: s.ts, data: s.data })),
    });
    w.conn.subscribe(this.topic);
    this.watchers.set(w.conn.id, w);
  }

  removeWatcher(conn: Connection): void {
    if (this.watchers.delete(conn.id)) conn.unsubscribe(this.topic);
  }

  /** Drops the watchers who may no longer see the robot, telling each why. */
  dropWatchers(keep: (w: Watcher) => boolean, frame: ServerFrame | undefined): void {
    for (const [id, w] of this.watchers) {
      if (keep(w)) continue;
      this.watchers.delete(id);
      if (frame) w.conn.send(frame);
      w.conn.unsubscribe(this.topic);
    }
  }

  onlineFrame(): ServerFrame {
    return { t: 'robot', robot: this.id, kind: 'online', channels: [...this.channels.values()] };
  }

  leaseFrame(lease: LeaseInfo | null, reason: LeaseEventFrame['reason']): ServerFrame {
    return { t: 'lease', robot: this.id, lease, reason };
  }
}
