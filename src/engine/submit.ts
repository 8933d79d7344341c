/**
 * The idempotent submit: wire (snake_case) requests checked, fingerprinted against tasks already
 * under their ids, and added to their queues with their index entries. Everything is checked
 * before anything is queued, so a batch is accepted whole or refused whole: each request's fields
 * (errors name the item, e.g. `[3].task_name`), ids repeated in the batch, and caller-chosen ids
 * that already name a task. An id names one task across both queues: the same request again
 * returns that task; another request, or the other queue, is a conflict.
 */
import type { Queue } from 'bullmq';
import type { AiecsConfig } from '../core/config.js';
import {
  PayloadTooLargeError,
  StoreUnavailableError,
  TaskConflictError,
  TemplateNotFoundError,
  ValidationError,
  type FieldIssue,
} from '../core/errors.js';
import type { CeleryMarker, QueueKind, StoredTaskData, StoredWorkflow, TaskJobData } from '../core/task.js';
import type { WorkflowIds } from '../core/workflow.js';
import {
  FAST_QUEUE,
  HEAVY_QUEUE,
  QUEUE_KINDS,
  TASK_ID_MAX_LENGTH,
  requestFingerprint,
  toBullPriority,
  toStoredData,
} from '../core/task.js';
import type { TemplateRegistry } from '../core/template-registry.js';
import type { WireSubmitOptions } from '../core/submission.js';
import { prepareSubmission } from '../core/submission.js';
import type { IndexedTask, Store } from './store.js';
import type { GuardedCall } from './store-guard.js';
import type { ResultEnvelope, SubmittedTask } from './task-record.js';
import { jobTaskData } from './task-record.js';

export type TaskQueue = Queue<StoredTaskData, ResultEnvelope>;

/**
 * One wire request and the queue it goes to; or a template submit (`template: "summarize@2"`, or a
 * name alone for its latest version), whose request gives no task_name, mode or service, and whose
 * queue is the template's unless given.
 */
export type WireSubmission =
  | {
      queue: QueueKind;
      request: unknown;
      options?: WireSubmitOptions;
      template?: undefined;
      /** Set by the Celery bridge only (never from an HTTP body): the message the task came from. */
      celery?: CeleryMarker;
    }
  | { template: string; queue?: QueueKind; request: unknown; options?: WireSubmitOptions };

/** What a submit needs of the app (the app itself; an interface keeps the two modules apart). */
export interface SubmitDeps<H> {
  readonly config: AiecsConfig;
  bounded<T>(what: string, call: (state: GuardedCall) => Promise<T>): Promise<T>;
  store(): Promise<Store>;
  queue(kind: QueueKind): Promise<TaskQueue>;
  /** The caller's handle on a submitted task; `created` is false when the id already named it. */
  handle(taskId: string, kind: QueueKind, created: boolean, submitted?: SubmittedTask): H;
  /** The task ends get()'s listener on the queue has heard; undefined before it is subscribed. */
  endsHeard(kind: QueueKind): number | undefined;
  /** What template submits resolve against. */
  readonly templates: TemplateRegistry;
}

type Prepared = ReturnType<typeof prepareSubmission>;

/**
 * Submits wire requests, accepted whole or refused whole. `itemName(i)` prefixes the fields of
 * item i's errors; a lone request whose name is '' keeps its own error (a PayloadTooLargeError is
 * HTTP 413, not a batch's 400). The queue comes apart from the items so a one-queue batch is not
 * copied item by item to add it. With `group`, the tasks are also one group (issue 15's batch):
 * each stores its first task as its workflow root, which stores the members' ids, so the group
 * reads, waits and cancels as a workflow that is a group (docs/design.md §9).
 */
export async function submitTasks<H>(
  app: SubmitDeps<H>,
  items: ReadonlyArray<{
    request: unknown;
    options?: WireSubmitOptions;
    template?: string | undefined;
    celery?: CeleryMarker | undefined;
  }>,
  queueOf: (index: number) => QueueKind | undefined,
  itemName: (index: number) => string,
  options: { group?: boolean } = {},
): Promise<H[]> {
  const field = (i: number, name: string) => (itemName(i) ? `${itemName(i)}.${name}` : name);
  const issues: FieldIssue[] = [];
  const prepared = items.map((item, i) => {
    try {
      if (item.template === undefined) {
        const prepared = prepareSubmission(queueOf(i)!, item.request, item.options, app.config.maxInputBytes);
        if (item.celery !== undefined) prepared.data.celery = { id: item.celery.id };
        return prepared;
      }
      return prepareTemplated(app, item.template, item.request, item.options, queueOf(i));
    } catch (error) {
      if (items.length === 1 && !itemName(0)) throw error;
      if (error instanceof TemplateNotFoundError) throw error.at(itemName(i));
      if (error instanceof ValidationError)
        issues.push(...error.issues.map((x) => ({ field: field(i, x.field), message: x.message })));
      else if (error instanceof PayloadTooLargeError)
        issues.push({ field: field(i, error.field), message: error.message });
      else throw error;
      return undefined;
    }
  });
  if (issues.length) throw new ValidationError(issues, 'invalid batch');
  const ready = prepared as Prepared[];
  // Only ids a caller chose can repeat: generated ones are random UUIDs.
  const first = new Map<string, number>();
  for (const [i, p] of ready.entries()) {
    if (!p.chosen) continue;
    const j = first.get(p.data.task_id);
    if (j === undefined) first.set(p.data.task_id, i);
    else issues.push({ field: field(i, 'task_id'), message: `repeats ${field(j, 'task_id')}` });
  }
  if (issues.length) throw new ValidationError(issues, 'invalid batch');

  // Refused before its add, a submit queued nothing; given up during it, it may have queued
  // its tasks, and says which, so the caller can read them or submit again with those ids.
  const adding = { started: false };
  try {
    const group = options.group ? groupOf(ready) : undefined;
    return await app.bounded('submit', (call) => addPrepared(app, ready, call, adding, group));
  } catch (error) {
    if (error instanceof StoreUnavailableError && adding.started)
      throw uncertainSubmit(
        error,
        ready.map((p) => p.data.task_id),
      );
    throw error;
  }
}

async function addPrepared<H>(
  app: SubmitDeps<H>,
  ready: Prepared[],
  call: GuardedCall,
  adding: { started: boolean },
  group?: Map<string, StoredWorkflow>,
): Promise<H[]> {
  const stored = (kind: QueueKind, data: TaskJobData): StoredTaskData => {
    const wf = group?.get(data.task_id);
    return wf ? { ...toStoredData(kind, data), wf } : toStoredData(kind, data);
  };
  const existing = new Set<string>();
  await Promise.all(
    ready
      .filter((p) => p.chosen)
      .map(async (p) => {
        for (const kind of QUEUE_KINDS) {
          const job = await (await app.queue(kind)).getJob(p.data.task_id);
          if (!job) continue;
          if (
            kind !== p.queue ||
            requestFingerprint(kind, jobTaskData(job)) !== requestFingerprint(p.queue, p.data)
          )
            throw new TaskConflictError(p.data.task_id);
          existing.add(p.data.task_id);
        }
      }),
  );

  const store = await app.store();
  const fresh = existing.size ? ready.filter((p) => !existing.has(p.data.task_id)) : ready;
  // A generated id's index entry rides along with its add: the add surely makes it. A chosen
  // id's waits until the add is known to have made the task: another process may have added
  // the same id since the check, and its owner's task must not enter this caller's list.
  const chosen = fresh.filter((p) => p.chosen);
  const generated = chosen.length ? fresh.filter((p) => !p.chosen) : fresh;
  // Given up already (the store was slow to answer the checks): the caller heard "not queued".
  if (call.givenUp) throw new Error('submit given up before its add');
  adding.started = true;
  const maxAttempts = app.config.maxAttempts;
  // What each add made, as its handle's get() needs it (SubmittedTask); read before the adds.
  const endsHeard = { [FAST_QUEUE]: app.endsHeard(FAST_QUEUE), [HEAVY_QUEUE]: app.endsHeard(HEAVY_QUEUE) };
  const submitted = new Map<string, SubmittedTask>();
  const made = (kind: QueueKind, p: Prepared, job: { data: StoredTaskData; timestamp: number }) =>
    submitted.set(p.data.task_id, {
      id: p.data.task_id,
      queue: kind,
      data: job.data,
      timestamp: job.timestamp,
      attempts: p.attempts ?? maxAttempts,
      endsHeard: endsHeard[kind],
    });
  await Promise.all([
    ...QUEUE_KINDS.map(async (kind) => {
      const mine = fresh.filter((p) => p.queue === kind);
      if (mine.length === 0) return;
      const queue = await app.queue(kind);
      if (mine.length === 1) {
        const p = mine[0]!;
        made(kind, p, await queue.add(p.data.task_name, stored(kind, p.data), jobOptions(p, maxAttempts)));
      } else {
        const jobs = await queue.addBulk(
          mine.map((p) => ({
            name: p.data.task_name,
            data: stored(kind, p.data),
            opts: jobOptions(p, maxAttempts),
          })),
        );
        mine.forEach((p, i) => made(kind, p, jobs[i]!));
      }
    }),
    store.indexTasks(generated.map((p) => indexEntry(p.queue, p.data))),
  ]);

  // Another process may have added the same id between our check and our add: the stored job decides.
  const created = new Map<string, boolean>();
  const checks = await Promise.allSettled(
    chosen.map(async (p) => {
      const stored = await (await app.queue(p.queue)).getJob(p.data.task_id);
      if (stored && requestFingerprint(p.queue, jobTaskData(stored)) !== requestFingerprint(p.queue, p.data))
        throw new TaskConflictError(p.data.task_id);
      created.set(p.data.task_id, stored?.timestamp === p.data.submitted_at);
    }),
  );
  if (chosen.length)
    await store.indexTasks(
      chosen.filter((p) => created.get(p.data.task_id)).map((p) => indexEntry(p.queue, p.data)),
    );
  // Indexed first: the tasks this batch did make stay listed when another of its ids lost a race.
  const lost = checks.find((c): c is PromiseRejectedResult => c.status === 'rejected');
  if (lost) throw lost.reason;
  // A generated id is new by construction; a chosen one is new if this submit's add made it.
  return ready.map((p) => {
    const id = p.data.task_id;
    const isNew = !p.chosen || (!existing.has(id) && created.get(id) !== false);
    return app.handle(id, p.queue, isNew, isNew ? submitted.get(id) : undefined);
  });
}

/**
 * A template submit: the template's task with the request's values over its defaults, its input
 * checked against its schema, and the version it resolved to kept in the task's data.
 */
function prepareTemplated<H>(
  app: SubmitDeps<H>,
  template: string,
  request: unknown,
  options: WireSubmitOptions | undefined,
  queue: QueueKind | undefined,
): Prepared {
  if (typeof request !== 'object' || request === null || Array.isArray(request))
    throw new ValidationError([{ field: '(root)', message: 'expected a task request object' }]);
  const heavy = queue === undefined ? undefined : queue === HEAVY_QUEUE;
  const resolved = app.templates.resolve(template, request as Record<string, unknown>, options, heavy);
  const prepared = prepareSubmission(
    resolved.queue,
    resolved.request,
    resolved.options,
    app.config.maxInputBytes,
  );
  prepared.data.template = resolved.ref;
  return prepared;
}

/** A batch's tasks as one group: every member names the first as root, which holds their ids. */
function groupOf(ready: Prepared[]): Map<string, StoredWorkflow> {
  const root = ready[0]!.data.task_id;
  const ids: WorkflowIds = { group: ready.map((p) => ({ task: p.data.task_id, queue: p.queue })) };
  const group = new Map<string, StoredWorkflow>(ready.map((p) => [p.data.task_id, { root }]));
  group.set(root, { root, ids });
  return group;
}

function jobOptions(prepared: Prepared, maxAttempts: number) {
  const opts: Record<string, unknown> = {
    jobId: prepared.data.task_id,
    // The job's timestamp is the task's submit time (StoredTaskData does not repeat it). Given,
    // it is stored in the job's options too, and read back with every fetch: only a chosen id,
    // whose submit compares it to tell its own add from an earlier one, needs it exact.
    timestamp: prepared.chosen ? prepared.data.submitted_at : undefined,
    priority: toBullPriority(prepared.data.options.priority),
    // No backoff: the worker's own policy (retryDelay) spaces retries, so jobs need not carry it.
    attempts: prepared.attempts ?? maxAttempts,
    // No removeOnComplete/removeOnFail: BullMQ's ages act only when a later job of the same queue
    // and state finishes, and know nothing of our task index; workers sweep instead (the measured
    // reasons are in worker/retention-sweeper.ts).
  };
  if (prepared.delayMs > 0) opts.delay = prepared.delayMs;
  return opts;
}

/**
 * A submit given up while its add was under way: the tasks may exist. Their ids let the caller
 * find out, or submit again with them (the same request under an existing id returns that task).
 */
function uncertainSubmit(error: StoreUnavailableError, ids: string[]): StoreUnavailableError {
  const which =
    ids.length === 1
      ? `task ${ids[0]} may have been queued: read it, or submit the same request again with task_id ${ids[0]}`
      : `${ids.length} tasks may have been queued (their ids are in details.task_ids): read them, or submit the same requests again with those task_id values`;
  return new StoreUnavailableError(
    `${error.message}; ${which}`,
    { ...error.details, queued: 'unknown', task_ids: ids },
    { cause: error },
  );
}

/** A submitted task's entry in the task index. */
export function indexEntry(kind: QueueKind, data: TaskJobData): IndexedTask {
  const { task_id, user_id, task_name, mode, service } = data;
  const entry: IndexedTask = {
    task_id,
    user_id,
    queue: kind,
    created_at: data.submitted_at,
    task_name,
    mode,
    service,
  };
  // A bridged task under another id (the seed's task_id argument) is found by its Celery id too.
  // Bounded as task ids are: a longer id is none a client asks with, and index keys have a limit.
  const celeryId = data.celery?.id;
  if (celeryId !== undefined && celeryId !== task_id && celeryId.length <= TASK_ID_MAX_LENGTH)
    entry.celery_id = celeryId;
  return entry;
}
