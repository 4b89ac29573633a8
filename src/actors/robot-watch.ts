// The session of a socket that only watches one robot (the Foxglove endpoint): it asks the robot's
// actor to watch for the connection, as a `watch` frame would, and ends the watch when the socket
// closes. The access token is checked once, at the upgrade; the socket then lives as long as its
// login session (closed when that ends or the account is disabled) and its role on the robot (the
// actor ends the watch when access is revoked), so a long look at a robot needs no re-authentication.

import type { AccessClaims } from '../auth/access-tokens.js';
import type { Connection } from './ports.js';
import type { RobotMsg, RobotReplies, RobotReply } from './robot.js';
import type { ActorRef, Clock } from './runtime.js';

export interface RobotWatchDeps {
  robot(id: string): ActorRef<RobotMsg, RobotReply, RobotReplies>;
  clock: Clock;
}

/** How long a watch may wait for the robot's actor (as a `watch` frame), and the ask beyond it. */
const WATCH_DEADLINE_MS = 5_000;
const WATCH_ASK_MS = WATCH_DEADLINE_MS + 1_000;

export class RobotWatch {
  readonly expiresAt: number;
  readonly sid: string | undefined;
  private readonly admin: boolean;
  private reqId = 0;
  private closed = false;

  constructor(
    private readonly conn: Connection,
    claims: AccessClaims,
    readonly robot: string,
    private readonly deps: RobotWatchDeps,
  ) {
    this.expiresAt = claims.exp * 1000;
    this.sid = claims.sid;
    this.admin = claims.admin;
  }

  /** Watches (again), for these channels; rejects with the actor's error (NOT_FOUND: no such robot, or no role on it). */
  async watch(channels: string[]): Promise<void> {
    if (this.closed) return;
    await this.deps.robot(this.robot).ask(
      {
        type: 'watch',
        conn: this.conn,
        by: { user: this.conn.user, admin: this.admin },
        reqId: ++this.reqId,
        deadline: this.deps.clock.now() + WATCH_DEADLINE_MS,
        channels,
      },
      WATCH_ASK_MS,
    );
    // Closed while the actor added it: take it out again.
    if (this.closed) this.deps.robot(this.robot).tell({ type: 'unwatch', conn: this.conn });
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.deps.robot(this.robot).tell({ type: 'unwatch', conn: this.conn });
  }
}
