/**
 * What a worker knows about cancel requests: the tasks it is running (to stop them) and the
 * ids cancelled lately (to refuse them if they reach this worker a moment after the request).
 */
export class CancelRegistry {
  private readonly running = new Map<string, (reason: 'cancel' | 'shutdown') => void>();
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly rememberMs = 10 * 60_000,
    private readonly maxRemembered = 50_000,
  ) {}

  get size(): number {
    return this.running.size;
  }

  register(taskId: string, stop: (reason: 'cancel' | 'shutdown') => void): () => void {
    this.running.set(taskId, stop);
    return () => {
      if (this.running.get(taskId) === stop) this.running.delete(taskId);
    };
  }

  /** Returns true when the task runs here and was told to stop. */
  cancel(taskId: string): boolean {
    this.remember(taskId);
    const stop = this.running.get(taskId);
    stop?.('cancel');
    return stop !== undefined;
  }

  wasCancelled(taskId: string): boolean {
    const until = this.recent.get(taskId);
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.recent.delete(taskId);
      return false;
    }
    return true;
  }

  /** Tells every running task to stop because the worker is leaving. */
  shutdownAll(): number {
    for (const stop of this.running.values()) stop('shutdown');
    return this.running.size;
  }

  private remember(taskId: string): void {
    this.recent.set(taskId, Date.now() + this.rememberMs);
    if (this.recent.size > this.maxRemembered) {
      // Maps iterate in insertion order: the oldest go first.
      for (const key of this.recent.keys()) {
        this.recent.delete(key);
        if (this.recent.size <= this.maxRemembered) break;
      }
    }
  }
}
