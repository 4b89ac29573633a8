// A room actor's presence: the users with a live connection here, what the other nodes last shared
// of theirs, and the subscribers told of every change of the union. Owned by the room actor and
// called only in its mailbox steps; the Presence port carries this node's whole set to the others.
// A direct room whose members blocked each other hides them from each other: each sees only itself.

import type { Presence } from '../cluster/presence.js';
import type { UserRef } from '../protocol/frames.js';
import type { Connection, Fanout } from './ports.js';
import type { Clock } from './runtime.js';

/** In a cluster, each node shares its present users this often; another node's entry lapses after 3 missed shares. */
export const PRESENCE_SHARE_MS = 3_000;

export class RoomPresence {
  private readonly present = new Map<string, { user: UserRef; conns: Set<string> }>();
  /** Other nodes' present users (cluster only), with when each last shared them. */
  private readonly remote = new Map<string, { users: UserRef[]; at: number }>();
  /** Whether this node has asked the others for their presence in this room yet. */
  private asked = false;
  private timer: unknown;
  private ticking = false;
  /** The members blocked each other (a direct room): nobody is told of anyone else. */
  private hidden = false;

  constructor(
    private readonly roomId: string,
    private readonly topic: string,
    private readonly deps: { presence: Presence; fanout: Fanout; clock: Clock },
    /** Schedules `tick` as a mailbox step. */
    private readonly scheduleTick: () => void,
  ) {}

  stop(): void {
    this.deps.clock.clearTimeout(this.timer);
  }

  /** A connection joined the live stream: it gets the snapshot, the others hear of a new user. */
  arrive(conn: Connection): void {
    let p = this.present.get(conn.user.id);
    if (!p) {
      const fresh = { user: conn.user, conns: new Set<string>() };
      p = fresh;
      this.change(() => this.present.set(conn.user.id, fresh), conn);
      this.share();
    } else if (!this.asked) this.share();
    p.conns.add(conn.id);
    conn.send({ t: 'presence', room: this.roomId, op: 'snapshot', users: this.visibleTo(conn.user) });
  }

  /**
   * Hides the members from each other, or shows them again: each of `conns` is told at once (a
   * `leave` of the others, or a fresh snapshot).
   */
  setHidden(hidden: boolean, conns: Connection[]): void {
    if (hidden === this.hidden) return;
    this.hidden = hidden;
    for (const conn of conns) {
      const others = [...this.visible().values()].filter((u) => u.id !== conn.user.id);
      if (!hidden) conn.send({ t: 'presence', room: this.roomId, op: 'snapshot', users: this.visibleTo(conn.user) });
      else if (others.length) conn.send({ t: 'presence', room: this.roomId, op: 'leave', users: others });
    }
  }

  private visibleTo(user: UserRef): UserRef[] {
    const all = [...this.visible().values()];
    return this.hidden ? all.filter((u) => u.id === user.id) : all;
  }

  /** A connection left the room (live or catching up). */
  depart(conn: Connection): void {
    const p = this.present.get(conn.user.id);
    if (!p) return;
    p.conns.delete(conn.id);
    if (p.conns.size > 0) return;
    this.change(() => this.present.delete(conn.user.id));
    this.share();
  }

  /** Another node's whole set; `anyoneHere`: this node has a connection in the room. */
  remoteShared(node: string, users: UserRef[], ask: boolean, anyoneHere: boolean): void {
    // With nobody subscribed here, other nodes' presence is nobody's business (and tracking it would
    // keep this actor from passivating); the first arrival asks for it again.
    if (!anyoneHere) {
      this.remote.clear();
      this.asked = false;
      return;
    }
    if (ask && this.present.size > 0) this.share();
    const now = this.deps.clock.now();
    this.change(() => {
      if (users.length) this.remote.set(node, { users, at: now });
      else this.remote.delete(node);
    });
  }

  /** Re-shares this node's presence, and forgets other nodes' that lapsed (a node that died). */
  tick(): void {
    if (this.present.size > 0) this.share();
    const stale = this.deps.clock.now() - 3 * PRESENCE_SHARE_MS;
    this.change(() => {
      for (const [node, r] of this.remote) if (r.at < stale) this.remote.delete(node);
    });
  }

  /** Everyone present in the room: here, and on the other nodes of a cluster. */
  private visible(): Map<string, UserRef> {
    const all = new Map<string, UserRef>();
    for (const p of this.present.values()) all.set(p.user.id, p.user);
    for (const r of this.remote.values()) for (const u of r.users) all.set(u.id, u);
    return all;
  }

  /** Keeps the timer running while anyone is present, here or elsewhere (and only then: it would keep the actor from passivating). */
  private ensureTick(): void {
    if (this.ticking || (this.present.size === 0 && this.remote.size === 0)) return;
    this.ticking = true;
    this.timer = this.deps.clock.setTimeout(() => {
      this.ticking = false;
      this.scheduleTick();
    }, PRESENCE_SHARE_MS);
  }

  /** Applies a change and tells the subscribers who appeared (except `arriving`, who gets a snapshot) and who left. */
  private change(change: () => void, arriving?: Connection): void {
    const before = this.visible();
    change();
    const after = this.visible();
    const joined = [...after.values()].filter((u) => !before.has(u.id));
    const left = [...before.values()].filter((u) => !after.has(u.id));
    if (this.hidden) {
      this.ensureTick();
      return;
    }
    if (joined.length) this.deps.fanout.publish(this.topic, { t: 'presence', room: this.roomId, op: 'join', users: joined }, arriving);
    if (left.length) this.deps.fanout.publish(this.topic, { t: 'presence', room: this.roomId, op: 'leave', users: left });
    this.ensureTick();
  }

  private share(): void {
    this.deps.presence.share(
      this.roomId,
      [...this.present.values()].map((p) => p.user),
      !this.asked,
    );
    this.asked = true;
  }
}
