// Fixed-window counters per key (an IP, a username), bounded in the number of keys so a flood of
// distinct keys cannot grow memory without limit. Per node: in a cluster each node counts alone.

export type Clock = () => number;

interface Window {
  count: number;
  resetAt: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: Clock = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  /** Seconds until `key` may try again, or 0 when it is under its limit. Does not count. */
  blockedFor(key: string): number {
    const w = this.windows.get(key);
    const t = this.now();
    if (!w || w.resetAt <= t || w.count < this.limit) return 0;
    return Math.max(1, Math.ceil((w.resetAt - t) / 1000));
  }

  /** Counts one event for `key`. */
  hit(key: string): void {
    const t = this.now();
    const w = this.windows.get(key);
    if (w && w.resetAt > t) {
      w.count++;
      return;
    }
    if (w) this.windows.delete(key);
    if (this.windows.size >= this.maxKeys) this.evict(t);
    this.windows.set(key, { count: 1, resetAt: t + this.windowMs });
  }

  /** Counts one event and returns the wait in seconds if that event went over the limit. */
  take(key: string): number {
    const wait = this.blockedFor(key);
    if (wait > 0) return wait;
    this.hit(key);
    return 0;
  }

  reset(key: string): void {
    this.windows.delete(key);
  }

  private evict(t: number): void {
    for (const [k, w] of this.windows) if (w.resetAt <= t) this.windows.delete(k);
    // Still full: drop the oldest windows (Map keeps insertion order).
    for (const k of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) break;
      this.windows.delete(k);
    }
  }
}
