/**
 * What operators read and do to the queues themselves, on any store: counts per state, the tasks
 * waiting and scheduled, and purge (Celery's). These are the store's, not any worker's: BullMQ hands
 * a task to a worker only when it has a free slot, so a waiting task belongs to no worker yet.
 */
import { QueueNotFoundError } from '../core/errors.js';
import type { QueueKind, TaskSummary } from '../core/task.js';
import { QUEUE_KINDS, taskSummary } from '../core/task.js';
import { isLinkJobName } from '../core/workflow-links.js';
import type { AiecsApp } from './app.js';
import type { TaskJob } from './task-record.js';
import { jobTaskData, progressPayload } from './task-record.js';

export interface QueueCounts {
  queue: QueueKind;
  /** Ready to run, in priority order (BullMQ's wait and prioritized). */
  waiting: number;
  /** Not before a time: a countdown, an eta, or a retry's backoff. */
  delayed: number;
  active: number;
  completed: number;
  failed: number;
  /** Paused: workers take none of its tasks until it is resumed (BullMQ's Queue.pause). */
  paused: boolean;
}

/** A task still in its queue, as `inspect reserved|scheduled` lists it. */
export interface QueuedTask extends TaskSummary {
  /** The seed's scale: higher runs first. */
  priority: number;
  /** Attempts already spent (a retry waits with 1 or more). */
  attempts_made: number;
  created_at: string;
  /** When a delayed task may run (for a retry, as its worker scheduled it). */
  eta: string | null;
}

export interface QueueListing {
  queue: QueueKind;
  total: number;
  tasks: QueuedTask[];
}

export interface PurgeResult {
  queue: QueueKind;
  waiting: number;
  delayed: number;
}

/** The queues named, each once; an unknown name is refused before anything is done. */
export function checkQueues(names: readonly string[]): QueueKind[] {
  const queues: QueueKind[] = [];
  for (const name of names) {
    const queue = QUEUE_KINDS.find((q) => q === name);
    if (!queue) throw new QueueNotFoundError(name, QUEUE_KINDS);
    if (!queues.includes(queue)) queues.push(queue);
  }
  return queues;
}

export async function queueCounts(app: AiecsApp, queue: QueueKind): Promise<QueueCounts> {
  const q = await app.queue(queue);
  const [c, paused] = await Promise.all([
    q.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'completed', 'failed'),
    q.isPaused(),
  ]);
  const n = (key: string) => c[key] ?? 0;
  return {
    queue,
    waiting: n('wait') + n('prioritized'),
    delayed: n('delayed'),
    active: n('active'),
    completed: n('completed'),
    failed: n('failed'),
    paused,
  };
}

/**
 * Pauses or resumes `queue` for every worker (BullMQ's Queue.pause and resume, kept in the
 * store): a paused queue keeps taking tasks, and its running ones finish; none starts until resumed.
 */
export async function setQueuePaused(
  app: AiecsApp,
  queue: QueueKind,
  paused: boolean,
): Promise<{ queue: QueueKind; paused: boolean }> {
  const q = await app.queue(queue);
  if (paused) await q.pause();
  else await q.resume();
  return { queue, paused: await q.isPaused() };
}

function queuedTask(job: TaskJob, queue: QueueKind, delayed: boolean): QueuedTask {
  const data = jobTaskData(job);
  const made = job.attemptsMade ?? 0;
  // A retry's delay counts from when its worker gave the attempt up (its last report), not from the submit.
  const from = made > 0 ? (progressPayload(job)?.timestamp ?? job.timestamp) : job.timestamp;
  return {
    ...taskSummary(data, queue),
    priority: data.options.priority ?? 0,
    attempts_made: made,
    created_at: new Date(job.timestamp).toISOString(),
    eta: delayed ? new Date(from + (job.delay ?? 0)).toISOString() : null,
  };
}

/** The first `limit` tasks waiting (next to run first) or delayed, and how many there are. */
export async function listQueue(
  app: AiecsApp,
  queue: QueueKind,
  state: 'waiting' | 'delayed',
  limit: number,
): Promise<QueueListing> {
  const q = await app.queue(queue);
  const counts = await queueCounts(app, queue);
  const types = state === 'waiting' ? (['prioritized', 'wait'] as const) : (['delayed'] as const);
  const jobs = limit > 0 ? ((await q.getJobs([...types], 0, limit - 1, true)) as TaskJob[]) : [];
  return {
    queue,
    total: state === 'waiting' ? counts.waiting : counts.delayed,
    tasks: jobs
      .slice(0, limit)
      // A workflow's hidden fan-out jobs (core/workflow-links.ts) are no tasks; `total` counts them.
      .filter((job) => !isLinkJobName(job.name))
      .map((job) => queuedTask(job, queue, state === 'delayed')),
  };
}

/**
 * Removes the tasks waiting and delayed in `queue` (their records go with them, as a purge of a
 * Celery queue drops its messages); running tasks are untouched. Says how many went from each.
 */
export async function purgeQueue(app: AiecsApp, queue: QueueKind): Promise<PurgeResult> {
  const q = await app.queue(queue);
  const clean = async (type: 'wait' | 'prioritized' | 'delayed') =>
    // Grace 0 and no limit: every task of that state submitted before now.
    (await q.clean(0, 0, type)).length;
  const waiting = (await clean('prioritized')) + (await clean('wait'));
  const delayed = await clean('delayed');
  return { queue, waiting, delayed };
}
