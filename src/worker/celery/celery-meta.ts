/**
 * A task's state as Celery's result backend stores it (celery/backends/base.py `_get_result_meta`,
 * `prepare_exception`; Celery 5.2): the JSON under `celery-task-meta-<id>` that Python's
 * `AsyncResult` reads. Pure: the relay (celery-results.ts) turns each history entry of a bridged
 * task into one of these, or into nothing when Celery would not write a state for it.
 *
 * | aiecs event                      | Celery status | result                                            |
 * |----------------------------------|---------------|---------------------------------------------------|
 * | queued                           | (none)        | Celery leaves a queued task's key absent: PENDING |
 * | running (a run starts)           | STARTED       | `{hostname}` (task_track_started's meta)          |
 * | progress step                    | PROGRESS      | `{status, task, step, progress, message, task_id}`|
 * | pending again (a retry)          | RETRY         | the error, in Celery's exception form             |
 * | completed                        | SUCCESS       | `{status: "completed", task, result}`             |
 * | failed / timed_out / cancelled   | SUCCESS       | `{status, task, error}` (the original worker's)   |
 * | … with `--celery-raise-failures`:|               |                                                   |
 * | failed                           | FAILURE       | `{exc_type: <the error's type>, exc_message, exc_module}` |
 * | timed_out                        | FAILURE       | `TimeLimitExceeded` (billiard.exceptions)         |
 * | cancelled                        | REVOKED       | `TaskRevokedError` (celery.exceptions)            |
 */
import { TaskStatus } from '../../core/task.js';
import type { Entry } from '../../engine/history/history-entries.js';

/** Celery's states (celery/states.py) that the relay writes. */
export type CeleryState = 'STARTED' | 'PROGRESS' | 'RETRY' | 'SUCCESS' | 'FAILURE' | 'REVOKED';

/** Celery's READY_STATES: a key in one of these is final (AsyncResult.ready()). */
export const READY_STATES: readonly CeleryState[] = ['SUCCESS', 'FAILURE', 'REVOKED'];

/** What `celery-task-meta-<id>` holds (without result_extended). */
export interface CeleryMeta {
  status: CeleryState;
  result: unknown;
  traceback: string | null;
  children: unknown[];
  date_done: string | null;
  task_id: string;
}

/** Celery's exception form (`prepare_exception` for the json serializer). */
export interface CeleryException {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string;
}

export interface MetaOptions {
  /** `--celery-raise-failures`: failures as FAILURE/REVOKED instead of the original's body under SUCCESS. */
  raiseFailures: boolean;
}

/** The Celery key of a task's result. */
export function celeryResultKey(celeryId: string): string {
  return `celery-task-meta-${celeryId}`;
}

/** Python names an aiecs error type may keep: the same exception in both languages. */
const PYTHON_BUILTINS = new Set(['TypeError', 'SyntaxError']);

/** The meta Celery would store for this entry, or undefined when it stores nothing for it. */
export function celeryMetaOf(entry: Entry, options: MetaOptions, now = new Date()): CeleryMeta | undefined {
  const { row } = entry;
  const taskId = entry.celery;
  if (taskId === undefined) return undefined;
  const meta = (status: CeleryState, result: unknown, traceback: string | null = null): CeleryMeta => ({
    status,
    result,
    traceback,
    children: [],
    date_done: READY_STATES.includes(status) ? celeryDate(now) : null,
    task_id: taskId,
  });
  const task = row.task_name;
  switch (row.status) {
    case TaskStatus.PENDING: {
      // Queued: Celery writes nothing. Pending again after a run: a retry, with its cause.
      if (row.kind === 'queued' || !entry.error) return undefined;
      return meta('RETRY', exceptionOf(entry.error.type, entry.error.message), entry.error.stack ?? null);
    }
    case TaskStatus.RUNNING:
      if (row.kind === 'running') return meta('STARTED', { hostname: row.worker, pid: null });
      return meta('PROGRESS', {
        status: row.status,
        task,
        step: row.step,
        progress: row.progress,
        message: row.message,
        task_id: row.task_id,
      });
    case TaskStatus.COMPLETED:
      return meta('SUCCESS', { status: TaskStatus.COMPLETED, task, result: row.result });
    case TaskStatus.FAILED:
    case TaskStatus.TIMED_OUT:
    case TaskStatus.CANCELLED: {
      const message = entry.error?.message ?? row.error_message ?? row.message ?? row.status;
      if (!options.raiseFailures) return meta('SUCCESS', { status: row.status, task, error: message });
      if (row.status === TaskStatus.CANCELLED)
        return meta('REVOKED', {
          exc_type: 'TaskRevokedError',
          exc_message: [message],
          exc_module: 'celery.exceptions',
        });
      if (row.status === TaskStatus.TIMED_OUT)
        return meta(
          'FAILURE',
          { exc_type: 'TimeLimitExceeded', exc_message: [message], exc_module: 'billiard.exceptions' },
          entry.error?.stack ?? null,
        );
      return meta('FAILURE', exceptionOf(entry.error?.type ?? 'Error', message), entry.error?.stack ?? null);
    }
  }
}

/** A remote error in Celery's exception form: Python recreates a class of that name. */
export function exceptionOf(type: string, message: string): CeleryException {
  // A module Python cannot import makes Celery create an exception class of the type's name
  // (celery.backends.base exception_to_python); builtins gives the real one where both languages share it.
  return {
    exc_type: type,
    exc_message: [message],
    exc_module: PYTHON_BUILTINS.has(type) ? 'builtins' : 'aiecs.errors',
  };
}

/** Python's `datetime.utcnow().isoformat()`: no zone, microseconds. */
export function celeryDate(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000`;
}
