/**
 * What the worker and the gateway need to know of the tasks a schedule fires, without the
 * schedules' validation, which workers never load.
 */
import type { Job } from 'bullmq';
import type { Logger } from '../core/logger.js';
import type { StoredTaskData } from '../core/task.js';
import type { Store } from './store.js';

/** Every scheduler aiecs makes has this prefix; others on the same queues are never touched. */
export const SCHEDULER_PREFIX = 'beat:';
/** Ids of the tasks a scheduler fires: BullMQ's `repeat:<scheduler id>:<due time in ms>`. */
const FIRED_TASK_ID = /^repeat:beat:[A-Za-z_][A-Za-z0-9_.-]{0,63}:\d{1,16}$/;

/** Whether a task id is one a schedule fired (they hold ':', which submitted ids may not). */
export function isScheduledTaskId(id: string): boolean {
  return FIRED_TASK_ID.test(id);
}

/**
 * Lists a task a schedule fired under its user, as a submit lists its task: called by the worker
 * when it takes the task the first time (a scheduler's job is made inside the store, where nothing
 * of ours runs). Best effort: a failed write costs a line in the user's list, never the task.
 */
export function indexFiredTask(store: Store, job: Job<StoredTaskData>, logger: Logger): void {
  const data = job.data as StoredTaskData | undefined;
  if (data?.schedule === undefined || !job.id || (job.attemptsStarted ?? 0) > 1 || job.attemptsMade > 0)
    return;
  const { user_id, task_name, mode, service } = data;
  const entry = {
    task_id: job.id,
    user_id,
    queue: job.queueName,
    created_at: job.timestamp,
    task_name,
    mode,
    service,
  };
  store
    .indexTasks([entry])
    .catch((error: unknown) =>
      logger.warn({ err: (error as Error).message, task_id: job.id }, 'could not list a scheduled task'),
    );
}
