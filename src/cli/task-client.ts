/** What the client commands need of the engine, whichever way they reach it (see client.ts). */
import type { WireSubmitOptions } from '../core/submission.js';
import type { QueueKind, TaskRecord, TaskStatus } from '../core/task.js';
import type { CancelResult } from '../engine/app.js';
import type { RetryResult } from '../engine/task-retry.js';
import type { WorkerHeartbeat } from '../engine/store.js';
import type { WireWorkflowIds, WireWorkflowTree } from '../gateway/workflow-schema.js';

export interface SubmitResult {
  task_id: string;
  queue: QueueKind;
  status: TaskStatus;
}

export interface WorkflowAccepted {
  root_id: string;
  status: TaskStatus;
  tree: WireWorkflowIds;
}

export interface TaskClient {
  /** Set when no worker can ever run a task submitted through this client while it is open. */
  readonly cannotWait?: string;
  /**
   * Submits a wire (snake_case) request; validation errors come back as ValidationError. With a
   * template, the request has no task_name, mode or service, and no queue means the template's.
   */
  submit(
    queue: QueueKind | undefined,
    request: unknown,
    options: WireSubmitOptions,
    template?: string,
  ): Promise<SubmitResult>;
  /** The task's record, or undefined for an unknown id. */
  get(taskId: string): Promise<TaskRecord | undefined>;
  /**
   * The terminal record, whatever the outcome (failed tasks resolve too); rejects with
   * WaitTimeoutError when `timeoutS` passes first.
   */
  wait(taskId: string, queue: QueueKind, timeoutS?: number): Promise<TaskRecord>;
  /** Rejects with TaskNotFoundError for an unknown id. */
  cancel(taskId: string): Promise<CancelResult>;
  /** Runs a failed, timed-out or cancelled task again (TaskNotRetryableError otherwise). */
  retry(taskId: string): Promise<RetryResult>;
  workers(): Promise<WorkerHeartbeat[]>;
  /** Submits a workflow as POST /api/workflows takes it: checked whole, then queued whole. */
  submitWorkflow(tree: unknown): Promise<WorkflowAccepted>;
  /** The workflow a task belongs to, with each member's record (a lone task: a tree of one). */
  tree(taskId: string): Promise<{ root_id: string; tree: WireWorkflowTree }>;
  close(): Promise<void>;
}
