// What the raw test clients (sb.v1 over WebSocket, sbr.v1 over TLS) share: every frame received is
// kept; `take` / `next` consume the first unconsumed frames matching a predicate, waiting for them
// up to a deadline or until the connection ends, so tests wait on events and never sleep.

export const DEFAULT_MS = 10_000;

export abstract class FrameInbox<F> {
  /** Every frame received, in order. */
  readonly frames: F[] = [];
  private readonly consumed = new Set<F>();
  private readonly waiters = new Set<() => void>();

  /** Why the connection ended (for messages), or undefined while it is open. */
  protected abstract endReason(): string | undefined;

  /** Records a frame and wakes whoever waits. */
  protected receive(f: F): void {
    this.frames.push(f);
    this.wake();
  }

  /** The first unconsumed frame matching `pred` (consumed now); rejects after `ms` or once the connection ended without it. */
  next(pred: (f: F) => boolean, what: string, ms = DEFAULT_MS): Promise<F> {
    return this.take(pred, 1, what, ms).then((fs) => fs[0] as F);
  }

  /** The first `n` unconsumed frames matching `pred`, in arrival order (consumed once all are there). */
  take(pred: (f: F) => boolean, n: number, what: string, ms = DEFAULT_MS): Promise<F[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}; last frames: ${this.tail()}`)), ms);
      const check = () => {
        const hits: F[] = [];
        for (const f of this.frames) {
          if (!this.consumed.has(f) && pred(f)) hits.push(f);
          if (hits.length === n) break;
        }
        if (hits.length === n) {
          for (const f of hits) this.consumed.add(f);
          return done(undefined, hits);
        }
        const end = this.endReason();
        if (end !== undefined) done(new Error(`${end} before ${what}; last frames: ${this.tail()}`));
      };
      const done = (e?: Error, hits?: F[]) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        e ? reject(e) : resolve(hits as F[]);
      };
      this.waiters.add(check);
      check();
    });
  }

  protected wake(): void {
    for (const w of [...this.waiters]) w();
  }

  protected tail(): string {
    return JSON.stringify(this.frames.slice(-5)).slice(0, 600);
  }
}
