import type { Logger } from '../core/logger.js';

/** What of a BullMQ Worker the slot holding uses: its public concurrency, pause and resume. */
export interface SlotsOf {
  concurrency: number;
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): Promise<void> | void;
}

/**
 * Tasks of one queue that ended (hard limit, cancel) while their code still runs in the event
 * loop. BullMQ frees a task's slot when its processor settles, but the code goes on using the
 * loop: each such task keeps a slot held, by lowering the worker's concurrency (and pausing it
 * once none is left), until its code returns. So concurrency stays honest.
 */
export class AbandonedTasks {
  /** Tasks abandoned since the worker started. */
  total = 0;
  private readonly running = new Set<string>();
  private pausedHere = false;
  private closed = false;

  constructor(
    private readonly worker: SlotsOf,
    private concurrency: number,
    private readonly queue: string,
    private readonly logger: Logger,
  ) {}

  /** Tasks whose code still runs now. */
  get size(): number {
    return this.running.size;
  }

  ids(): string[] {
    return [...this.running];
  }

  hold(taskId: string, returned: Promise<void>): void {
    this.total++;
    this.running.add(taskId);
    this.logger.warn(
      { task_id: taskId, queue: this.queue, abandoned_running: this.running.size },
      'task abandoned: it ended, but its code ignores its signal and still runs; its slot stays held until it returns',
    );
    this.apply();
    void returned.then(() => {
      this.running.delete(taskId);
      this.logger.info({ task_id: taskId, queue: this.queue }, 'abandoned task returned; its slot is free');
      this.apply();
    });
  }

  /** The queue's new concurrency (pool-resize): abandoned tasks keep holding their slots of it. */
  resize(concurrency: number): void {
    this.concurrency = concurrency;
    this.apply();
  }

  /** A closing worker takes nothing more: leave its concurrency and pause alone. */
  close(): void {
    this.closed = true;
  }

  private apply(): void {
    if (this.closed) return;
    const free = this.concurrency - this.running.size;
    if (free >= 1) {
      this.worker.concurrency = free;
      if (this.pausedHere) {
        this.pausedHere = false;
        void Promise.resolve(this.worker.resume()).catch((error: Error) =>
          this.logger.warn({ err: error.message, queue: this.queue }, 'could not resume the queue'),
        );
      }
    } else if (!this.pausedHere) {
      // BullMQ's concurrency is at least 1: with no slot left, this worker stops fetching instead.
      this.pausedHere = true;
      this.worker
        .pause(true)
        .catch((error: Error) =>
          this.logger.warn({ err: error.message, queue: this.queue }, 'could not pause the queue'),
        );
    }
  }
}
