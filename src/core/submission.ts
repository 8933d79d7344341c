/**
 * Validating task submissions: the wire schemas and what builds a job from them. Kept apart from
 * task.ts so that processes which never validate a submission (workers) do not load these schemas
 * (zod itself every process loads: it parses the configuration).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { PayloadTooLargeError, ValidationError } from './errors.js';
import { jsonTextProblem, textProblem } from './storable-text.js';
import type { QueueKind, RequestContext, TaskJobData } from './task.js';
import {
  DEFAULT_PRIORITY,
  DEFAULT_TASK_OPTIONS,
  MAX_DELAY_S,
  MAX_PRIORITY,
  TASK_ID_MAX_LENGTH,
  isEmpty,
} from './task.js';
import { zodIssues } from './zod-issues.js';

/** The rules the schema and the hand-checked fast path share (see isFastRequest). */
const NAME_MAX_LENGTH = 128;
const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const USER_ID_MAX_LENGTH = 256;

const identifier = z
  .string()
  .min(1, 'must not be empty')
  .max(NAME_MAX_LENGTH, `must be at most ${NAME_MAX_LENGTH} characters`)
  .regex(NAME_PATTERN, 'must start with a letter or _ and hold only letters, digits, _ . -');

/** Job ids are task ids; BullMQ refuses ids that are integers or contain ':'. */
export const taskIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(TASK_ID_MAX_LENGTH, `must be at most ${TASK_ID_MAX_LENGTH} characters`)
  .regex(/^[A-Za-z0-9._-]+$/, 'may hold only letters, digits, _ . -')
  .refine((v) => !/^\d+$/.test(v), 'must not be a plain integer');

const jsonObject = z.record(z.string(), z.unknown());

/** Text a store can keep: no NUL, no unpaired surrogate (see storable-text.ts). */
export const storableText = (schema: z.ZodString) =>
  schema.superRefine((value, ctx) => {
    const problem = textProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** How far ahead a task may be put, in the words `countdown`, `eta` and `expires` refuse with. */
const ONE_YEAR = `one year (${MAX_DELAY_S} s)`;

/** A task request on the wire (HTTP, WebSocket, stored job data): the seed's fields, snake_case. */
export const taskRequestSchema = z.strictObject({
  task_name: identifier,
  user_id: storableText(
    z
      .string()
      .min(1, 'must not be empty')
      .max(USER_ID_MAX_LENGTH, `must be at most ${USER_ID_MAX_LENGTH} characters`),
  ),
  task_id: taskIdSchema.optional(),
  step: z.number().int('must be an integer').min(0, 'must be >= 0').default(0),
  mode: identifier,
  service: identifier,
  input_data: jsonObject.default({}),
  context: jsonObject.default({}),
});
export type WireTaskRequest = z.input<typeof taskRequestSchema>;

/** How `eta` and `expires` are written as text: ISO 8601 with an offset (`Z` or `+02:00`). */
export const isoDateTimeSchema = z.iso.datetime({ offset: true });
const EXPIRES_EXPECTED = 'must be seconds from now (a number >= 0) or an ISO 8601 date-time with offset';
const expiresSeconds = z.number().min(0, 'must be >= 0').max(MAX_DELAY_S, `must be at most ${ONE_YEAR}`);
/** `expires` as JSON carries it (HTTP): seconds from now, or a date. */
export const wireExpiresSchema = z.union([expiresSeconds, isoDateTimeSchema], { error: EXPIRES_EXPECTED });

/** Per-submission options; all optional. Seconds, as in Celery. */
/** A hard or soft time limit in seconds: at most a week. */
export const timeLimitSeconds = z
  .number()
  .positive()
  .max(7 * 86400);

export const submitOptionsSchema = z.strictObject({
  priority: z.number().int().min(1).max(MAX_PRIORITY).optional(),
  countdown: z.number().min(0).max(MAX_DELAY_S, `must be at most ${ONE_YEAR}`).optional(),
  eta: z.union([z.date(), isoDateTimeSchema]).optional(),
  /** Not started by then, the task never runs: it ends cancelled, reason `expired` (Celery's expires). */
  expires: z.union([expiresSeconds, z.date(), isoDateTimeSchema], { error: EXPIRES_EXPECTED }).optional(),
  time_limit: timeLimitSeconds.optional(),
  soft_time_limit: timeLimitSeconds.optional(),
  attempts: z.number().int().min(1).max(100).optional(),
});
export type WireSubmitOptions = z.input<typeof submitOptionsSchema>;

export interface PreparedSubmission {
  queue: QueueKind;
  data: TaskJobData;
  /** The caller chose the task id (generated ones are random UUIDs and cannot repeat). */
  chosen: boolean;
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
  // Most submissions carry no options: skip validating an empty object.
  const noOptions =
    rawOptions === undefined ||
    (typeof rawOptions === 'object' && rawOptions !== null && Object.keys(rawOptions).length === 0);
  if (noOptions && isFastRequest(rawRequest)) return fastSubmission(queue, rawRequest, maxInputBytes, now);
  const request = taskRequestSchema.safeParse(rawRequest);
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

  checkInputSize(req.input_data, req.context, maxInputBytes);
  if (opts.countdown !== undefined && opts.eta !== undefined) {
    const message = 'give countdown or eta, not both';
    throw new ValidationError([
      { field: 'options.countdown', message },
      { field: 'options.eta', message },
    ]);
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
  if (opts.eta !== undefined) {
    delayMs = Math.max(0, new Date(opts.eta).getTime() - now);
    // The same cap as countdown's: an eta is a countdown written as a date.
    if (delayMs > MAX_DELAY_S * 1000)
      throw new ValidationError([{ field: 'options.eta', message: `must be at most ${ONE_YEAR} from now` }]);
  }

  // An expiry already past is accepted, as Celery does: the task ends expired when a worker takes it.
  let expiresAt: number | undefined;
  if (opts.expires !== undefined) {
    expiresAt =
      typeof opts.expires === 'number'
        ? now + Math.round(opts.expires * 1000)
        : new Date(opts.expires).getTime();
    if (expiresAt - now > MAX_DELAY_S * 1000)
      throw new ValidationError([
        { field: 'options.expires', message: `must be at most ${ONE_YEAR} from now` },
      ]);
  }

  let taskOptions = DEFAULT_TASK_OPTIONS[queue];
  if (opts.priority !== undefined || opts.time_limit !== undefined || opts.soft_time_limit !== undefined) {
    taskOptions = { priority: opts.priority ?? DEFAULT_PRIORITY[queue] };
    if (opts.time_limit !== undefined) taskOptions.time_limit = opts.time_limit;
    if (opts.soft_time_limit !== undefined) taskOptions.soft_time_limit = opts.soft_time_limit;
  }

  return {
    queue,
    chosen: req.task_id !== undefined,
    data: {
      task_name: req.task_name,
      user_id: req.user_id,
      step: req.step,
      mode: req.mode,
      service: req.service,
      input_data: req.input_data,
      context: req.context,
      task_id: req.task_id ?? randomUUID(),
      options: taskOptions,
      submitted_at: now,
      ...(expiresAt !== undefined ? { expires_at: expiresAt } : {}),
    },
    delayMs,
    attempts: opts.attempts,
  };
}

const REQUEST_KEYS: ReadonlySet<string> = new Set(Object.keys(taskRequestSchema.shape));
const isName = (v: unknown): v is string =>
  typeof v === 'string' && v.length >= 1 && v.length <= NAME_MAX_LENGTH && NAME_PATTERN.test(v);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

interface FastRequest {
  task_name: string;
  user_id: string;
  step?: number;
  mode: string;
  service: string;
  input_data?: Record<string, unknown>;
  context?: RequestContext;
}

/**
 * The common, valid request checked by hand: thousands of submissions a second should not each
 * build zod's intermediate objects and copies (measured over 100k typical requests: 5.0 us each
 * with this path, 13-14 us through the schema, 7.3-7.7 us through `z.compile` of the schema).
 * Anything unusual is left to the schema, which also writes the error messages. It must accept
 * exactly what the schema accepts among plain-object requests without a task id, with the same
 * result: submission-fast-path.test.ts checks that field by field, limits included.
 */
export function isFastRequest(raw: unknown): raw is FastRequest {
  if (!isPlainObject(raw)) return false;
  for (const key in raw) if (!REQUEST_KEYS.has(key)) return false;
  const { task_name, user_id, task_id, step, mode, service, input_data, context } = raw;
  if (!isName(task_name) || !isName(mode) || !isName(service)) return false;
  if (typeof user_id !== 'string' || user_id.length === 0) return false;
  if (textProblem(user_id) !== undefined) return false; // the schema names the problem
  if (user_id.length > USER_ID_MAX_LENGTH && codePoints(user_id) > USER_ID_MAX_LENGTH) return false;
  if (task_id !== undefined) return false; // ids have their own rules: leave them to the schema
  // zod's int() is a safe integer.
  if (step !== undefined && !(typeof step === 'number' && Number.isSafeInteger(step) && step >= 0))
    return false;
  if (input_data !== undefined && !isPlainObject(input_data)) return false;
  if (context !== undefined && !isPlainObject(context)) return false;
  return true;
}

/** A well-formed string's length as zod's max() counts it: in code points, a surrogate pair once. */
function codePoints(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) if ((text.charCodeAt(i) & 0xfc00) === 0xd800) n--;
  return n;
}

/** A checked fast request straight into its job data: one object per task, no copies between. */
function fastSubmission(
  queue: QueueKind,
  raw: FastRequest,
  maxInputBytes: number,
  now: number,
): PreparedSubmission {
  const input_data = raw.input_data ?? {};
  const context = raw.context ?? {};
  checkInputSize(input_data, context, maxInputBytes);
  return {
    queue,
    chosen: false,
    data: {
      task_name: raw.task_name,
      user_id: raw.user_id,
      step: raw.step ?? 0,
      mode: raw.mode,
      service: raw.service,
      input_data,
      context,
      task_id: randomUUID(),
      options: DEFAULT_TASK_OPTIONS[queue],
      submitted_at: now,
    },
    delayMs: 0,
    attempts: undefined,
  };
}

function checkInputSize(
  input_data: Record<string, unknown>,
  context: RequestContext,
  maxInputBytes: number,
): void {
  const inputBytes = jsonSize('input_data', input_data) + jsonSize('context', context);
  if (inputBytes > maxInputBytes)
    throw new PayloadTooLargeError('input_data+context', inputBytes, maxInputBytes);
}

/** The size of a value as stored; refuses text no store can keep, in the same pass over it. */
function jsonSize(field: string, value: unknown): number {
  if (isPlainObject(value) && isEmpty(value)) return 2;
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new ValidationError([
      { field, message: `must be JSON-serializable (${(error as Error).message})` },
    ]);
  }
  const problem = jsonTextProblem(json, field);
  if (problem) throw new ValidationError([problem]);
  return Buffer.byteLength(json);
}
