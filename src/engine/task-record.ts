import type { Job } from 'bullmq';
import type { TaskErrorInfo } from '../core/errors.js';
import type { ProgressPayload, ResultEnvelope } from '../core/task-events.js';
import { asProgressPayload, dropsOnStart, envelopeOf, isCancelMarker } from '../core/task-events.js';
import type { QueueKind, StoredTaskData, TaskJobData, TaskRecord } from '../core/task.js';
import { fromStoredData } from '../core/task.js';
import { TaskStatus, fullResources } from '../core/task.js';
import { memberParentId } from '../core/workflow-links.js';

// The protocol's types, where the engine's callers have always found them.
export type { ProgressPayload, ResultEnvelope } from '../core/task-events.js';

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
  return asProgressPayload(job.progress);
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
      return isCancelMarker(progress) ? TaskStatus.CANCELLED : TaskStatus.RUNNING;
    default:
      // Waiting with a cancel as its last word: the worker that takes it drops it.
      return dropsOnStart(progress) ? TaskStatus.CANCELLED : TaskStatus.PENDING;
  }
}

const iso = (ms: number | undefined | null) => (ms ? new Date(ms).toISOString() : null);

/**
 * `details.reason` of a task a worker ended without running it: a workflow step whose inputs did
 * not complete (workflow-inputs.ts), or a task taken after its expiry time.
 */
const NOT_RUN_REASONS: ReadonlySet<string | undefined> = new Set([
  'upstream_failed',
  'member_failed',
  'expired',
]);

/** What toTaskRecord reads of a job: a stored job, or one made from a completed event (task-from-event.ts). */
export type JobFields = Pick<
  TaskJob,
  | 'id'
  | 'data'
  | 'timestamp'
  | 'opts'
  | 'returnvalue'
  | 'progress'
  | 'processedOn'
  | 'finishedOn'
  | 'processedBy'
  | 'attemptsStarted'
  | 'attemptsMade'
  | 'stalledCounter'
  | 'failedReason'
  | 'stacktrace'
> & { parent?: { id?: string | undefined } | undefined };

export function toTaskRecord(job: JobFields, state: BullState | string, queue: QueueKind): TaskRecord {
  const data = fromStoredData(queue, job.data, job.id ?? '', job.timestamp);
  const progress = progressPayload(job);
  const status = deriveStatus(state, progress);
  const envelope = status === TaskStatus.COMPLETED ? (job.returnvalue as ResultEnvelope | null) : null;
  const finished = status !== TaskStatus.PENDING && status !== TaskStatus.RUNNING;
  const maxAttempts = job.opts.attempts ?? 1;
  // A task cancelled before it ran was only drained by a worker: it never started. Nor did a
  // workflow step whose worker found that a task it waited for had not completed, nor an expired one.
  const neverRan =
    (status === TaskStatus.CANCELLED && isCancelMarker(progress)) ||
    NOT_RUN_REASONS.has(progress?.error?.details?.reason as string);

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
  // The worker's own times when its envelope has them: a record made from the completed event
  // (get()'s) and one read from the store then agree to the millisecond.
  const startedAt = neverRan ? null : (envelope?.started ?? job.processedOn ?? null);
  const finishedAt = finished ? (envelope?.finished ?? job.finishedOn ?? progress?.timestamp ?? null) : null;
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
    worker: envelope
      ? (envelope.worker ?? job.processedBy ?? null)
      : (progress?.worker ?? job.processedBy ?? null),
    runs: job.data.runs ?? [],
    ...(job.data.wf ? { root_id: job.data.wf.root, parent_id: memberParentId(job.parent?.id) } : {}),
    ...(job.data.schedule !== undefined ? { schedule: job.data.schedule } : {}),
    ...(job.data.template !== undefined ? { template: job.data.template } : {}),
    ...(job.data.celery !== undefined ? { celery_id: job.data.celery.id } : {}),
  };
}

/** A task as its submitter knows it: enough, with the completed event's envelope, for its record. */
export interface SubmittedTask {
  readonly id: string;
  readonly queue: QueueKind;
  /** The job's data as stored; a workflow member's (with `wf`) is never made from its event. */
  readonly data: StoredTaskData;
  /** The job's timestamp (its submit time). */
  readonly timestamp: number;
  readonly attempts: number;
  /**
   * Set when added while this process's result listener on its queue was subscribed: the task ends
   * it had heard then (ResultWaiter.endsHeard). Its end cannot pass unheard, so get() reads it
   * first only if that end came before get() began waiting.
   */
  readonly endsHeard: number | undefined;
}

/**
 * The completed record of a submitted task, from the completed event's envelope alone; undefined
 * when the envelope lacks what the record needs (an older worker's, or a task retried by hand,
 * whose earlier runs only the store holds): the caller reads the record then.
 */
export function completedFromEvent(task: SubmittedTask, raw: unknown): TaskRecord | undefined {
  if (task.data.wf) return undefined;
  const envelope = envelopeOf(raw);
  if (!envelope || envelope.reruns) return undefined;
  if (envelope.started === undefined || envelope.finished === undefined || envelope.worker === undefined)
    return undefined;
  const job: JobFields = {
    id: task.id,
    data: task.data,
    timestamp: task.timestamp,
    opts: { attempts: task.attempts },
    returnvalue: envelope,
    progress: 0,
    processedOn: envelope.started,
    finishedOn: envelope.finished,
    processedBy: envelope.worker,
    attemptsStarted: envelope.attempt + (envelope.redeliveries ?? 0),
    attemptsMade: envelope.attempt,
    stalledCounter: 0,
    failedReason: '',
    stacktrace: [],
  };
  return toTaskRecord(job, 'completed', task.queue);
}
