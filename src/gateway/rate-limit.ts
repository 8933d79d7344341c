/** A token bucket: `rate` tokens a second, holding at most `burst`. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Seconds until one token is back. */
  waitS(): number {
    return Math.max(1, Math.ceil((1 - this.tokens) / this.rate));
  }
}

/** A counter every gateway on the store shares (Store.tryHit). */
export interface SharedCounter {
  tryHit(key: string, limit: number, windowMs: number): Promise<{ ok: boolean; retryAfterMs: number }>;
}

/**
 * Requests per user: a token bucket on this node answers most requests without a round trip,
 * and, with several gateways on a shared store, a counter in the store holds the user to `burst`
 * requests per `burst / perSecond` seconds across all of them (a fixed window: cheaper than a
 * shared bucket, and the same rate over time). Idle buckets are forgotten.
 */
export class UserRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly sweep: NodeJS.Timeout;
  private readonly windowMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly shared?: SharedCounter,
    private readonly onSharedError?: (error: Error) => void,
  ) {
    this.sweep = setInterval(() => this.buckets.clear(), 10 * 60_000);
    this.sweep.unref();
    this.windowMs = perSecond > 0 ? Math.max(1_000, Math.ceil((burst / perSecond) * 1000)) : 0;
  }

  /** Resolves 0 when allowed, else the seconds to wait. */
  async check(userId: string): Promise<number> {
    if (this.perSecond <= 0) return 0;
    let bucket = this.buckets.get(userId);
    if (!bucket) this.buckets.set(userId, (bucket = new TokenBucket(this.perSecond, this.burst)));
    if (!bucket.take()) return bucket.waitS();
    if (!this.shared) return 0;
    try {
      const hit = await this.shared.tryHit(`http:${userId}`, this.burst, this.windowMs);
      return hit.ok ? 0 : Math.max(1, Math.ceil(hit.retryAfterMs / 1000));
    } catch (error) {
      // The store being down must not lock every user out; this node's bucket still holds.
      this.onSharedError?.(error as Error);
      return 0;
    }
  }

  close(): void {
    clearInterval(this.sweep);
  }
}
