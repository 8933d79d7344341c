/** The caller's handle on one submitted task: wait for it, read it, cancel it. */
import { TaskNotFoundError } from '../core/errors.js';
import type { QueueKind, TaskRecord, TaskStatus } from '../core/task.js';
import type { SubmittedTask } from './task-record.js';

export interface WaitOptions {
  /** Seconds to wait; default: forever. */
  timeout?: number;
}

export interface CancelResult {
  task_id: string;
  /** The task's status after the request (`running` until the worker confirms). */
  status: TaskStatus;
  /** False when the task had already ended. */
  cancelled: boolean;
}

export interface TaskHandle {
  readonly id: string;
  readonly queue: QueueKind;
  /** False when the task id already existed and this submit was a no-op. */
  readonly created: boolean;
  /** Resolves with the final record (its `result` is the service's result); rejects on failure. */
  get(options?: WaitOptions): Promise<TaskRecord>;
  status(): Promise<TaskRecord>;
  cancel(): Promise<CancelResult>;
}

/** What a handle needs of the app (the app itself; an interface keeps the two modules apart). */
export interface HandleDeps {
  waitFor(
    taskId: string,
    kind: QueueKind,
    options?: WaitOptions,
    submitted?: SubmittedTask,
  ): Promise<TaskRecord>;
  getTask(taskId: string, kind?: QueueKind): Promise<TaskRecord | undefined>;
  cancel(taskId: string): Promise<CancelResult>;
}

/** A class, not closures: a bulk submit makes one handle per task. */
export class Handle implements TaskHandle {
  constructor(
    private readonly app: HandleDeps,
    readonly id: string,
    readonly queue: QueueKind,
    readonly created: boolean,
    /** Set when this submit made the task: get() then resolves from its completed event alone. */
    private readonly submitted?: SubmittedTask,
  ) {}

  get(options?: WaitOptions): Promise<TaskRecord> {
    return this.app.waitFor(this.id, this.queue, options, this.submitted);
  }

  async status(): Promise<TaskRecord> {
    const record = await this.app.getTask(this.id, this.queue);
    if (!record) throw new TaskNotFoundError(this.id);
    return record;
  }

  cancel(): Promise<CancelResult> {
    return this.app.cancel(this.id);
  }
}
