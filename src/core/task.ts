import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { TaskErrorInfo } from './errors.js';
import { PayloadTooLargeError, ValidationError } from './errors.js';
import { zodIssues } from './zod-issues.js';

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

const identifier = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'must start with a letter or _ and hold only letters, digits, _ . -');

/** Job ids are task ids; BullMQ refuses ids that are integers or contain ':'. */
export const taskIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9._-]+$/, 'may hold only letters, digits, _ . -')
  .refine((v) => !/^\d+$/.test(v), 'must not be a plain integer');

const jsonObject = z.record(z.string(), z.unknown());

/** A task request on the wire (HTTP, WebSocket, stored job data): the seed's fields, snake_case. */
export const taskRequestSchema = z.strictObject({
  task_name: identifier,
  user_id: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters'),
  task_id: taskIdSchema.optional(),
  step: z.number().int('must be an integer').min(0, 'must be >= 0').default(0),
  mode: identifier,
  service: identifier,
  input_data: jsonObject.default({}),
  context: jsonObject.default({}),
});
export type WireTaskRequest = z.input<typeof taskRequestSchema>;

/** Per-submission options; all optional. Seconds, as in Celery. */
export const submitOptionsSchema = z.strictObject({
  priority: z.number().int().min(1).max(MAX_PRIORITY).optional(),
  countdown: z
    .number()
    .min(0)
    .max(365 * 86400)
    .optional(),
  eta: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
  time_limit: z
    .number()
    .positive()
    .max(7 * 86400)
    .optional(),
  soft_time_limit: z
    .number()
    .positive()
    .max(7 * 86400)
    .optional(),
  attempts: z.number().int().min(1).max(100).optional(),
});
export type WireSubmitOptions = z.input<typeof submitOptionsSchema>;

/** The TypeScript face of a task request (camelCase). */
export interface TaskRequest {
  taskName: string;
  userId: string;
  taskId?: string;
  step?: number;
  mode: string;
  service: string;
  inputData?: Record<string, unknown>;
  context?: Record<string, unknown>;
}

export interface SubmitOptions {
  /** 1–100, higher runs first. Default: fast 10, heavy 5. */
  priority?: number;
  /** Seconds to wait before the task may run. */
  countdown?: number;
  /** Earliest time the task may run. */
  eta?: Date | string;
  /** Hard time limit in seconds (default CELERY_TASK_TIME_LIMIT). */
  timeLimit?: number;
  /** Soft time limit in seconds (default CELERY_TASK_SOFT_TIME_LIMIT). */
  softTimeLimit?: number;
  /** Total attempts including the first (default AIECS_TASK_MAX_ATTEMPTS). */
  attempts?: number;
}

/** What a job carries in the store. */
export interface TaskJobData {
  task_name: string;
  user_id: string;
  task_id: string;
  step: number;
  mode: string;
  service: string;
  input_data: Record<string, unknown>;
  context: Record<string, unknown>;
  options: { time_limit?: number; soft_time_limit?: number; priority: number };
  submitted_at: number;
}

/** The one place where camelCase meets snake_case. */
export function requestToWire(request: TaskRequest): WireTaskRequest {
  const wire: Record<string, unknown> = {
    task_name: request.taskName,
    user_id: request.userId,
    mode: request.mode,
    service: request.service,
  };
  if (request.taskId !== undefined) wire.task_id = request.taskId;
  if (request.step !== undefined) wire.step = request.step;
  if (request.inputData !== undefined) wire.input_data = request.inputData;
  if (request.context !== undefined) wire.context = request.context;
  return wire as WireTaskRequest;
}

export function optionsToWire(options: SubmitOptions): WireSubmitOptions {
  const wire: WireSubmitOptions = {};
  if (options.priority !== undefined) wire.priority = options.priority;
  if (options.countdown !== undefined) wire.countdown = options.countdown;
  if (options.eta !== undefined) wire.eta = options.eta;
  if (options.timeLimit !== undefined) wire.time_limit = options.timeLimit;
  if (options.softTimeLimit !== undefined) wire.soft_time_limit = options.softTimeLimit;
  if (options.attempts !== undefined) wire.attempts = options.attempts;
  return wire;
}

export interface PreparedSubmission {
  data: TaskJobData;
  delayMs: number;
  attempts: number | undefined;
}

/**
 * Validates a wire request and its options and builds the stored job data.
 * Throws ValidationError naming every bad field, or PayloadTooLargeError.
 */
export function prepareSubmission(
  queue: QueueKind,
  rawRequest: unknown,
  rawOptions: unknown,
  maxInputBytes: number,
  now = Date.now(),
): PreparedSubmission {
  const fast = fastRequest(rawRequest);
  const request = fast ? ({ success: true, data: fast } as const) : taskRequestSchema.safeParse(rawRequest);
  // Most submissions carry no options: skip validating an empty object.
  const noOptions =
    rawOptions === undefined ||
    (typeof rawOptions === 'object' && rawOptions !== null && Object.keys(rawOptions).length === 0);
  const options = noOptions
    ? ({ success: true, data: {} as z.output<typeof submitOptionsSchema> } as const)
    : submitOptionsSchema.safeParse(rawOptions);
  const issues = [
    ...(request.success ? [] : zodIssues(request.error)),
    ...(options.success ? [] : zodIssues(options.error, 'options')),
  ];
  if (!request.success || !options.success) throw new ValidationError(issues);
  const req = request.data;
  const opts = options.data;

  const inputBytes = jsonSize('input_data', req.input_data) + jsonSize('context', req.context);
  if (inputBytes > maxInputBytes)
    throw new PayloadTooLargeError('input_data+context', inputBytes, maxInputBytes);
  if (opts.countdown !== undefined && opts.eta !== undefined) {
    throw new ValidationError([{ field: 'options.eta', message: 'give countdown or eta, not both' }]);
  }
  if (
    opts.soft_time_limit !== undefined &&
    opts.time_limit !== undefined &&
    opts.soft_time_limit > opts.time_limit
  ) {
    throw new ValidationError([{ field: 'options.soft_time_limit', message: 'must not exceed time_limit' }]);
  }

  let delayMs = 0;
  if (opts.countdown !== undefined) delayMs = Math.round(opts.countdown * 1000);
  if (opts.eta !== undefined) delayMs = Math.max(0, new Date(opts.eta).getTime() - now);

  const taskOptions: TaskJobData['options'] = { priority: opts.priority ?? DEFAULT_PRIORITY[queue] };
  if (opts.time_limit !== undefined) taskOptions.time_limit = opts.time_limit;
  if (opts.soft_time_limit !== undefined) taskOptions.soft_time_limit = opts.soft_time_limit;

  const body = {
    task_name: req.task_name,
    user_id: req.user_id,
    step: req.step,
    mode: req.mode,
    service: req.service,
    input_data: req.input_data,
    context: req.context,
  };
  return {
    data: {
      ...body,
      task_id: req.task_id ?? randomUUID(),
      options: taskOptions,
      submitted_at: now,
    },
    delayMs,
    attempts: opts.attempts,
  };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
const REQUEST_KEYS = new Set([
  'task_name',
  'user_id',
  'task_id',
  'step',
  'mode',
  'service',
  'input_data',
  'context',
]);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * The common, valid request checked by hand: thousands of submissions a second should not each
 * build zod's intermediate objects. Anything unusual returns undefined and goes through the
 * schema, which also writes the error messages. Accepts exactly what the schema accepts.
 */
function fastRequest(raw: unknown): z.output<typeof taskRequestSchema> | undefined {
  if (!isPlainObject(raw)) return undefined;
  for (const key in raw) if (!REQUEST_KEYS.has(key)) return undefined;
  const { task_name, user_id, task_id, step, mode, service, input_data, context } = raw;
  if (typeof task_name !== 'string' || !NAME.test(task_name)) return undefined;
  if (typeof mode !== 'string' || !NAME.test(mode) || typeof service !== 'string' || !NAME.test(service))
    return undefined;
  if (typeof user_id !== 'string' || user_id.length === 0 || user_id.length > 256) return undefined;
  if (task_id !== undefined) return undefined; // ids have their own rules: leave them to the schema
  if (step !== undefined && !(typeof step === 'number' && Number.isInteger(step) && step >= 0))
    return undefined;
  if (input_data !== undefined && !isPlainObject(input_data)) return undefined;
  if (context !== undefined && !isPlainObject(context)) return undefined;
  return {
    task_name,
    user_id,
    step: (step as number | undefined) ?? 0,
    mode,
    service,
    input_data: input_data ?? {},
    context: context ?? {},
  };
}

/** JSON with object keys sorted: the same value gives the same text, whatever the key order. */
function canonicalJson(value: unknown): string {
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
  const { task_name, user_id, step, mode, service, input_data, context, options } = data;
  const body = { task_name, user_id, step, mode, service, input_data, context, options };
  return createHash('sha1')
    .update(canonicalJson([queue, body]))
    .digest('base64url');
}

function jsonSize(field: string, value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value));
  } catch (error) {
    throw new ValidationError([
      { field, message: `must be JSON-serializable (${(error as Error).message})` },
    ]);
  }
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
  attempt: number;
  max_attempts: number;
  priority: number;
  input_data: Record<string, unknown>;
  context: Record<string, unknown>;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  result: unknown;
  error: TaskErrorInfo | null;
  resources: TrackedResources | null;
  worker: string | null;
}
