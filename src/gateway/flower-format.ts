/**
 * aiecs's records and workers in the shapes of Flower 2.0's REST API (flower/api/tasks.py,
 * workers.py; a task is Celery's `events.state.Task.as_dict()` with `worker` as a hostname).
 * Pure: flower-routes.ts reads the records and workers, this turns them into Flower's JSON.
 *
 * Task states in Celery's words:
 *
 * | aiecs status                              | Celery state | `result` (`/api/task/result`)                         |
 * |-------------------------------------------|--------------|-------------------------------------------------------|
 * | pending                                   | PENDING      | (none: not ready)                                     |
 * | pending again after a failed try (retry)  | RETRY        | (none)                                                |
 * | running                                   | STARTED      | (none)                                                |
 * | completed                                 | SUCCESS      | `{status: "completed", task, result}`                 |
 * | failed                                    | FAILURE      | `"<ErrorType>('<message>')"` (Flower's repr of it)    |
 * | timed_out                                 | FAILURE      | as failed (the type is the task's timeout error)      |
 * | cancelled                                 | REVOKED      | `"TaskRevokedError('<message>')"`                     |
 *
 * A SUCCESS result is the original Python worker's return shape, the value Python's
 * `AsyncResult.get()` reads for a bridged task (the results relay's default), so one task has
 * one result whichever client asks. Failures are FAILURE here, whatever the relay writes: Flower
 * lists and filters tasks by what happened to them.
 */
import type { LiveWorker } from '../engine/admin.js';
import { CELERY_FAST_TASK, CELERY_HEAVY_TASK, CELERY_TASK_QUEUES } from '../core/celery-call.js';
import type { QueueKind, TaskRecord, TaskSummary } from '../core/task.js';
import { FAST_QUEUE, HEAVY_QUEUE, TaskStatus } from '../core/task.js';

export type CeleryTaskState = 'PENDING' | 'RETRY' | 'STARTED' | 'SUCCESS' | 'FAILURE' | 'REVOKED';

/** Celery's states (celery/states.py ALL_STATES): what `/api/tasks?state=` accepts. */
export const CELERY_STATES = [
  'PENDING',
  'RECEIVED',
  'STARTED',
  'SUCCESS',
  'FAILURE',
  'REVOKED',
  'REJECTED',
  'RETRY',
  'IGNORED',
] as const;

/** Celery's READY_STATES: a result is there to read. */
const READY: ReadonlySet<CeleryTaskState> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/** The seed's Celery task name of a queue (execute_task runs on fast_tasks, execute_heavy_task on heavy_tasks). */
export function celeryNameOf(queue: QueueKind): string {
  return queue === FAST_QUEUE ? CELERY_FAST_TASK : CELERY_HEAVY_TASK;
}

/** The queue of one of the seed's Celery task names, or undefined for any other name. */
export function queueOfCeleryName(name: string): QueueKind | undefined {
  return Object.hasOwn(CELERY_TASK_QUEUES, name) ? CELERY_TASK_QUEUES[name] : undefined;
}

export function celeryState(record: Pick<TaskRecord, 'status' | 'error'>): CeleryTaskState {
  switch (record.status) {
    case TaskStatus.PENDING:
      // A pending task with an error is waiting for its next try: Celery's RETRY.
      return record.error ? 'RETRY' : 'PENDING';
    case TaskStatus.RUNNING:
      return 'STARTED';
    case TaskStatus.COMPLETED:
      return 'SUCCESS';
    case TaskStatus.CANCELLED:
      return 'REVOKED';
    default:
      return 'FAILURE';
  }
}

export function isReady(state: CeleryTaskState): boolean {
  return READY.has(state);
}

/** The aiecs statuses a Celery state filter can match (a first narrowing; celeryState decides). */
export function statusesOf(state: string): TaskStatus[] {
  switch (state) {
    case 'PENDING':
    case 'RETRY':
      return [TaskStatus.PENDING];
    case 'STARTED':
      return [TaskStatus.RUNNING];
    case 'SUCCESS':
      return [TaskStatus.COMPLETED];
    case 'FAILURE':
      return [TaskStatus.FAILED, TaskStatus.TIMED_OUT];
    case 'REVOKED':
      return [TaskStatus.CANCELLED];
    default:
      return []; // RECEIVED, REJECTED, IGNORED: no aiecs task is ever in them
  }
}

/** A record's result as Celery's backend would hold it (see the table above); undefined when not ready. */
export function celeryResult(record: TaskRecord): unknown {
  const state = celeryState(record);
  if (state === 'SUCCESS')
    return { status: TaskStatus.COMPLETED, task: record.task_name, result: record.result };
  if (state === 'REVOKED') return `TaskRevokedError(${pyRepr(errorMessage(record))})`;
  if (state === 'FAILURE') return exceptionRepr(record);
  return undefined;
}

/** Celery's `traceback` of a failed task: its last line only (a stack shows the server's code). */
export function celeryTraceback(record: TaskRecord): string | null {
  if (celeryState(record) !== 'FAILURE') return null;
  return `${record.error?.type ?? 'Error'}: ${errorMessage(record)}`;
}

function errorMessage(record: TaskRecord): string {
  return record.error?.message ?? record.message ?? record.status;
}

function exceptionRepr(record: TaskRecord): string {
  return `${record.error?.type ?? 'Error'}(${pyRepr(errorMessage(record))})`;
}

/** The seed's positional arguments of the task, in order (core/celery-call.ts's signature). */
export function celeryArgs(record: TaskRecord): unknown[] {
  const { task_name, user_id, task_id, step, mode, service, input_data, context } = record;
  return [task_name, user_id, task_id, step, mode, service, input_data, context];
}

const seconds = (iso: string | null): number | null => (iso ? Date.parse(iso) / 1000 : null);

/**
 * The id a Flower client knows a task by: a bridged task's Celery message id (AsyncResult.id),
 * which differs from its task id when the seed's `task_id` argument chose that; else the task id.
 */
export function flowerId(record: TaskRecord): string {
  return record.celery_id ?? record.task_id;
}

/**
 * A task as Flower lists it (`/api/tasks` values, `/api/task/info`): every key of Celery 5's
 * `Task.as_dict()`, with what aiecs knows and `null` for what it does not keep (Flower's own
 * examples are full of nulls: `sent`, `exchange`, `client`). `received` is the submit time (the
 * store has the task from then on), `routing_key` the queue, `retries` the tries before this one.
 */
export function flowerTask(record: TaskRecord): Record<string, unknown> {
  const state = celeryState(record);
  const finished = seconds(record.finished_at);
  const uuid = flowerId(record);
  const root = record.root_id ?? uuid;
  const parent = record.parent_id ?? null;
  return {
    uuid,
    name: celeryNameOf(record.queue),
    state,
    received: seconds(record.created_at),
    sent: null,
    started: seconds(record.started_at),
    rejected: null,
    succeeded: state === 'SUCCESS' ? finished : null,
    failed: state === 'FAILURE' ? finished : null,
    retried: null,
    revoked: state === 'REVOKED' ? finished : null,
    // Celery's events carry these as Python reprs (saferepr): strings, not JSON.
    args: pyRepr(celeryArgs(record)),
    kwargs: '{}',
    eta: null,
    expires: null,
    retries: Math.max(0, record.attempt - 1),
    worker: record.worker,
    result: state === 'SUCCESS' ? pyRepr(celeryResult(record)) : null,
    exception: state === 'FAILURE' || state === 'REVOKED' ? (celeryResult(record) as string) : null,
    timestamp: finished ?? seconds(record.started_at) ?? seconds(record.created_at),
    runtime: record.duration_ms === null ? null : record.duration_ms / 1000,
    traceback: celeryTraceback(record),
    exchange: null,
    routing_key: record.queue,
    clock: 0,
    client: null,
    root,
    root_id: root,
    parent,
    parent_id: parent,
    children: [],
  };
}

/** A worker's `active` entry from `inspect active` (Celery's Request.info(safe=True)). */
export interface RunningTask extends TaskSummary {
  attempt: number;
  started_at: string;
}

/** Celery's queue declaration as `inspect active_queues` answers it (a direct exchange of the same name). */
export function celeryQueue(name: string): Record<string, unknown> {
  return {
    alias: null,
    auto_delete: false,
    binding_arguments: null,
    bindings: [],
    durable: true,
    exchange: {
      arguments: null,
      auto_delete: false,
      delivery_mode: 2,
      durable: true,
      name,
      passive: false,
      type: 'direct',
    },
    exclusive: false,
    name,
    no_ack: false,
    queue_arguments: null,
    routing_key: name,
  };
}

/**
 * A worker as Flower's `/api/workers` shows one: the eight inspect answers Flower gathers (stats,
 * active_queues, registered, scheduled, active, reserved, revoked, conf) and `timestamp`. aiecs's
 * own figures ride along in `stats` (Flower clients read the keys they know). `scheduled` and
 * `reserved` are empty: a waiting aiecs task belongs to no worker until one takes it.
 */
export function flowerWorker(
  worker: LiveWorker,
  running: RunningTask[],
  transport: string,
  now = Date.now(),
): Record<string, unknown> {
  const queues = worker.queues.filter((q): q is QueueKind => q === FAST_QUEUE || q === HEAVY_QUEUE);
  const maxConcurrency = Object.values(worker.concurrency).reduce((sum, n) => sum + n, 0);
  return {
    stats: {
      broker: { transport, hostname: null, port: null, virtual_host: null },
      clock: '0',
      pid: worker.pid,
      pool: { 'max-concurrency': maxConcurrency, processes: [worker.pid], implementation: worker.pool },
      prefetch_count: maxConcurrency,
      rusage: worker.rss_bytes === undefined ? {} : { maxrss: Math.round(worker.rss_bytes / 1024) },
      total: {},
      // aiecs's own figures.
      hostname: worker.hostname,
      version: worker.version,
      uptime: Math.round((now - worker.started_at) / 1000),
      active: worker.active,
      processed: worker.processed,
      failed: worker.failed,
      answered: worker.answered,
    },
    active_queues: queues.map(celeryQueue),
    registered: queues.map(celeryNameOf),
    scheduled: [],
    active: running.map((task) => ({
      id: task.task_id,
      name: celeryNameOf(task.queue),
      args: '[]',
      kwargs: pyRepr({
        task_name: task.task_name,
        user_id: task.user_id,
        task_id: task.task_id,
        mode: task.mode,
        service: task.service,
      }),
      type: celeryNameOf(task.queue),
      hostname: worker.id,
      time_start: Date.parse(task.started_at) / 1000,
      acknowledged: true,
      delivery_info: {
        exchange: '',
        routing_key: task.queue,
        priority: null,
        redelivered: task.attempt > 1,
      },
      worker_pid: worker.pid,
    })),
    reserved: [],
    revoked: [],
    conf: {
      task_routes: Object.fromEntries(Object.entries(CELERY_TASK_QUEUES).map(([n, q]) => [n, { queue: q }])),
    },
    timestamp: now / 1000,
  };
}

/**
 * Python's `repr()` of a JSON value, as Celery's events show arguments and results: `None`,
 * `True`, single-quoted strings (double-quoted when they hold a single quote and no double one),
 * `{'k': v}`. Numbers print as JavaScript does (Python differs only for exponents).
 */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : value > 0 ? 'inf' : '-inf';
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object')
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${pyString(k)}: ${pyRepr(v)}`)
      .join(', ')}}`;
  return pyString(String(value));
}

function pyString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}
