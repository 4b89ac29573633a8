// One publish budget per user, whichever way the messages come (REST or any number of WebSockets):
// a token bucket of `burst` publishes refilled at `perSecond`. Per node, deliberately: a counter
// shared by the cluster would cost a network round trip on every publish, so a user spreading
// publishes over N nodes gets at most N times the rate (the documented bound). The number of
// tracked users is bounded, so the map cannot grow without limit.

import { RateLimitedError } from '../errors.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class PublishBudget {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
    private readonly maxUsers = 100_000,
  ) {}

  /** Takes one publish from the user's budget, or throws RATE_LIMITED with the seconds to wait. */
  take(userId: string): void {
    const t = this.now();
    let b = this.buckets.get(userId);
    if (!b) {
      if (this.buckets.size >= this.maxUsers) this.evict(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(userId, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    if (b.tokens < 1) {
      const waitMs = Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
      throw new RateLimitedError(
        Math.max(1, Math.ceil(waitMs / 1000)),
        `at most ${this.perSecond} publishes per second per user (burst ${this.burst}), REST and WebSocket together`,
        Math.max(1, waitMs),
      );
    }
    b.tokens -= 1;
  }

  /** Users currently tracked (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private evict(t: number): void {
    // A bucket that has refilled is the same as no bucket: forget those first.
    for (const [id, b] of this.buckets) if (b.tokens + ((t - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(id);
    // Still full: the least recently created go (Map keeps insertion order); they start afresh.
    for (const id of this.buckets.keys()) {
      if (this.buckets.size < this.maxUsers) break;
      this.buckets.delete(id);
    }
  }
}
