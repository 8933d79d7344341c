import type { QueueEvents } from 'bullmq';
import { TaskNotFoundError } from '../core/errors.js';
import { isCancelMarker } from '../core/task-events.js';
import type { TaskRecord } from '../core/task.js';
import { isTerminal } from '../core/task.js';
import { completedFromEvent, type SubmittedTask } from './task-record.js';

type Settle = (record: TaskRecord) => void;

/**
 * Task ends this listener remembers (their ids, the newest): a task added while it listened is read
 * by get() only if its end is among them, or if more ends than this have been heard since its add.
 */
export const REMEMBERED_ENDS = 1024;

interface Waiter {
  settle: Settle;
  fail: (error: unknown) => void;
  /** Known to this process from its submit: its completed event alone makes its record. */
  submitted: SubmittedTask | undefined;
}

/**
 * One listener per queue dispatches terminal events to the callers waiting on each task, so a
 * thousand `get()` calls cost one subscription, not a thousand.
 */
export class ResultWaiter {
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Task ends heard (terminal events), and the ids of the last REMEMBERED_ENDS, oldest first. */
  private ends = 0;
  private readonly ended = new Set<string>();

  constructor(
    events: QueueEvents,
    private readonly load: (taskId: string) => Promise<TaskRecord | undefined>,
    /** A safety net for an event lost between subscribing and reading: a rare re-read, not the mechanism. */
    private readonly recheckMs = 5_000,
  ) {
    events.on('completed', ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) => {
      this.heardEnd(jobId);
      this.completed(jobId, returnvalue);
    });
    events.on('failed', ({ jobId }: { jobId: string }) => {
      this.heardEnd(jobId);
      this.check(jobId);
    });
    events.on('progress', ({ jobId, data }: { jobId: string; data: unknown }) => {
      // A pending task cancelled by any process ends with the caller's marker, not with a move
      // of its job; a worker's final word is followed by the move, heard above.
      if (!isCancelMarker(data)) return;
      this.heardEnd(jobId);
      this.check(jobId);
    });
  }

  get pending(): number {
    return this.waiters.size;
  }

  /** Task ends heard so far: a submit notes it (SubmittedTask.endsHeard) for its get(). */
  get endsHeard(): number {
    return this.ends;
  }

  private heardEnd(taskId: string): void {
    this.ends++;
    // Re-added, so that it counts as the newest.
    this.ended.delete(taskId);
    this.ended.add(taskId);
    if (this.ended.size > REMEMBERED_ENDS) this.ended.delete(this.ended.values().next().value!);
  }

  /**
   * Whether a task added when `endsHeard` ends had been heard may have ended unseen by its waiter:
   * its id is among the ends remembered, or too many ended since to tell.
   */
  private mayHaveEnded(taskId: string, endsHeard: number): boolean {
    return this.ended.has(taskId) || this.ends - endsHeard > REMEMBERED_ENDS;
  }

  /**
   * Resolves with the terminal record, or rejects after `timeoutMs`. A task this process submitted
   * (`submitted`) resolves from its completed event, without reading the job again.
   */
  wait(
    taskId: string,
    timeoutMs: number,
    onTimeout: () => Error,
    submitted?: SubmittedTask,
  ): Promise<TaskRecord> {
    return new Promise<TaskRecord>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const recheck = setInterval(() => this.check(taskId), this.recheckMs);
      recheck.unref();
      const waiter: Waiter = {
        settle: (record) => {
          done();
          resolve(record);
        },
        fail: (error) => {
          done();
          reject(error);
        },
        submitted,
      };
      const done = () => {
        clearTimeout(timer);
        clearInterval(recheck);
        const set = this.waiters.get(taskId);
        set?.delete(waiter);
        if (set?.size === 0) this.waiters.delete(taskId);
      };
      let set = this.waiters.get(taskId);
      if (!set) this.waiters.set(taskId, (set = new Set()));
      set.add(waiter);
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => waiter.fail(onTimeout()), timeoutMs);
      // Subscribed first, then read: a task that finished before we subscribed is seen here.
      // One added while we listened is read only if its end was heard before this wait began (the
      // periodic re-read stays the safety net for an event lost on the way).
      const since = submitted?.endsHeard;
      if (since === undefined || this.mayHaveEnded(taskId, since)) this.check(taskId);
    });
  }

  /** Rejects every waiter (on close). */
  abortAll(error: Error): void {
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.fail(error);
  }

  private completed(taskId: string, returnvalue: unknown): void {
    const set = this.waiters.get(taskId);
    if (!set || set.size === 0) return;
    let readAgain = false;
    for (const w of [...set]) {
      const record = w.submitted && completedFromEvent(w.submitted, returnvalue);
      if (record) w.settle(record);
      else readAgain = true;
    }
    if (readAgain) this.check(taskId);
  }

  private check(taskId: string): void {
    const set = this.waiters.get(taskId);
    if (!set || set.size === 0) return;
    this.load(taskId).then(
      (record) => {
        if (!record) {
          for (const w of [...(this.waiters.get(taskId) ?? [])]) w.fail(new TaskNotFoundError(taskId));
          return;
        }
        if (!isTerminal(record.status)) return;
        for (const w of [...(this.waiters.get(taskId) ?? [])]) w.settle(record);
      },
      (error: unknown) => {
        for (const w of [...(this.waiters.get(taskId) ?? [])]) w.fail(error);
      },
    );
  }
}
