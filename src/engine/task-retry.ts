/**
 * A manual retry (the dashboard's, `aiecs retry`): a task that ended in failure runs again under
 * the same id, as a new attempt. Failed, timed-out and cancelled tasks are all BullMQ failed
 * jobs, so BullMQ's documented `job.retry('failed')` moves the job back to waiting; before it, the
 * ended run is kept in the job's data (`runs`), and what would make the new run look ended or
 * cancelled is cleared: the last run's progress payload and any cancel request in the store.
 */
import { TaskNotFoundError, TaskNotRetryableError } from '../core/errors.js';
import type { QueueKind, Run, StoredTaskData } from '../core/task.js';
import { QUEUE_KINDS, TaskStatus } from '../core/task.js';
import type { Queue } from 'bullmq';
import type { Store } from './store.js';
import { retryPending } from '../core/task-events.js';
import type { BullState, TaskJob } from './task-record.js';
import { toTaskRecord } from './task-record.js';

export interface RetryResult {
  task_id: string;
  status: typeof TaskStatus.PENDING;
  /** The attempt the new run will be: one more than any before it, so it may exceed max_attempts. */
  attempt: number;
}

const RETRYABLE: ReadonlySet<string> = new Set([
  TaskStatus.FAILED,
  TaskStatus.TIMED_OUT,
  TaskStatus.CANCELLED,
]);

/** What a retry needs of the app (the app itself; an interface keeps the two modules apart). */
export interface RetryDeps {
  queue(kind: QueueKind): Promise<Queue>;
  store(): Promise<Store>;
}

export async function retryTask(app: RetryDeps, taskId: string): Promise<RetryResult> {
  let found: { job: TaskJob; queue: QueueKind } | undefined;
  for (const queue of QUEUE_KINDS) {
    const job = (await (await app.queue(queue)).getJob(taskId)) as TaskJob | undefined;
    if (job) {
      found = { job, queue };
      break;
    }
  }
  if (!found) throw new TaskNotFoundError(taskId);
  const { job, queue } = found;
  const state = (await job.getState()) as BullState;
  const record = toTaskRecord(job, state, queue);
  if (!RETRYABLE.has(record.status)) throw new TaskNotRetryableError(taskId, record.status);
  // Cancelled while pending: a worker has yet to drain it from its queue; then it is a failed job.
  if (state !== 'failed')
    throw new TaskNotRetryableError(
      taskId,
      record.status,
      'it is still leaving its queue; retry in a moment',
    );

  const run: Run = {
    attempt: record.attempt,
    status: record.status,
    started_at: record.started_at,
    finished_at: record.finished_at,
    worker: record.worker,
    error: record.error,
  };
  const data: StoredTaskData = { ...job.data, runs: [...(job.data.runs ?? []), run] };
  const started = job.attemptsStarted ?? 0;
  const store = await app.store();
  // The ended run's payload goes before the move: a worker taking the job at once must not find
  // it cancelled. The gateways' bridges announce this pending word as the retry (reopensAfterEnd).
  const pending = retryPending(record.attempt, started);
  await Promise.all([
    job.updateData(data),
    store.clearCancel(taskId),
    job.updateProgress(pending as unknown as object),
  ]);
  await job.retry('failed');
  // Attempts already spent stay counted (BullMQ's attemptsMade): the new run is the next one.
  return { task_id: taskId, status: TaskStatus.PENDING, attempt: (job.attemptsMade ?? 0) + 1 };
}
