/**
 * The seed's two Celery tasks as aiecs sees them: their names, the queue each was routed to, and
 * their signature `(task_name, user_id, task_id, step, mode, service, input_data, context)`. A
 * Celery call (positional and keyword arguments, as a producer's `.delay()` or Flower's
 * async-apply sends them) becomes a wire task request here; the request's own validation
 * (core/submission.ts) then checks the values, so both the Celery bridge and the Flower API
 * refuse a bad call with the same field-named errors as `POST /api/tasks`.
 */
import { ValidationError, type FieldIssue } from './errors.js';
import type { QueueKind } from './task.js';
import { FAST_QUEUE, HEAVY_QUEUE } from './task.js';

export const CELERY_FAST_TASK = 'aiecs.tasks.worker.execute_task';
export const CELERY_HEAVY_TASK = 'aiecs.tasks.worker.execute_heavy_task';

/** The seed's task names and the queues its `task_routes` sent them to. */
export const CELERY_TASK_QUEUES: Readonly<Record<string, QueueKind>> = {
  [CELERY_FAST_TASK]: FAST_QUEUE,
  [CELERY_HEAVY_TASK]: HEAVY_QUEUE,
};

/** The seed's signature, in its positional order (`self` of the bound task left out). */
export const CELERY_TASK_PARAMETERS = [
  'task_name',
  'user_id',
  'task_id',
  'step',
  'mode',
  'service',
  'input_data',
  'context',
] as const;

export type CeleryTaskParameter = (typeof CELERY_TASK_PARAMETERS)[number];

/** A Celery call turned into what `POST /api/tasks` takes, and the queue its name routes to. */
export interface CeleryCallRequest {
  queue: QueueKind;
  /** A wire task request (snake_case); still to be validated by prepareSubmission. */
  request: Partial<Record<CeleryTaskParameter, unknown>>;
}

/** Whether `name` is one of the seed's task names. */
export function isCeleryTaskName(name: string): boolean {
  return Object.hasOwn(CELERY_TASK_QUEUES, name);
}

/**
 * Maps a call of one of the seed's tasks to a task request. Errors name the argument as the caller
 * gave it: `args[8]` for a positional argument too many, `kwargs.colour` for an unknown keyword,
 * `kwargs.user_id` for one also given by position. A `task_id` or `step` of `null` (Python's
 * `None`) counts as not given. Values are not checked here: the submit does that.
 */
export function celeryCallToRequest(name: string, args: unknown, kwargs: unknown): CeleryCallRequest {
  const queue = CELERY_TASK_QUEUES[name];
  if (queue === undefined)
    throw new ValidationError(
      [
        {
          field: 'task',
          message: `unknown task "${name}": expected ${CELERY_FAST_TASK} or ${CELERY_HEAVY_TASK}`,
        },
      ],
      'invalid Celery call',
    );
  const issues: FieldIssue[] = [];
  const positional = args === undefined || args === null ? [] : args;
  const keywords = kwargs === undefined || kwargs === null ? {} : kwargs;
  if (!Array.isArray(positional)) issues.push({ field: 'args', message: 'expected a list' });
  if (typeof keywords !== 'object' || Array.isArray(keywords))
    issues.push({ field: 'kwargs', message: 'expected an object (a dict)' });
  if (issues.length > 0) throw new ValidationError(issues, 'invalid Celery call');

  const request: CeleryCallRequest['request'] = {};
  (positional as unknown[]).forEach((value, i) => {
    const parameter = CELERY_TASK_PARAMETERS[i];
    if (parameter === undefined) {
      issues.push({
        field: `args[${i}]`,
        message: `too many positional arguments: the task takes ${CELERY_TASK_PARAMETERS.length} (${CELERY_TASK_PARAMETERS.join(', ')})`,
      });
    } else request[parameter] = value;
  });
  for (const [key, value] of Object.entries(keywords as Record<string, unknown>)) {
    if (!(CELERY_TASK_PARAMETERS as readonly string[]).includes(key)) {
      issues.push({
        field: `kwargs.${key}`,
        message: `unknown argument: expected one of ${CELERY_TASK_PARAMETERS.join(', ')}`,
      });
    } else if (Object.hasOwn(request, key)) {
      issues.push({ field: `kwargs.${key}`, message: 'given both by position and by keyword' });
    } else request[key as CeleryTaskParameter] = value;
  }
  if (issues.length > 0) throw new ValidationError(issues, 'invalid Celery call');
  // Python's None for an optional argument: as if not given (the task id is then the Celery id).
  if (request.task_id === null) delete request.task_id;
  if (request.step === null) delete request.step;
  if (request.input_data === null) delete request.input_data;
  if (request.context === null) delete request.context;
  return { queue, request };
}
