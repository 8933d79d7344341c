import { createHash } from 'node:crypto';
import type { TaskErrorInfo } from './errors.js';

/** Task states with the wire values of the original Python `aiecs` package. */
export const TaskStatus = {
  PENDING: 'pending',
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  TIMED_OUT: 'timed_out',
  CANCELLED: 'cancelled',
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set([
  TaskStatus.COMPLETED,
  TaskStatus.FAILED,
  TaskStatus.TIMED_OUT,
  TaskStatus.CANCELLED,
]);

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

export const FAST_QUEUE = 'fast_tasks';
export const HEAVY_QUEUE = 'heavy_tasks';
export type QueueKind = typeof FAST_QUEUE | typeof HEAVY_QUEUE;
export const QUEUE_KINDS: readonly QueueKind[] = [FAST_QUEUE, HEAVY_QUEUE];

/** The seed's route priorities: higher runs first. */
export const DEFAULT_PRIORITY: Record<QueueKind, number> = { [FAST_QUEUE]: 10, [HEAVY_QUEUE]: 5 };
export const MAX_PRIORITY = 100;
/** The longest task id (a job id; also the gateway's longest URL parameter). */
export const TASK_ID_MAX_LENGTH = 128;
/** How far ahead a task may be scheduled, by `countdown` or `eta`: one year, in seconds. */
export const MAX_DELAY_S = 365 * 86400;

/** A task's options when it was given none: shared by all such tasks, so never written to. */
export const DEFAULT_TASK_OPTIONS: Readonly<Record<QueueKind, TaskJobData['options']>> = {
  [FAST_QUEUE]: Object.freeze({ priority: DEFAULT_PRIORITY[FAST_QUEUE] }),
  [HEAVY_QUEUE]: Object.freeze({ priority: DEFAULT_PRIORITY[HEAVY_QUEUE] }),
};

/**
 * A request's `context` dictionary (language, model, template, …), `context` on the wire as in the
 * seed. Not the TaskContext a service method receives (core/task-context.ts): that is the running
 * task's side (signal, progress, stream, log).
 */
export type RequestContext = Record<string, unknown>;

/** The TypeScript face of a task request (camelCase). */
export interface TaskRequest {
  taskName: string;
  userId: string;
  taskId?: string;
  step?: number;
  mode: string;
  service: string;
  inputData?: Record<string, unknown>;
  context?: RequestContext;
}

export interface SubmitOptions {
  /** 1–100, higher runs first. Default: fast 10, heavy 5. */
  priority?: number;
  /** Seconds to wait before the task may run. */
  countdown?: number;
  /** Earliest time the task may run (an ISO 8601 string with offset, or a Date); past = now. */
  eta?: Date | string;
  /**
   * Seconds from now, or a date (ISO 8601 string with offset, or a Date): a task not started by
   * then never runs and ends `cancelled`, reason `expired`. A time already past is accepted.
   */
  expires?: number | Date | string;
  /** Hard time limit in seconds (default CELERY_TASK_TIME_LIMIT). */
  timeLimit?: number;
  /** Soft time limit in seconds (default CELERY_TASK_SOFT_TIME_LIMIT). */
  softTimeLimit?: number;
  /** Total attempts including the first (default AIECS_TASK_MAX_ATTEMPTS). */
  attempts?: number;
}

/** A task's data as the worker and the records see it: every field, defaults filled in. */
export interface TaskJobData {
  task_name: string;
  user_id: string;
  task_id: string;
  step: number;
  mode: string;
  service: string;
  input_data: Record<string, unknown>;
  context: RequestContext;
  options: { time_limit?: number; soft_time_limit?: number; priority: number };
  submitted_at: number;
  /** Epoch ms of `expires`: a worker taking the task later ends it cancelled (expired) unrun. */
  expires_at?: number;
  /** The template (`name@version`) the task was submitted by; absent otherwise. */
  template?: string;
  /** The Celery message a bridged task came from (its id keys the Celery result); absent otherwise. */
  celery?: CeleryMarker;
}

/** What a task bridged from a Celery message keeps of it (set by the Celery bridge's submit only). */
export interface CeleryMarker {
  /** The Celery message id: the key of its Celery result (`celery-task-meta-<id>`). */
  id: string;
}

/**
 * What a job stores: the request's fields with those at their defaults left out (step 0, empty
 * input_data and context, the queue's priority, no time limits). The task id is the job's id and
 * the submit time its timestamp, so neither is stored twice. Every task writes this to the store
 * and reads it back: bytes here cost throughput.
 */
export interface StoredTaskData {
  task_name: string;
  user_id: string;
  mode: string;
  service: string;
  step?: number;
  input_data?: Record<string, unknown>;
  context?: RequestContext;
  options?: { time_limit?: number; soft_time_limit?: number; priority?: number };
  /** See TaskJobData; left out when the request gave no `expires`. */
  expires_at?: number;
  /** Runs ended before a manual retry, oldest first (written by the retry, never at submit). */
  runs?: Run[];
  /** A workflow member's place in its workflow (see StoredWorkflow); absent on a lone task. */
  wf?: StoredWorkflow;
  /** The schedule that fired it (set in the schedule's job template, never by a submit). */
  schedule?: string;
  /** See TaskJobData; left out when the task was not submitted by a template. */
  template?: string;
  /** See TaskJobData; only on tasks the Celery bridge submitted. */
  celery?: CeleryMarker;
}

/** Task ids in submission order, nested as the groups they came from: a member's inputs. */
export type InputShape = string | InputShape[];

/** What a workflow member stores of its workflow (docs/design.md §9). */
export interface StoredWorkflow {
  /** The workflow's root task id. */
  root: string;
  /** The tasks it waits for (its BullMQ children) and where their results go in its input_data. */
  in?: { as: 'previous' | 'results'; from: InputShape };
  /** On the root only: the whole tree of member ids (a WorkflowIds of core/workflow.ts). */
  ids?: unknown;
  /** The hidden await jobs of tasks that follow this one in a fan-out (core/workflow-links.ts): woken when it ends. */
  awaits?: Array<{ id: string; queue: QueueKind }>;
}

/** A run of a task that ended before it was retried by hand: what its record said then. */
export interface Run {
  attempt: number;
  status: TaskStatus;
  started_at: string | null;
  finished_at: string | null;
  worker: string | null;
  error: TaskErrorInfo | null;
}

/** What names a task in a listing (`inspect active`, `inspect reserved`, queue listings). */
export interface TaskSummary {
  task_id: string;
  task_name: string;
  mode: string;
  service: string;
  user_id: string;
  queue: QueueKind;
}

export function taskSummary(
  data: Pick<TaskJobData, 'task_id' | 'task_name' | 'mode' | 'service' | 'user_id'>,
  queue: QueueKind,
): TaskSummary {
  const { task_id, task_name, mode, service, user_id } = data;
  return { task_id, task_name, mode, service, user_id, queue };
}

export function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}

export function toStoredData(queue: QueueKind, data: TaskJobData): StoredTaskData {
  const stored: StoredTaskData = {
    task_name: data.task_name,
    user_id: data.user_id,
    mode: data.mode,
    service: data.service,
  };
  if (data.step !== 0) stored.step = data.step;
  if (!isEmpty(data.input_data)) stored.input_data = data.input_data;
  if (!isEmpty(data.context)) stored.context = data.context;
  const { priority, time_limit, soft_time_limit } = data.options;
  if (priority !== DEFAULT_PRIORITY[queue] || time_limit !== undefined || soft_time_limit !== undefined) {
    const options: NonNullable<StoredTaskData['options']> = {};
    if (priority !== DEFAULT_PRIORITY[queue]) options.priority = priority;
    if (time_limit !== undefined) options.time_limit = time_limit;
    if (soft_time_limit !== undefined) options.soft_time_limit = soft_time_limit;
    stored.options = options;
  }
  if (data.expires_at !== undefined) stored.expires_at = data.expires_at;
  if (data.template !== undefined) stored.template = data.template;
  if (data.celery !== undefined) stored.celery = data.celery;
  return stored;
}

/** The inverse of toStoredData, given the job's id and timestamp. */
export function fromStoredData(
  queue: QueueKind,
  stored: StoredTaskData,
  taskId: string,
  submittedAt: number,
): TaskJobData {
  let options = DEFAULT_TASK_OPTIONS[queue];
  if (stored.options) {
    options = { priority: stored.options.priority ?? DEFAULT_PRIORITY[queue] };
    if (stored.options.time_limit !== undefined) options.time_limit = stored.options.time_limit;
    if (stored.options.soft_time_limit !== undefined)
      options.soft_time_limit = stored.options.soft_time_limit;
  }
  const data: TaskJobData = {
    task_name: stored.task_name,
    user_id: stored.user_id,
    step: stored.step ?? 0,
    mode: stored.mode,
    service: stored.service,
    input_data: stored.input_data ?? {},
    context: stored.context ?? {},
    task_id: taskId,
    options,
    submitted_at: submittedAt,
  };
  if (stored.expires_at !== undefined) data.expires_at = stored.expires_at;
  if (stored.template !== undefined) data.template = stored.template;
  if (stored.celery !== undefined) data.celery = stored.celery;
  return data;
}

/** JSON with object keys sorted: the same value gives the same text, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * What makes two submissions the same task: the request and its options. Computed from stored
 * job data when needed (a re-submitted id), canonically, since stores may reorder JSON keys.
 */
export function requestFingerprint(queue: QueueKind, data: TaskJobData): string {
  const { task_name, user_id, step, mode, service, input_data, context, options, template, celery } = data;
  // canonicalJson leaves an undefined template or celery out: fingerprints of other tasks are
  // unchanged. A Celery message taken again (after a crash) has the same id, so the same print;
  // another message naming the same task_id is a conflict (its own result would never be written).
  const body = { task_name, user_id, step, mode, service, input_data, context, options, template, celery };
  return createHash('sha1')
    .update(canonicalJson([queue, body]))
    .digest('base64url');
}

/** BullMQ runs lower numbers first and unprioritized jobs before all others: map every task. */
export function toBullPriority(priority: number): number {
  return MAX_PRIORITY + 1 - priority;
}

export interface ModelUsage {
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  latency_ms: number;
  /**
   * The token counts are estimates (about 4 characters a token): the server reported none, or the
   * call was cut short (cancel, time limit, an error mid-stream) after text had arrived.
   */
  estimated?: boolean;
}

export interface FileTouch {
  path: string;
  operation: 'read' | 'write' | 'delete' | 'create';
  bytes?: number;
  at: number;
}

/** Resources a task used, stored with its result. */
export interface TrackedResources {
  files: FileTouch[];
  model_usage: ModelUsage[];
  timings: Record<string, number>;
  totals: { input_tokens: number; output_tokens: number; cost_usd: number };
}

/** Resources as stored with a result: the empty parts left out. */
export type StoredResources = Partial<TrackedResources> & { timings: Record<string, number> };

/** The full form readers see, from what was stored. */
export function fullResources(stored: StoredResources): TrackedResources {
  return {
    files: stored.files ?? [],
    model_usage: stored.model_usage ?? [],
    timings: stored.timings,
    totals: stored.totals ?? { input_tokens: 0, output_tokens: 0, cost_usd: 0 },
  };
}

/** A task as any process can read it by id. Wire (snake_case) shape: it is what HTTP returns. */
export interface TaskRecord {
  task_id: string;
  task_name: string;
  user_id: string;
  step: number;
  mode: string;
  service: string;
  queue: QueueKind;
  status: TaskStatus;
  progress: number;
  message: string;
  /** Tries of the budget used: a retry raises it, a redelivery does not; never above max_attempts. */
  attempt: number;
  max_attempts: number;
  /** Times the task was started again because its worker stopped without an outcome (died, drained). */
  redeliveries: number;
  priority: number;
  input_data: Record<string, unknown>;
  context: RequestContext;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  result: unknown;
  error: TaskErrorInfo | null;
  resources: TrackedResources | null;
  worker: string | null;
  /** Earlier runs, ended before a manual retry, oldest first; empty when none. */
  runs: Run[];
  /** A workflow member's root task id and the task waiting for it (null for the root). */
  root_id?: string;
  parent_id?: string | null;
  /** The schedule that fired the task; absent on tasks submitted otherwise. */
  schedule?: string;
  /** The template and version (`summarize@2`) the task was submitted by; absent otherwise. */
  template?: string;
  /** The Celery message id of a task the Celery bridge submitted (its result's key); absent otherwise. */
  celery_id?: string;
}
