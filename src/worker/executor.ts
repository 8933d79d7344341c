import type { PoolKind } from '../core/config.js';
import type { TaskJobData } from '../core/task.js';
import type { SharedLimits, TaskLogger } from '../core/task-context.js';
import type { ExecOutcome, FailureInfo, LiveRuns, ProgressSink, WorkerServices } from './execute-service.js';
import { runService } from './execute-service.js';

/** The service method's call a TaskRun started, under way in some pool. */
export interface ServiceCall {
  readonly outcome: Promise<ExecOutcome>;
  /** Aborts the task's signal so it can clean up (soft limit, cancel, shutdown). */
  abort(reason: Error): void;
  /** Ends the task now (hard limit, cancel grace over); `outcome` resolves with `reason`. */
  kill(reason: FailureInfo): void;
  /**
   * In this process's event loop only: undefined once the task's code has returned, else a
   * promise of that. A killed child process has no such code left, so the process pool has none.
   */
  whenReturned?(): Promise<void> | undefined;
}

export interface Executor {
  readonly kind: PoolKind;
  start(
    data: TaskJobData,
    attempt: number,
    sink: ProgressSink,
    log: TaskLogger,
    limits: SharedLimits,
  ): ServiceCall | Promise<ServiceCall>;
  close(): Promise<void>;
}

/**
 * Runs tasks in this process's event loop: right for I/O-bound AI calls, hundreds at once. A task
 * past its hard limit cannot be stopped here, so it is detached: its result and progress are
 * ignored, and the task runner holds its slot until its code returns (whenReturned).
 */
export class AsyncExecutor implements Executor {
  readonly kind = 'async' as const;

  /** `live` is told which tasks' code is in the event loop (the blocked-loop watch). */
  constructor(
    private readonly services: WorkerServices,
    private readonly live?: LiveRuns,
  ) {}

  start(
    data: TaskJobData,
    attempt: number,
    sink: ProgressSink,
    log: TaskLogger,
    limits: SharedLimits,
  ): ServiceCall {
    // The service run is the execution itself: one object per task, not a wrapper around it.
    return runService(this.services, data, attempt, sink, log, limits, this.live);
  }

  async close(): Promise<void> {}
}
