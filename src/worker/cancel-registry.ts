/**
 * What a worker knows about cancel requests: the tasks it is running (to stop them) and the
 * ids cancelled lately (to refuse them if they reach this worker a moment after the request).
 */
import type { TaskRunInfo } from './remote-control.js';

/** A TaskRun as the registry needs it: something it can tell to stop. */
export interface Cancellable {
  readonly taskId: string;
  stopFor(reason: 'cancel' | 'shutdown'): void;
  /** What `inspect active` shows of it. */
  describe?(): TaskRunInfo;
}

export class CancelRegistry {
  // The tasks themselves, not a map by id: every task is added and removed once, and an object
  // goes in and out of a set for less than a string key of a map; only a cancel looks up an id.
  private readonly running = new Set<Cancellable>();
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly rememberMs = 10 * 60_000,
    private readonly maxRemembered = 50_000,
  ) {}

  get size(): number {
    return this.running.size;
  }

  /** The running tasks as `inspect active` shows them. */
  describeRunning(): TaskRunInfo[] {
    return [...this.running].flatMap((task) => (task.describe ? [task.describe()] : []));
  }

  runningIds(): string[] {
    return [...new Set(Array.from(this.running, (task) => task.taskId))];
  }

  register(task: Cancellable): void {
    this.running.add(task);
  }

  unregister(task: Cancellable): void {
    this.running.delete(task);
  }

  /** Returns true when the task runs here and was told to stop. */
  cancel(taskId: string): boolean {
    this.remember(taskId);
    let found = false;
    for (const task of this.running) {
      if (task.taskId !== taskId) continue;
      task.stopFor('cancel');
      found = true;
    }
    return found;
  }

  /** Whether a cancel of the task was heard (after `since`, epoch ms: a manual retry's start). */
  wasCancelled(taskId: string, since = 0): boolean {
    const until = this.recent.get(taskId);
    if (until === undefined || until - this.rememberMs < since) return false;
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
