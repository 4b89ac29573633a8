// Which robots this node holds: connected here, and whose control lease it holds. Listings ask it
// who is online without asking every actor; a draining node waits on it for the leases of the
// robots it held to move to the nodes they reconnect to (each new home asks for a handoff).

export class RobotsHere {
  private readonly online = new Set<string>();
  private readonly leased = new Set<string>();
  /** Woken whenever a lease here ends or moves. */
  private released: (() => void) | undefined;

  /** For the robot actors: a link came or went. */
  readonly presence = {
    online: (robotId: string) => void this.online.add(robotId),
    offline: (robotId: string) => void this.online.delete(robotId),
  };

  /** For the robot actors: this node started or stopped holding a robot's lease. */
  readonly leaseHeld = (robotId: string, held: boolean): void => {
    if (held) {
      this.leased.add(robotId);
      return;
    }
    if (this.leased.delete(robotId)) this.released?.();
  };

  isOnline(robotId: string): boolean {
    return this.online.has(robotId);
  }

  /** The robots connected here now. */
  connected(): string[] {
    return [...this.online];
  }

  /** Resolves, with how many of `robotIds` still have their lease here, once none does or after `ms`. */
  async leasesMoved(robotIds: string[], ms: number): Promise<number> {
    const left = () => robotIds.filter((r) => this.leased.has(r)).length;
    if (left() === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    try {
      while (left() > 0) {
        const moved = new Promise<'moved'>((resolve) => {
          this.released = () => resolve('moved');
        });
        if ((await Promise.race([moved, deadline])) !== 'moved') break;
      }
      return left();
    } finally {
      this.released = undefined;
      clearTimeout(timer);
    }
  }
}
