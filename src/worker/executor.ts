import type { PoolKind } from '../core/config.js';
import type { TaskJobData } from '../core/task.js';
import type { SharedLimits, TaskLogger } from '../registry/task-context.js';
import type { ExecOutcome, FailureInfo, TaskSink } from './execute-service.js';
import { LazyAbort, runService, type ServiceRun } from './execute-service.js';

/** One task under way in some pool. */
export interface Execution {
  readonly outcome: Promise<ExecOutcome>;
  /** Aborts the task's signal so it can clean up (soft limit, cancel, shutdown). */
  abort(reason: Error): void;
  /** Ends the task now (hard limit, cancel grace over); `outcome` resolves with `reason`. */
  kill(reason: FailureInfo): void;
}

export interface Executor {
  readonly kind: PoolKind;
  start(
    data: TaskJobData,
    attempt: number,
    sink: TaskSink,
    log: TaskLogger,
    limits: SharedLimits,
  ): Execution | Promise<Execution>;
  close(): Promise<void>;
}

/**
 * Runs tasks in this process's event loop: right for I/O-bound AI calls, hundreds at once. A task
 * past its hard limit cannot be stopped here, so it is detached: its result and progress are ignored.
 */
export class AsyncExecutor implements Executor {
  readonly kind = 'async' as const;

  start(
    data: TaskJobData,
    attempt: number,
    sink: TaskSink,
    log: TaskLogger,
    limits: SharedLimits,
  ): Execution {
    return new AsyncExecution(data, attempt, sink, log, limits);
  }

  async close(): Promise<void> {}
}

class AsyncExecution implements Execution {
  private readonly controller = new LazyAbort();
  private readonly run: ServiceRun;

  constructor(data: TaskJobData, attempt: number, sink: TaskSink, log: TaskLogger, limits: SharedLimits) {
    this.run = runService(data, attempt, this.controller, sink, log, limits);
  }

  get outcome(): Promise<ExecOutcome> {
    return this.run.outcome;
  }

  abort(reason: Error): void {
    this.controller.abort(reason);
  }

  kill(reason: FailureInfo): void {
    this.controller.abort(new Error(reason.message));
    this.run.kill(reason);
  }
}
