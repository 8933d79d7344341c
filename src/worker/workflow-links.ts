/**
 * The worker's side of fan-out in a workflow (core/workflow-links.ts, docs/design.md §9): it runs
 * the hidden await and gather jobs, and wakes a task's await jobs once the task has ended.
 *
 * - A gather job is released by BullMQ once all its children (the tasks of a group) ended: it
 *   returns their results by id, or fails naming the first, in submission order, that did not
 *   complete — what a native parent would have read of them.
 * - An await job reads the one job it waits for: completed → its results; failed or gone → fails
 *   naming the task and its error; not ended → back to delayed (the wait so far, from 0.25 s to
 *   30 s), to be woken when that job ends (`release`). The poll is only the safety net for a
 *   wake-up that was lost (its worker died between the end and the wake-up).
 */
import type { Job as BullJob } from 'bullmq';
import type { Logger } from '../core/logger.js';
import type { StoredTaskData } from '../core/task.js';
import type { LinkFailure, LinkJobData, LinkRef, LinkValues } from '../core/workflow-links.js';
import {
  AWAIT_JOB,
  AWAIT_MIN_WAIT_MS,
  GATHER_JOB,
  decodeLinkFailure,
  encodeLinkFailure,
  linkValues,
} from '../core/workflow-links.js';
import { DelayedError, Job, UnrecoverableError } from '../engine/bullmq.js';
import type { Store } from '../engine/store.js';
import type { ResultEnvelope, TaskJob } from '../engine/task-record.js';
import { readChildren } from './workflow-inputs.js';
import { LazyQueues } from './lazy-queues.js';

/** The longest wait of an await job between two looks (the shortest: AWAIT_MIN_WAIT_MS). */
const MAX_WAIT_MS = 30_000;
/** Wake-ups in flight at once: a 1,000-task group after one step is not 1,000 store calls at once. */
const LANES = 16;

/**
 * The wait before an await job looks again: as long as it has waited so far (so the waits about
 * double), within 0.25 s and 30 s. Kept in no field: nothing is written for it.
 */
export function awaitWaitMs(addedAt: number, now = Date.now()): number {
  return Math.min(MAX_WAIT_MS, Math.max(AWAIT_MIN_WAIT_MS, now - addedAt));
}

type LinkJob = BullJob<LinkJobData, LinkValues>;
type AnyJob = BullJob<StoredTaskData | LinkJobData, unknown>;

const ended = (state: string) => state === 'completed' || state === 'failed' || state === 'unknown';

export class WorkflowLinks {
  private readonly queues: LazyQueues;
  private closed = false;

  constructor(
    store: Store,
    private readonly logger: Logger,
  ) {
    this.queues = new LazyQueues(store, logger);
  }

  /** Runs a hidden job (the processor's first branch, by job name). */
  run(job: LinkJob, token: string | undefined): Promise<LinkValues> {
    return job.name === GATHER_JOB ? this.gather(job) : this.await(job, token);
  }

  private async gather(job: LinkJob): Promise<LinkValues> {
    const { values, failures } = await readChildren(job as unknown as TaskJob);
    const ids = job.data.ids ?? [];
    for (const id of ids)
      if (!values.has(id))
        throw new UnrecoverableError(
          encodeLinkFailure({ task_id: id, error: failures.get(id) ?? 'its result is gone' }),
        );
    return { values: Object.fromEntries(ids.map((id) => [id, values.get(id)])) };
  }

  private async await(job: LinkJob, token: string | undefined): Promise<LinkValues> {
    const of = job.data.of;
    if (!of) throw new UnrecoverableError('an await job that names no job');
    const queue = this.queues.get(of.queue);
    // Its state first, then the job: a job read first could end between the two reads, and its
    // copy would lack the result.
    const state = await queue.getJobState(of.id);
    if (ended(state)) return settle(of, (await queue.getJob(of.id)) as AnyJob | undefined, state);
    await job.moveToDelayed(Date.now() + awaitWaitMs(job.timestamp), token);
    // The awaited job may have ended while this one was active, when its wake-up found nothing
    // delayed to promote: looked at once more, now that this job is delayed.
    if (ended(await queue.getJobState(of.id))) await job.promote().catch(() => undefined);
    throw new DelayedError();
  }

  /** A job ended (completed, or failed): wakes the await jobs that wait for it, if any. */
  release(job: AnyJob | undefined): void {
    if (!job || this.closed) return;
    const awaits =
      job.name === GATHER_JOB
        ? (job.data as LinkJobData).awaits
        : (job.data as StoredTaskData | undefined)?.wf?.awaits;
    if (!awaits?.length) return;
    let next = 0;
    const lane = async () => {
      while (next < awaits.length) await this.wake(awaits[next++]!);
    };
    void Promise.all(Array.from({ length: Math.min(LANES, awaits.length) }, lane)).catch((error: Error) =>
      // Their polls still find the end.
      this.logger.warn({ err: error.message, task_id: job.id }, 'could not wake the tasks that follow'),
    );
  }

  private async wake(ref: LinkRef): Promise<void> {
    // A handle on the id alone (no read first): one store call. Not delayed: active (it looks
    // again once delayed) or ended already; nothing to do.
    await new Job(this.queues.get(ref.queue), AWAIT_JOB, {}, {}, ref.id).promote().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queues.close();
  }
}

/** What an await job answers for an awaited job that ended. */
function settle(of: LinkRef, target: AnyJob | undefined, state: string): LinkValues {
  const gathered = target?.name === GATHER_JOB;
  if (state === 'completed' && target) {
    if (gathered) return { values: linkValues(target.returnvalue) ?? {} };
    return { values: { [of.id]: (target.returnvalue as ResultEnvelope | undefined)?.result } };
  }
  const reason = (state === 'failed' && target?.failedReason) || 'its result is gone';
  const failure: LinkFailure = (gathered && decodeLinkFailure(reason)) || { task_id: of.id, error: reason };
  throw new UnrecoverableError(encodeLinkFailure(failure));
}
