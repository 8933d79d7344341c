/**
 * Named errors with a stable `code`. `wireCode` is the original Python package's error code
 * (E001…E006) that travels to clients; codes above E006 are ours.
 */

export type WireErrorCode = 'E001' | 'E002' | 'E003' | 'E004' | 'E005' | 'E006' | 'E007' | 'E008';

/** The error as stored in the task record and pushed to clients. */
export interface TaskErrorInfo {
  type: string;
  code: WireErrorCode;
  message: string;
  stack?: string;
  details?: Record<string, unknown>;
}

export interface FieldIssue {
  field: string;
  message: string;
}

export class AiecsError extends Error {
  readonly code: string = 'AIECS_ERROR';
  readonly wireCode: WireErrorCode = 'E003';
  /** Whether running the same task again may succeed. */
  readonly retryable: boolean = false;
  readonly details: Record<string, unknown>;

  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.details = details;
  }

  toInfo(): TaskErrorInfo {
    return errorInfo(this);
  }
}

/** Issues listed in a message past ValidationError: the first few (details.issues holds every one). */
const MESSAGE_ISSUES = 10;

/**
 * The base of the errors that name bad fields: `issues` (also details.issues) lists every
 * `{ field, message }`; the message says `<what>: field: message; ...`, the first `shown` of them.
 */
export abstract class FieldIssuesError extends AiecsError {
  readonly issues: FieldIssue[];
  constructor(what: string, issues: FieldIssue[], shown = Infinity) {
    const listed = issues.slice(0, shown).map((i) => `${i.field}: ${i.message}`);
    if (issues.length > shown) listed.push(`and ${issues.length - shown} more`);
    super(`${what}: ${listed.join('; ')}`, { issues });
    this.issues = issues;
  }
}

/** A request or option failed validation; `issues` names each bad field. */
export class ValidationError extends FieldIssuesError {
  override readonly code = 'VALIDATION_ERROR';
  override readonly wireCode = 'E001';
  constructor(
    issues: FieldIssue[],
    readonly prefix = 'invalid request',
  ) {
    super(prefix, issues);
  }

  /** The same error with each field renamed (a caller's spelling, an HTTP body's layout). */
  renamed(rename: (field: string) => string): ValidationError {
    return new ValidationError(
      this.issues.map((i) => ({ field: rename(i.field), message: i.message })),
      this.prefix,
    );
  }
}

export class PayloadTooLargeError extends AiecsError {
  override readonly code = 'PAYLOAD_TOO_LARGE';
  override readonly wireCode = 'E001';
  constructor(
    readonly field: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${field} is ${size} bytes, over the limit of ${limit} bytes`, { field, size, limit });
  }
}

export type TimeLimitKind = 'soft' | 'hard';

export class TaskTimeoutError extends AiecsError {
  override readonly code = 'TASK_TIMEOUT';
  override readonly wireCode = 'E002';
  constructor(
    readonly limit: TimeLimitKind,
    readonly seconds: number,
    readonly taskId?: string,
  ) {
    super(`task exceeded its ${limit} time limit of ${seconds} s`, { limit, seconds, task_id: taskId });
  }
}

export class TaskCancelledError extends AiecsError {
  override readonly code = 'TASK_CANCELLED';
  override readonly wireCode = 'E004';
  constructor(
    readonly taskId?: string,
    message = 'task was cancelled',
    details: Record<string, unknown> = {},
  ) {
    super(message, { task_id: taskId, ...details });
  }

  /** Why it ended when no one cancelled it: `expired` (see expiredError); undefined for a cancel. */
  get reason(): string | undefined {
    return typeof this.details.reason === 'string' ? this.details.reason : undefined;
  }
}

/** A task not started by its `expires` time: it never runs and ends cancelled, reason `expired`. */
export function expiredError(taskId: string, expiresAt: number): TaskCancelledError {
  const at = new Date(expiresAt).toISOString();
  return new TaskCancelledError(taskId, `expired: not started by its expiry time ${at}`, {
    reason: 'expired',
    expires_at: at,
  });
}

/**
 * A workflow step that never ran because a task it waited for failed, timed out or was cancelled:
 * it ends `cancelled`, with `details.reason` "upstream_failed" and the upstream task's id and error.
 */
export class UpstreamFailedError extends AiecsError {
  override readonly code = 'UPSTREAM_FAILED';
  override readonly wireCode = 'E004';
  constructor(
    readonly taskId: string,
    readonly upstream: { task_id: string; error: string },
  ) {
    super(`not run: upstream task ${upstream.task_id} did not complete (${upstream.error})`, {
      reason: 'upstream_failed',
      upstream_task_id: upstream.task_id,
      upstream_error: upstream.error,
    });
  }
}

/** A chord's callback, not run because a member of its header did not complete: it ends `failed`. */
export class ChordMemberFailedError extends AiecsError {
  override readonly code = 'CHORD_MEMBER_FAILED';
  override readonly wireCode = 'E003';
  constructor(
    readonly taskId: string,
    readonly member: { task_id: string; error: string },
  ) {
    super(`chord member ${member.task_id} did not complete: ${member.error}`, {
      reason: 'member_failed',
      member_task_id: member.task_id,
      member_error: member.error,
    });
  }
}

/** The task ran and failed; `remote` is the error recorded by the worker. */
export class TaskFailedError extends AiecsError {
  override readonly code = 'TASK_FAILED';
  override readonly wireCode = 'E003';
  constructor(
    readonly taskId: string,
    readonly remote: TaskErrorInfo,
  ) {
    super(`task ${taskId} failed: ${remote.type}: ${remote.message}`, { task_id: taskId, remote });
  }
}

export class RetriesExhaustedError extends AiecsError {
  override readonly code = 'RETRIES_EXHAUSTED';
  override readonly wireCode = 'E005';
}

export class StorageError extends AiecsError {
  override readonly code = 'STORAGE_ERROR';
  override readonly wireCode = 'E006';
  override readonly retryable = true;
}

export class ServiceNotFoundError extends AiecsError {
  override readonly code = 'SERVICE_NOT_FOUND';
  override readonly wireCode = 'E007';
  constructor(
    readonly mode: string,
    readonly service: string,
    readonly taskName: string | undefined,
    readonly registered: string[],
    reason?: string,
  ) {
    super(
      reason ??
        `no service registered as ${mode}/${service}; registered: ${registered.length ? registered.join(', ') : '(none)'}`,
      { mode, service, task_name: taskName, registered },
    );
  }

  /**
   * The same error naming the request's field it is about, under `prefix` (a batch's `tasks[3]`):
   * `service` when no such service is registered, `task_name` when the service lacks the method.
   */
  at(prefix: string): ServiceNotFoundError {
    const field = `${prefix}.${this.registered.includes(`${this.mode}/${this.service}`) ? 'task_name' : 'service'}`;
    const located = new ServiceNotFoundError(
      this.mode,
      this.service,
      this.taskName,
      this.registered,
      `${field}: ${this.message}`,
    );
    located.details.field = field;
    return located;
  }
}

/** `get({ timeout })` gave up waiting; the task itself goes on. */
export class WaitTimeoutError extends AiecsError {
  override readonly code = 'WAIT_TIMEOUT';
  override readonly wireCode = 'E002';
  constructor(
    readonly taskId: string,
    readonly seconds: number,
  ) {
    super(`task ${taskId} did not finish within ${seconds} s of waiting`, { task_id: taskId, seconds });
  }
}

export class TaskNotFoundError extends AiecsError {
  override readonly code = 'TASK_NOT_FOUND';
  override readonly wireCode = 'E001';
  constructor(readonly taskId: string) {
    super(`no task with id ${taskId}`, { task_id: taskId });
  }
}

/** A task id was re-submitted with a different request. */
export class TaskConflictError extends AiecsError {
  override readonly code = 'TASK_CONFLICT';
  override readonly wireCode = 'E001';
  constructor(readonly taskId: string) {
    super(`task ${taskId} already exists with a different request`, { task_id: taskId });
  }
}

/** A retry of a task that has not ended in failure (pending, running, completed). */
export class TaskNotRetryableError extends AiecsError {
  override readonly code = 'TASK_NOT_RETRYABLE';
  override readonly wireCode = 'E001';
  constructor(
    readonly taskId: string,
    readonly status: string,
    why = `only failed, timed_out or cancelled tasks can be retried`,
  ) {
    super(`task ${taskId} is ${status}: ${why}`, { task_id: taskId, status });
  }
}

export class ResultNotSerializableError extends AiecsError {
  override readonly code = 'RESULT_NOT_SERIALIZABLE';
  override readonly wireCode = 'E003';
}

export class ConfigError extends AiecsError {
  override readonly code = 'CONFIG_ERROR';
  override readonly wireCode = 'E001';
}

export class StoreUnavailableError extends AiecsError {
  override readonly code = 'STORE_UNAVAILABLE';
  override readonly wireCode = 'E006';
  override readonly retryable = true;
}

/**
 * The store was set up by a newer aiecs (its schema version is past the last one this code
 * knows): starting anyway could misread or damage what the newer code wrote.
 */
export class SchemaTooNewError extends AiecsError {
  override readonly code = 'SCHEMA_TOO_NEW';
  override readonly wireCode = 'E006';
  constructor(
    readonly where: string,
    readonly version: number,
    readonly known: number,
  ) {
    super(
      `${where} is at schema version ${version}, newer than this aiecs knows (${known}); ` +
        'upgrade aiecs (every process that uses this store) to a release that knows it',
      { where, version, known },
    );
  }
}

/**
 * The task history is off in this deployment (a Redis store without AIECS_HISTORY_URL, or
 * AIECS_HISTORY=off), so there is nothing to read or erase.
 */
export class HistoryDisabledError extends AiecsError {
  override readonly code = 'HISTORY_DISABLED';
  override readonly wireCode = 'E006';
  constructor(reason: string) {
    super(`the task history is off: ${reason}`, { reason });
  }
}

/** An error a service throws to say "try again later" (network, 429, 5xx). */
export class RetryableError extends AiecsError {
  override readonly code = 'RETRYABLE_ERROR';
  override readonly retryable = true;
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, retryAfterMs === undefined ? {} : { retry_after_ms: retryAfterMs }, options);
  }
}

const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Network failures, 429 and 5xx are worth another attempt; everything else is not. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof AiecsError) return error.retryable;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as {
    retryable?: unknown;
    status?: unknown;
    statusCode?: unknown;
    code?: unknown;
    cause?: unknown;
  };
  if (typeof e.retryable === 'boolean') return e.retryable;
  const status =
    typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined) return status === 429 || status === 408 || status >= 500;
  if (typeof e.code === 'string' && RETRYABLE_NETWORK_CODES.has(e.code)) return true;
  if (e.cause !== undefined && e.cause !== error) return isRetryable(e.cause);
  return false;
}

/** The stored, wire-safe form of any thrown value. */
export function errorInfo(error: unknown): TaskErrorInfo {
  if (error instanceof AiecsError) {
    const info: TaskErrorInfo = { type: error.name, code: error.wireCode, message: error.message };
    if (error.stack) info.stack = error.stack;
    if (Object.keys(error.details).length > 0) info.details = error.details;
    return info;
  }
  if (error instanceof Error) {
    // Our errors from another copy of the package (a services module bundling its own) fail
    // instanceof: recognise them by shape.
    const e = error as Error & { wireCode?: unknown; details?: unknown };
    const code =
      typeof e.wireCode === 'string' && /^E\d{3}$/.test(e.wireCode) ? (e.wireCode as WireErrorCode) : 'E003';
    const info: TaskErrorInfo = { type: error.name || 'Error', code, message: error.message };
    if (error.stack) info.stack = error.stack;
    if (e.details && typeof e.details === 'object' && Object.keys(e.details).length) {
      info.details = e.details as Record<string, unknown>;
    }
    return info;
  }
  return { type: 'Error', code: 'E003', message: typeof error === 'string' ? error : safeString(error) };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** No token, or a token that is expired, forged or malformed. */
export class UnauthorizedError extends AiecsError {
  override readonly code = 'UNAUTHORIZED';
  override readonly wireCode = 'E001';
}

/** A valid user asking for something that is not theirs to do. */
export class ForbiddenError extends AiecsError {
  override readonly code = 'FORBIDDEN';
  override readonly wireCode = 'E001';
}

export class RateLimitedError extends AiecsError {
  override readonly code = 'RATE_LIMITED';
  override readonly wireCode = 'E001';
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message, { retry_after_s: retryAfterS });
  }
}

/** A worker id that no live worker has (`--worker`, `/api/workers/:name`). */
export class WorkerNotFoundError extends AiecsError {
  override readonly code = 'WORKER_NOT_FOUND';
  override readonly wireCode = 'E001';
  constructor(
    readonly worker: string,
    readonly live: string[],
  ) {
    super(`no live worker named ${worker}; live workers: ${live.length ? live.join(', ') : '(none)'}`, {
      worker,
      live,
    });
  }
}

/** A queue name that is not one of aiecs's queues. */
export class QueueNotFoundError extends AiecsError {
  override readonly code = 'QUEUE_NOT_FOUND';
  override readonly wireCode = 'E001';
  constructor(
    readonly queue: string,
    readonly queues: readonly string[],
  ) {
    super(`no queue named ${queue}; queues: ${queues.join(', ')}`, { queue, queues: [...queues] });
  }
}

/** A live worker asked over the control channel did not answer in time. */
export class WorkerNoReplyError extends AiecsError {
  override readonly code = 'WORKER_NO_REPLY';
  override readonly wireCode = 'E002';
  constructor(
    readonly worker: string,
    readonly seconds: number,
  ) {
    super(`worker ${worker} did not answer within ${seconds} s`, { worker, seconds });
  }
}

/** A worker answered a control command by refusing it (not consuming that queue, say). */
export class ControlRefusedError extends AiecsError {
  override readonly code = 'CONTROL_REFUSED';
  override readonly wireCode = 'E001';
  constructor(
    readonly worker: string,
    readonly command: string,
    reason: string,
  ) {
    super(`worker ${worker} refused ${command}: ${reason}`, { worker, command });
  }
}

/**
 * A workflow tree refused before anything of it was queued: its shape, its depth, a leaf's field,
 * a repeated task id. Each issue names its path in the tree, e.g. `chain[2].group[1].mode`.
 */
export class WorkflowInvalidError extends FieldIssuesError {
  override readonly code = 'WORKFLOW_INVALID';
  override readonly wireCode = 'E001';
  constructor(issues: FieldIssue[]) {
    super('invalid workflow', issues, MESSAGE_ISSUES);
  }
}

/** A workflow with more tasks than AIECS_WORKFLOW_MAX_TASKS allows. */
export class WorkflowTooLargeError extends AiecsError {
  override readonly code = 'WORKFLOW_TOO_LARGE';
  override readonly wireCode = 'E001';
  constructor(
    readonly tasks: number,
    readonly limit: number,
  ) {
    super(
      `the workflow has ${tasks} tasks, over the limit of ${limit} (AIECS_WORKFLOW_MAX_TASKS); split it into several workflows`,
      { tasks, limit },
    );
  }
}

/**
 * A schedule (an entry of a schedule file, or one sent to POST /api/schedules) that cannot be
 * used; a file with one is refused whole. Each issue names the entry and the field, e.g.
 * `nightly-report.cron` or `[3].task.user_id`.
 */
export class ScheduleInvalidError extends FieldIssuesError {
  override readonly code = 'SCHEDULE_INVALID';
  override readonly wireCode = 'E001';
  constructor(
    issues: FieldIssue[],
    readonly source = 'schedule',
  ) {
    super(`invalid ${source}`, issues, MESSAGE_ISSUES);
  }
}

export class ScheduleNotFoundError extends AiecsError {
  override readonly code = 'SCHEDULE_NOT_FOUND';
  override readonly wireCode = 'E001';
  constructor(readonly schedule: string) {
    super(`no schedule named ${schedule}`, { schedule });
  }
}

/** A task template refused (code, `--templates` file): by entry and field, e.g. `summarize@2.input_schema`. */
export class TemplateInvalidError extends FieldIssuesError {
  override readonly code = 'TEMPLATE_INVALID';
  override readonly wireCode = 'E001';
  constructor(
    issues: FieldIssue[],
    readonly source = 'template',
  ) {
    super(`invalid ${source}`, issues, MESSAGE_ISSUES);
  }
}

/** No template of that name, or not that version of it; the message lists what is registered. */
export class TemplateNotFoundError extends AiecsError {
  override readonly code = 'TEMPLATE_NOT_FOUND';
  override readonly wireCode = 'E001';
  constructor(
    readonly template: string,
    readonly versions: number[],
    field = 'template',
  ) {
    super(
      versions.length
        ? `${field}: no template ${template}; its versions: ${versions.join(', ')}`
        : `${field}: no template named ${template.replace(/@.*$/, '')}`,
      { template, versions, field },
    );
  }

  /** The same error naming the request's field under `prefix` (a batch's `tasks[3]`). */
  at(prefix: string): TemplateNotFoundError {
    return new TemplateNotFoundError(this.template, this.versions, `${prefix}.template`);
  }
}

/** A Celery task name aiecs does not run (Flower's async-apply: 404 "Unknown task", as Flower answers). */
export class UnknownCeleryTaskError extends AiecsError {
  override readonly code = 'CELERY_TASK_NOT_FOUND';
  override readonly wireCode = 'E001';
  constructor(
    readonly task: string,
    readonly known: readonly string[],
  ) {
    super(`Unknown task '${task}': aiecs runs ${known.join(' and ')}`, { task, known: [...known] });
  }
}
