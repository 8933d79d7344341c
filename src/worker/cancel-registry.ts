/**
 * What a worker knows about cancel requests: the tasks it is running (to stop them) and the
 * ids cancelled lately (to refuse them if they reach this worker a moment after the request).
 */
/** A running task, told to stop. */
export interface Stoppable {
  stopFor(reason: 'cancel' | 'shutdown'): void;
}

export class CancelRegistry {
  private readonly running = new Map<string, Stoppable>();
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly rememberMs = 10 * 60_000,
    private readonly maxRemembered = 50_000,
  ) {}

  get size(): number {
    return this.running.size;
  }

  runningIds(): string[] {
    return [...this.running.keys()];
  }

  register(taskId: string, task: Stoppable): void {
    this.running.set(taskId, task);
  }

  unregister(taskId: string, task: Stoppable): void {
    if (this.running.get(taskId) === task) this.running.delete(taskId);
  }

  /** Returns true when the task runs here and was told to stop. */
  cancel(taskId: string): boolean {
    this.remember(taskId);
    const task = this.running.get(taskId);
    task?.stopFor('cancel');
    return task !== undefined;
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
    for (const task of this.running.values()) task.stopFor('shutdown');
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
