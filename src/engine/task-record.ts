import type { Job } from 'bullmq';
import type { TaskErrorInfo } from '../core/errors.js';
import type { QueueKind, StoredResources, StoredTaskData, TaskJobData, TaskRecord } from '../core/task.js';
import { fromStoredData } from '../core/task.js';
import { TaskStatus, fullResources } from '../core/task.js';

/**
 * What a worker writes with `job.updateProgress` (and what `progress` events carry): the live
 * state of a task between the states BullMQ itself records.
 */
export interface ProgressPayload {
  status: TaskStatus;
  progress: number;
  message: string;
  attempt: number;
  seq: number;
  timestamp: number;
  error?: TaskErrorInfo;
  resources?: StoredResources;
  worker?: string;
  /** Times the task was started again without its own error spending an attempt; left out when 0. */
  redeliveries?: number;
}

/**
 * What a worker returns for a completed task (BullMQ's return value): the service's result plus
 * what the task used. Kept small: it is written to the job and to the event stream for every
 * task. The worker is the job's `processedBy`.
 */
export interface ResultEnvelope {
  result: unknown;
  resources: StoredResources;
  /** The completed event's seq; left out when the attempt reported nothing (see envelopeSeq). */
  seq?: number;
  attempt: number;
  /** See ProgressPayload; left out when 0. */
  redeliveries?: number;
}

/**
 * Progress events of one run sort after the previous run's. A run is an attempt or a redelivery:
 * run number = attempt + redeliveries (BullMQ's attemptsStarted while it runs).
 */
export const SEQ_PER_ATTEMPT = 1_000_000;

/** The seq a completed task was announced with: the run's first when it reported nothing. */
export function envelopeSeq(envelope: ResultEnvelope): number {
  return envelope.seq ?? (envelope.attempt + (envelope.redeliveries ?? 0)) * SEQ_PER_ATTEMPT + 1;
}

/**
 * Which try of its budget a running job is, and how often it was delivered again besides.
 * BullMQ counts every start (attemptsStarted) and every finished try (attemptsMade, raised by a
 * failure that will be retried): a start that ended with neither (its worker died and the lock
 * expired, or it was sent back at a drain deadline) is a redelivery and spends no attempt.
 */
export function runOf(job: Pick<TaskJob, 'attemptsStarted' | 'attemptsMade'>): {
  attempt: number;
  redeliveries: number;
} {
  const attempt = (job.attemptsMade ?? 0) + 1;
  return { attempt, redeliveries: Math.max(0, (job.attemptsStarted ?? 0) - attempt) };
}

export type BullState =
  'completed' | 'failed' | 'delayed' | 'active' | 'waiting' | 'waiting-children' | 'prioritized' | 'unknown';

export type TaskJob = Job<StoredTaskData, ResultEnvelope>;

/** The job's task data with every field (see StoredTaskData). */
export function jobTaskData(job: TaskJob): TaskJobData {
  return fromStoredData(job.queueName as QueueKind, job.data, job.id ?? '', job.timestamp);
}

export function progressPayload(job: Pick<TaskJob, 'progress'>): ProgressPayload | undefined {
  const p = job.progress as unknown;
  return typeof p === 'object' && p !== null && 'status' in p ? (p as ProgressPayload) : undefined;
}

const FAILURE_STATUSES: ReadonlySet<string> = new Set([
  TaskStatus.FAILED,
  TaskStatus.TIMED_OUT,
  TaskStatus.CANCELLED,
]);

/** Terminal states never change: BullMQ's state decides first, the worker's payload refines it. */
export function deriveStatus(state: BullState | string, progress: ProgressPayload | undefined): TaskStatus {
  switch (state) {
    case 'completed':
      return TaskStatus.COMPLETED;
    case 'failed':
      return progress && FAILURE_STATUSES.has(progress.status) ? progress.status : TaskStatus.FAILED;
    case 'active':
      // A task cancelled while pending is taken by a worker only to be dropped: it stays cancelled.
      return progress?.status === TaskStatus.CANCELLED && progress.seq < SEQ_PER_ATTEMPT
        ? TaskStatus.CANCELLED
        : TaskStatus.RUNNING;
    default:
      return progress?.status === TaskStatus.CANCELLED ? TaskStatus.CANCELLED : TaskStatus.PENDING;
  }
}

const iso = (ms: number | undefined | null) => (ms ? new Date(ms).toISOString() : null);

export function toTaskRecord(job: TaskJob, state: BullState | string, queue: QueueKind): TaskRecord {
  const data = fromStoredData(queue, job.data, job.id ?? '', job.timestamp);
  const progress = progressPayload(job);
  const status = deriveStatus(state, progress);
  const envelope = status === TaskStatus.COMPLETED ? (job.returnvalue as ResultEnvelope | null) : null;
  const finished = status !== TaskStatus.PENDING && status !== TaskStatus.RUNNING;
  const maxAttempts = job.opts.attempts ?? 1;
  // A task cancelled before it ran was only drained by a worker: it never started.
  const neverRan =
    status === TaskStatus.CANCELLED && progress !== undefined && progress.seq < SEQ_PER_ATTEMPT;

  // From BullMQ's counters (see runOf). Not running, attemptsMade also counts a try that completed
  // or failed for good, and a start beyond the tries is a redelivery; stalledCounter counts a
  // worker's death before the task is started again.
  const started = job.attemptsStarted ?? 0;
  let attempt: number;
  let redeliveries: number;
  if (state === 'active') ({ attempt, redeliveries } = runOf(job));
  else {
    attempt = Math.min(started, Math.max(job.attemptsMade ?? 0, 1));
    redeliveries = Math.max(started - attempt, job.stalledCounter ?? 0);
  }
  // The worker's own word, where there is one.
  if (envelope?.attempt) {
    attempt = envelope.attempt;
    redeliveries = envelope.redeliveries ?? 0;
  } else if (progress?.attempt && !neverRan) {
    attempt = Math.max(attempt, progress.attempt);
    redeliveries = Math.max(redeliveries, progress.redeliveries ?? 0);
  }
  if ((status === TaskStatus.PENDING && started === 0) || neverRan) attempt = redeliveries = 0;

  let error: TaskErrorInfo | null = null;
  if (status === TaskStatus.FAILED || status === TaskStatus.TIMED_OUT || status === TaskStatus.CANCELLED) {
    error = progress?.error ?? {
      type: 'Error',
      code: status === TaskStatus.CANCELLED ? 'E004' : 'E003',
      message: job.failedReason || 'task failed',
      ...(job.stacktrace?.length ? { stack: job.stacktrace[job.stacktrace.length - 1] } : {}),
    };
  } else if (status === TaskStatus.PENDING && progress?.error) {
    error = progress.error; // the last attempt's error while a retry waits
  }

  const stored = envelope?.resources ?? progress?.resources;
  const startedAt = neverRan ? null : (job.processedOn ?? null);
  const finishedAt = finished ? (job.finishedOn ?? progress?.timestamp ?? null) : null;
  return {
    task_id: data.task_id,
    task_name: data.task_name,
    user_id: data.user_id,
    step: data.step,
    mode: data.mode,
    service: data.service,
    queue,
    status,
    progress: status === TaskStatus.COMPLETED ? 100 : (progress?.progress ?? 0),
    message: envelope ? 'completed' : (progress?.message ?? (status === TaskStatus.PENDING ? 'queued' : '')),
    attempt,
    max_attempts: maxAttempts,
    redeliveries,
    priority: data.options.priority,
    input_data: data.input_data,
    context: data.context,
    created_at: iso(job.timestamp) ?? new Date(data.submitted_at).toISOString(),
    started_at: iso(startedAt),
    finished_at: iso(finishedAt),
    duration_ms: startedAt && finishedAt ? Math.max(0, finishedAt - startedAt) : null,
    result: envelope ? envelope.result : null,
    error,
    resources: stored ? fullResources(stored) : null,
    worker: envelope ? (job.processedBy ?? null) : (progress?.worker ?? job.processedBy ?? null),
    runs: job.data.runs ?? [],
    ...(job.data.wf ? { root_id: job.data.wf.root, parent_id: job.parent?.id ?? null } : {}),
    ...(job.data.schedule !== undefined ? { schedule: job.data.schedule } : {}),
  };
}
