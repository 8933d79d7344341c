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

/** One bucket per user on this gateway node; idle buckets are forgotten. */
export class UserRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.sweep = setInterval(() => this.buckets.clear(), 10 * 60_000);
    this.sweep.unref();
  }

  /** Returns 0 when allowed, else the seconds to wait. */
  check(userId: string): number {
    if (this.perSecond <= 0) return 0;
    let bucket = this.buckets.get(userId);
    if (!bucket) this.buckets.set(userId, (bucket = new TokenBucket(this.perSecond, this.burst)));
    return bucket.take() ? 0 : bucket.waitS();
  }

  close(): void {
    clearInterval(this.sweep);
  }
}
