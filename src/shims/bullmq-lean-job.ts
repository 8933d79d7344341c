/**
 * Task jobs stored without what BullMQ already keeps beside them: the task's name in `data` (it is
 * the job's name, stored in its own field) and the job id in `opts` (it is the job's key).
 *
 * Written against bullmq 6.7.0, its pins unchanged in 6.7.6 (classes/job.js, queue-base.js,
 * worker.js). BullMQ's Queue and
 * Worker make their jobs through their protected `Job` getter (its "helper to easily extend Job
 * class calls"): the queue's add and addBulk through Job.create/createBulk, which store what
 * `asJSON()` returns; getJob and getJobs through Job.fromId, and a worker's fetched jobs through
 * Job.fromJSON. The classes here override those three points only. In memory a job is as before
 * (its data has task_name, its opts the jobId: validateOptions still checks the id); what is
 * stored lacks the two, and a job read back has its task_name again. Jobs stored in full (by an
 * earlier version, a flow, a schedule's template, updateData) read as they are.
 *
 * Why: the Redis memory of a waiting task (issue 18, bench --only backlog). A job hash stays in
 * Redis's compact listpack encoding only while every field is at most hash-max-listpack-value
 * (64) bytes; a no-op task's data was 70 and its opts 75 ({"jobId":"<uuid>",…}), which made each
 * waiting job a hashtable: 740 bytes of used_memory a job, 285 once both fit (10,000 jobs). A
 * larger task (its input_data over 64 bytes) stays a hashtable and saves about 50 bytes.
 * bullmq-lean-job.test.ts pins the internals this relies on.
 */
import type { Job as BullJob, JobJson } from 'bullmq';
import { QUEUE_KINDS } from '../core/task.js';
import { Job, Queue, Worker } from '../engine/bullmq.js';

/** The queues of tasks (fast_tasks, heavy_tasks): the stores make their queues and workers lean. */
export const isTaskQueue = (name: string): boolean => (QUEUE_KINDS as readonly string[]).includes(name);

/** A task's stored data: it has a user; link and schedule jobs' data has none. */
type TaskLike = { task_name?: unknown; user_id?: unknown };

const isTask = (data: unknown): data is TaskLike =>
  typeof data === 'object' && data !== null && typeof (data as TaskLike).user_id === 'string';

/** `data` as stored: a task's without its task_name when that is the job's name. */
export function withoutTaskName(data: unknown, name: string): unknown {
  if (!isTask(data) || data.task_name !== name) return data;
  const { task_name: _, ...rest } = data;
  return rest;
}

/** `data` as read: a task's stored without its task_name gets the job's name back (first, as it was). */
export function withTaskName(data: unknown, name: string): unknown {
  if (!isTask(data) || data.task_name !== undefined) return data;
  return { task_name: name, ...data };
}

export class LeanJob extends Job {
  static override fromJSON<T = unknown, R = unknown, N extends string = string>(
    queue: Parameters<typeof Job.fromJSON>[0],
    json: JobJson,
    jobId?: string,
  ): BullJob<T, R, N> {
    const job = super.fromJSON<T, R, N>(queue, json, jobId);
    job.data = withTaskName(job.data, job.name) as T;
    return job;
  }

  override asJSON(): JobJson {
    const data: unknown = this.data;
    // Stringified by asJSON itself: the lean data stands in for the call only.
    this.data = withoutTaskName(data, this.name);
    try {
      const json = super.asJSON();
      if (json.opts?.jobId !== undefined) {
        const { jobId: _, ...opts } = json.opts;
        json.opts = opts;
      }
      return json;
    } finally {
      this.data = data;
    }
  }
}

// Job's constructor is generic in its name type; LeanJob's (inherited) is not: the same class.
const LEAN_JOB = LeanJob as unknown as typeof Job;

/** A queue whose jobs are LeanJobs (adds store them lean, reads put the task name back). */
export class LeanQueue<D = unknown, R = unknown> extends Queue<D, R> {
  protected override get Job(): typeof Job {
    return LEAN_JOB;
  }
}

/** A worker whose fetched jobs are LeanJobs (their data has its task name). */
export class LeanWorker<D = unknown, R = unknown> extends Worker<D, R> {
  protected override get Job(): typeof Job {
    return LEAN_JOB;
  }
}
