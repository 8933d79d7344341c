import type { QueueEvents } from 'bullmq';
import type { AiecsConfig } from '../core/config.js';
import { loadConfig } from '../core/config.js';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import {
  TaskCancelledError,
  TaskFailedError,
  TaskNotFoundError,
  TaskTimeoutError,
  WaitTimeoutError,
  ValidationError,
  type TimeLimitKind,
} from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createLogger } from '../core/logger.js';
import type { QueueKind, StoredTaskData, TaskRecord } from '../core/task.js';
import { FAST_QUEUE, HEAVY_QUEUE, QUEUE_KINDS, TaskStatus, isTerminal } from '../core/task.js';
import { encodeControl } from './control.js';
import { ResultWaiter } from './result-waiter.js';
import type { IndexFilter, Store, WorkerHeartbeat } from './store.js';
import { configuredStoreOptions, openStore } from './open-store.js';
import { StoreGuard, type GuardedCall } from './store-guard.js';
import type { WorkflowNode, WorkflowRead } from '../core/workflow.js';
import { isLinkJobId } from '../core/workflow-links.js';
import {
  cancelWithWorkflow,
  readWorkflow,
  type WorkflowCancelResult,
  type WorkflowHandle,
} from './workflow-handle.js';
import { closeWorkflows, submitWorkflow } from './workflow-submit.js';
import { submitTasks, type TaskQueue, type WireSubmission } from './submit.js';
import { Handle, type CancelResult, type TaskHandle, type WaitOptions } from './task-handle.js';
import { TaskSubmitter } from './task-submitter.js';
import type { SubmitWire } from './workflow-group.js';
import { TemplateSubmitter } from './template-submitter.js';
import { TemplateRegistry } from '../core/template-registry.js';
import { loadTemplateFile } from '../core/template-file.js';
import { retryTask, type RetryResult } from './task-retry.js';
import { CANCELLED_BEFORE_RUN, cancelMarker } from '../core/task-events.js';
import type { BullState, ResultEnvelope, SubmittedTask, TaskJob } from './task-record.js';
import { toTaskRecord } from './task-record.js';
import { TaskHistory } from './history/task-history.js';

// The handle's and the submitters' types, where callers of the app have always found them.
export type { CancelResult, TaskHandle, WaitOptions } from './task-handle.js';
export type { WireSubmission } from './submit.js';
export type { TaskSubmitter } from './task-submitter.js';
export type { TemplateSubmitter } from './template-submitter.js';

export interface AppOptions {
  /** Store URL; default: AIECS_BROKER_URL, else CELERY_BROKER_URL, else `embedded:./.aiecs/data`. */
  broker?: string;
  /** Redis key prefix / PostgreSQL schema; default `aiecs`. Tests use one each. */
  namespace?: string;
  /** Settings; default: parsed from the environment. */
  config?: AiecsConfig;
  logger?: Logger;
  /** An already open store to share (one process running app, worker and gateway). */
  store?: Store;
  /**
   * The templates this app (and a gateway on it) submits by; default: an empty registry. The
   * config's AIECS_TEMPLATES_FILE is loaded into it either way.
   */
  templates?: TemplateRegistry;
}

export interface ListTasksOptions {
  /** 1..200 (default 50). */
  limit?: number;
  cursor?: string;
  status?: TaskStatus;
  queue?: QueueKind;
  taskName?: string;
  mode?: string;
  service?: string;
  /** Created at or after (epoch ms). */
  since?: number;
  /** Created at or before (epoch ms). */
  until?: number;
}

/** How long a cancel request waits for a worker that missed the control message (a heartbeat or more). */
const CANCEL_REQUEST_TTL_MS = 10 * 60_000;

/** The producer side: submit, read, wait for and cancel tasks, from any process. */
export class AiecsApp {
  readonly config: AiecsConfig;
  readonly logger: Logger;
  readonly executeTask: TaskSubmitter;
  readonly executeHeavyTask: TaskSubmitter;
  readonly templates: TemplateRegistry;
  private storePromise: Promise<Store> | undefined;
  /** The store once open: what the guard asks whether it is reachable. */
  private openedStore: Store | undefined;
  private readonly guard: StoreGuard;
  private readonly ownsStore: boolean;
  private readonly queues = new Map<QueueKind, TaskQueue>();
  private readonly waiters = new Map<QueueKind, Promise<{ events: QueueEvents; waiter: ResultWaiter }>>();
  /** Result listeners once subscribed: a task added after that has its end heard. */
  private readonly listening = new Map<QueueKind, ResultWaiter>();
  private closed = false;
  private taskHistory: TaskHistory | undefined;

  constructor(private readonly options: AppOptions = {}) {
    this.config = options.config ?? loadConfig();
    this.logger = options.logger ?? createLogger(this.config);
    this.ownsStore = options.store === undefined;
    if (options.store) this.storePromise = Promise.resolve((this.openedStore = options.store));
    this.guard = new StoreGuard(this.config.storeTimeoutMs, () => this.openedStore);
    this.executeTask = new TaskSubmitter(this, FAST_QUEUE);
    this.executeHeavyTask = new TaskSubmitter(this, HEAVY_QUEUE);
    this.templates = options.templates ?? new TemplateRegistry();
    if (this.config.templatesFile) loadTemplateFile(this.templates, this.config.templatesFile);
  }

  /**
   * Submits by template: `app.template('summarize@2').delay(input, { userId })`; a name alone takes
   * the latest version at each submit (see template-submitter.ts).
   */
  template(ref: string): TemplateSubmitter {
    return new TemplateSubmitter(this, ref);
  }

  get brokerUrl(): string {
    return this.options.broker ?? this.config.brokerUrl;
  }

  /**
   * The durable task history (docs/design.md, "Task history"): `list`, `task`, `erase`. Each
   * throws HistoryDisabledError where it is off (Redis without AIECS_HISTORY_URL, AIECS_HISTORY=off).
   */
  get history(): TaskHistory {
    this.taskHistory ??= new TaskHistory(this.config, () => this.store());
    return this.taskHistory;
  }

  /** Opens the store (once); every other call does this implicitly. */
  store(): Promise<Store> {
    if (this.closed) return Promise.reject(new Error('the app is closed'));
    this.storePromise ??= openStore(
      this.brokerUrl,
      configuredStoreOptions(this.config, {
        logger: this.logger,
        role: 'producer',
        ...(this.options.namespace !== undefined ? { namespace: this.options.namespace } : {}),
      }),
    ).then(
      (store) => (this.openedStore = store),
      (error: unknown) => {
        // Not kept: the next call tries again (the store may be back by then).
        this.storePromise = undefined;
        throw error;
      },
    );
    return this.storePromise;
  }

  /**
   * Runs store calls for a caller who waits (a request, a command): a store known to be down is
   * refused at once, and one that does not answer within AIECS_STORE_TIMEOUT_MS is given up;
   * both throw StoreUnavailableError (HTTP 503). `givenUp` turns true when the call is given up.
   */
  bounded<T>(
    what: string,
    call: (state: GuardedCall) => Promise<T>,
    options?: { probe?: boolean },
  ): Promise<T> {
    return this.guard.run(what, call, options);
  }

  /** Seconds a caller refused with StoreUnavailableError should wait before trying again. */
  get retryAfterS(): number {
    return this.guard.retryAfterS;
  }

  async queue(kind: QueueKind): Promise<TaskQueue> {
    const store = await this.store();
    let queue = this.queues.get(kind);
    if (!queue) {
      queue = store.createQueue<StoredTaskData, ResultEnvelope>(kind);
      queue.on('error', (error) => this.logger.warn({ err: error.message, queue: kind }, 'queue error'));
      this.queues.set(kind, queue);
      // A queue made while the store is down never gets ready (BullMQ's PostgreSQL backend keeps
      // the failed start): the next call makes a new one.
      const made = queue;
      made.waitUntilReady().catch(() => {
        if (this.queues.get(kind) !== made) return;
        this.queues.delete(kind);
        void made.close().catch(() => undefined);
      });
    }
    return queue;
  }

  /**
   * Submits wire (snake_case) requests: the HTTP API and the CLI come in here; the library's
   * `executeTask.delay` too, once it has respelled its request. One request gets its own error
   * (PayloadTooLargeError is HTTP 413) and its handle; a batch is accepted whole or refused whole
   * (see submit.ts), its errors naming the item by `itemName` (default `[i]`), and gets a handle
   * per request, in order; with `group`, the batch is also one group whose id is its first task's.
   * The two forms are SubmitWire's (a field, not a method: a method would declare them again).
   */
  submitWire: SubmitWire = (async (
    items: WireSubmission | readonly WireSubmission[],
    itemName: (index: number) => string = (i) => `[${i}]`,
    options: { group?: boolean } = {},
  ): Promise<TaskHandle | TaskHandle[]> => {
    if (isBatch(items)) return submitTasks(this, items, (i) => items[i]!.queue, itemName, options);
    const [handle] = await submitTasks(
      this,
      [items],
      () => items.queue,
      () => '',
    );
    return handle!;
  }) as SubmitWire;

  /**
   * A page of a user's tasks (all users' without one), newest first, as records. The index
   * narrows by queue, task name, mode, service and time; the status is read from the records, a
   * bounded number of index pages per call: a page may come back short, with a cursor to go on.
   */
  listTasks(
    userId: string | undefined,
    options: ListTasksOptions = {},
  ): Promise<{ tasks: TaskRecord[]; next_cursor?: string }> {
    return this.guard.run('list tasks', () => this.readPage(userId, options));
  }

  private async readPage(
    userId: string | undefined,
    options: ListTasksOptions,
  ): Promise<{ tasks: TaskRecord[]; next_cursor?: string }> {
    const filter: IndexFilter = {};
    if (options.queue !== undefined) filter.queue = options.queue;
    if (options.taskName !== undefined) filter.task_name = options.taskName;
    if (options.mode !== undefined) filter.mode = options.mode;
    if (options.service !== undefined) filter.service = options.service;
    if (options.since !== undefined) filter.since = options.since;
    if (options.until !== undefined) filter.until = options.until;
    const limit = options.limit ?? 50;
    const store = await this.store();
    const tasks: TaskRecord[] = [];
    // Defence in depth for the index: each task once, and only the asked-for user's.
    const seen = new Set<string>();
    let cursor = options.cursor;
    // The status is the record's, so a page may need several index pages; a few are enough.
    for (let round = 0; round < 10; round++) {
      const page = await store.listTasks(userId, limit - tasks.length, cursor, filter);
      const records = await Promise.all(
        page.items.map((item) => this.readTask(item.task_id, item.queue as QueueKind)),
      );
      for (const record of records) {
        if (!record) continue; // removed by retention
        if (seen.has(record.task_id) || (userId !== undefined && record.user_id !== userId)) continue;
        seen.add(record.task_id);
        if (options.status && record.status !== options.status) continue;
        tasks.push(record);
      }
      cursor = page.next_cursor;
      if (!cursor || tasks.length >= limit) break;
    }
    return cursor ? { tasks, next_cursor: cursor } : { tasks };
  }

  /** The task ends get()'s listener on the queue has heard, once it is subscribed (see SubmittedTask). */
  endsHeard(kind: QueueKind): number | undefined {
    return this.listening.get(kind)?.endsHeard;
  }

  handle(taskId: string, kind: QueueKind, created = true, submitted?: SubmittedTask): TaskHandle {
    return new Handle(this, taskId, kind, created, submitted);
  }

  /** The record of a task by id, from whichever queue holds it. */
  getTask(taskId: string, kind?: QueueKind): Promise<TaskRecord | undefined> {
    // A workflow's hidden fan-out job is no task (core/workflow-links.ts).
    if (isLinkJobId(taskId)) return Promise.resolve(undefined);
    return this.guard.run('read the task', () => this.readTask(taskId, kind));
  }

  private async readTask(taskId: string, kind?: QueueKind): Promise<TaskRecord | undefined> {
    let found: { job: TaskJob; kind: QueueKind } | undefined;
    let state: BullState;
    if (kind) {
      // The queue is known (every waiter's case): both reads leave in one round trip, the job first.
      const queue = await this.queue(kind);
      const [job, jobState] = await Promise.all([queue.getJob(taskId), queue.getJobState(taskId)]);
      if (!job) return undefined;
      found = { job: job as TaskJob, kind };
      state = jobState as BullState;
    } else {
      found = await this.findJob(taskId);
      if (!found) return undefined;
      state = (await found.job.getState()) as BullState;
    }
    if (state === 'unknown') return undefined;
    // The job and its state are two reads: one that finished in between needs a fresh snapshot.
    if ((state === 'completed' || state === 'failed') && !found.job.finishedOn) {
      found = await this.findJob(taskId, found.kind);
      if (!found) return undefined;
    }
    return toTaskRecord(found.job, state, found.kind);
  }

  private async findJob(
    taskId: string,
    kind?: QueueKind,
  ): Promise<{ job: TaskJob; kind: QueueKind } | undefined> {
    if (isLinkJobId(taskId)) return undefined;
    const kinds = kind ? [kind] : QUEUE_KINDS;
    const jobs = await Promise.all(kinds.map(async (k) => (await this.queue(k)).getJob(taskId)));
    for (let i = 0; i < kinds.length; i++) {
      const job = jobs[i];
      if (job) return { job: job as TaskJob, kind: kinds[i] as QueueKind };
    }
    return undefined;
  }

  /** `submitted`: the task as this process's submit made it (its completed event is its record). */
  async waitFor(
    taskId: string,
    kind: QueueKind,
    options: WaitOptions = {},
    submitted?: SubmittedTask,
  ): Promise<TaskRecord> {
    const timeoutS = options.timeout;
    if (timeoutS !== undefined && !(timeoutS >= 0)) {
      throw new ValidationError([{ field: 'timeout', message: 'must be a number of seconds >= 0' }]);
    }
    const { waiter } = await this.waiterFor(kind);
    const record = await waiter.wait(
      taskId,
      timeoutS === undefined ? Infinity : timeoutS * 1000,
      () => new WaitTimeoutError(taskId, timeoutS ?? 0),
      submitted,
    );
    return settleRecord(record);
  }

  private waiterFor(kind: QueueKind): Promise<{ events: QueueEvents; waiter: ResultWaiter }> {
    let entry = this.waiters.get(kind);
    if (!entry) {
      entry = (async () => {
        const store = await this.store();
        const events = store.createQueueEvents(kind);
        events.on('error', (error) =>
          this.logger.warn({ err: error.message, queue: kind }, 'queue events error'),
        );
        await events.waitUntilReady();
        const waiter = new ResultWaiter(events, (id) => this.getTask(id, kind));
        this.listening.set(kind, waiter);
        return { events, waiter };
      })();
      this.waiters.set(kind, entry);
    }
    return entry;
  }

  /**
   * Cancels a task wherever it is. A running task's worker is told over the control channel; a
   * pending one is marked so that no worker ever runs it.
   */
  cancel(
    taskId: string,
    options: { tree?: boolean } = {},
  ): Promise<CancelResult & { workflow?: WorkflowCancelResult }> {
    // The root of a workflow (any member, with `tree`) takes every unfinished member with it.
    return cancelWithWorkflow(this, taskId, options.tree === true);
  }

  /** Cancels one task, never its workflow's other members. */
  cancelOne(taskId: string): Promise<CancelResult> {
    return this.guard.run('cancel the task', (call) => this.cancelTask(taskId, call));
  }

  private async cancelTask(taskId: string, call: GuardedCall): Promise<CancelResult> {
    const found = await this.findJob(taskId);
    if (!found) throw new TaskNotFoundError(taskId);
    const { job } = found;
    const state = (await job.getState()) as BullState;
    const before = toTaskRecord(job, state, found.kind);
    if (isTerminal(before.status)) return { task_id: taskId, status: before.status, cancelled: false };

    const store = await this.store();
    // Given up already: the caller was told the cancel failed, so it does not happen later.
    if (call.givenUp) throw new Error('cancel given up before it was sent');
    // Tell the workers first: a task that turns active right now is caught by the message. The
    // request is also kept a while, for a worker that did not hear the message.
    await Promise.all([
      store.publish(encodeControl({ type: 'cancel', task_id: taskId })),
      store.requestCancel(taskId, CANCEL_REQUEST_TTL_MS),
    ]);
    if (state === 'active') return { task_id: taskId, status: TaskStatus.RUNNING, cancelled: true };

    const error = new TaskCancelledError(taskId, CANCELLED_BEFORE_RUN).toInfo();
    delete error.stack;
    // The caller's marker: final at once, and the worker that takes the job drops it.
    await job.updateProgress(cancelMarker(before.attempt, error) as unknown as object);
    // A delayed task would otherwise sit until its time; let a worker drain it now.
    if (state === 'delayed') await job.promote().catch(() => undefined);
    return { task_id: taskId, status: TaskStatus.CANCELLED, cancelled: true };
  }

  /**
   * Runs a failed, timed-out or cancelled task again under its id, as a new attempt (see
   * task-retry.ts); any other status is refused with TaskNotRetryableError.
   */
  retry(taskId: string): Promise<RetryResult> {
    return this.guard.run('retry the task', () => retryTask(this, taskId));
  }

  /** Queues a workflow tree (chain, group, chord, nested) whole or not at all (workflow-submit.ts). */
  submitWorkflow(tree: WorkflowNode): Promise<WorkflowHandle> {
    return submitWorkflow(this, tree);
  }

  /** The tree of the workflow a task belongs to (GET /api/tasks/:id/tree); undefined for a lone task. */
  readWorkflow(taskId: string): Promise<WorkflowRead | undefined> {
    return readWorkflow(this, taskId);
  }

  listWorkers(): Promise<WorkerHeartbeat[]> {
    return this.guard.run('list workers', async () => (await this.store()).listHeartbeats());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeWorkflows(this);
    const entries = await Promise.allSettled([...this.waiters.values()]);
    for (const entry of entries) {
      if (entry.status !== 'fulfilled') continue;
      entry.value.waiter.abortAll(new Error('the app was closed while waiting'));
      await settleWithin(entry.value.events.close(), CLOSE_DEADLINE_MS);
    }
    await settleWithin(
      Promise.allSettled([...this.queues.values()].map((q) => q.close())),
      CLOSE_DEADLINE_MS,
    );
    await this.taskHistory?.close();
    if (this.ownsStore && this.storePromise) {
      const store = await this.storePromise.catch(() => undefined);
      await store?.close();
    }
  }
}

/** Turns a terminal record into the caller's result, or into the error it stands for. */
export function settleRecord(record: TaskRecord): TaskRecord {
  const remote = record.error ?? { type: 'Error', code: 'E003' as const, message: 'task failed' };
  switch (record.status) {
    case TaskStatus.COMPLETED:
      return record;
    case TaskStatus.TIMED_OUT: {
      const details = remote.details ?? {};
      const limit: TimeLimitKind = details.limit === 'soft' ? 'soft' : 'hard';
      const seconds = typeof details.seconds === 'number' ? details.seconds : 0;
      throw Object.assign(new TaskTimeoutError(limit, seconds, record.task_id), { remote, record });
    }
    case TaskStatus.CANCELLED:
      // details.reason says why when no one cancelled it (expired, upstream_failed).
      throw Object.assign(new TaskCancelledError(record.task_id, remote.message, remote.details), {
        remote,
        record,
      });
    default:
      throw Object.assign(new TaskFailedError(record.task_id, remote), { record });
  }
}

// Array.isArray does not narrow a readonly array.
const isBatch = (items: WireSubmission | readonly WireSubmission[]): items is readonly WireSubmission[] =>
  Array.isArray(items);

export function createApp(options: AppOptions = {}): AiecsApp {
  return new AiecsApp(options);
}
