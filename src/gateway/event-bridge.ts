import { EventEmitter } from 'node:events';
import type { QueueEvents } from 'bullmq';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import type { Logger } from '../core/logger.js';
import type { QueueKind, TaskRecord } from '../core/task.js';
import { QUEUE_KINDS, TaskStatus } from '../core/task.js';
import { isLinkJobId, memberParentId } from '../core/workflow-links.js';
import type {
  ProgressEvent,
  ProgressFields,
  ProgressPayload,
  ResultEnvelope,
  StreamEvent,
} from '../core/task-events.js';
import {
  PROGRESS_EVENT,
  QUEUED_SEQ,
  STREAM_EVENT,
  asProgressPayload,
  awaitsMove,
  completedFields,
  envelopeOf,
  finalSeq,
  isFinal,
  payloadFields,
  progressEvent,
  recordFields,
  reopensAfterEnd,
  runBaseSeq,
  shouldDeliver,
} from '../core/task-events.js';
import type { AiecsApp } from '../engine/app.js';
import type { TaskJob } from '../engine/task-record.js';
import { progressPayload } from '../engine/task-record.js';
import type { Store } from '../engine/store.js';
import { sweepIntervalMs } from '../worker/retention-sweeper.js';
import { encodeEvent } from './packet.js';
import type { ReplayEntry, TaskIdentity } from './replay-buffer.js';
import { DEFAULT_REPLAY_BOUNDS, ReplayBuffer, UNKNOWN_CREATION, sameIdentity } from './replay-buffer.js';

// The socket payloads, where the gateway's callers have always found them.
export type { ProgressEvent, StreamEvent } from '../core/task-events.js';

/** What a progress event's task is, fixed at submit: the dashboard's task list shows and filters by it. */
export interface TaskLabels {
  queue: QueueKind;
  mode: string;
  service: string;
  /** What the completed task used (its result's totals), once it has completed. */
  usage?: { input_tokens: number; output_tokens: number; cost_usd: number };
}

type BridgeFields = TaskIdentity &
  (
    | { kind: typeof PROGRESS_EVENT; taskId: string; seq: number; payload: ProgressEvent; labels: TaskLabels }
    | { kind: typeof STREAM_EVENT; taskId: string; seq: number; payload: StreamEvent }
  );

/** An event for one user's sockets, with its socket.io packet encoded once. */
export type BridgeEvent = BridgeFields & { packet: string };

interface Meta extends TaskIdentity {
  /** Its queue: an event from the other queue is of another task under the same id. */
  queue: QueueKind;
  taskName: string;
  /** Built once per task: every progress event of it carries the same object. */
  labels: TaskLabels;
  step: number;
  /** A workflow member's root and parent, put on each of its progress events. */
  workflow?: { root_id: string; parent_id: string | null };
  /** The template version it was submitted by, put on each of its progress events. */
  template?: string;
  attempt: number;
  /** The attempt the record showed when this node first read it, and active events seen since. */
  fetchedAttempt: number;
  activeSeen: number;
  progress: number;
  /** The worker's last word, held until BullMQ confirms the job failed. */
  pendingTerminal?: ProgressPayload;
  terminalSent: boolean;
}

export interface BridgeOptions {
  /** Events kept per task for `subscribe { after_seq }`. */
  replayPerTask?: number;
  /** Tasks whose events are kept. */
  replayTasks?: number;
  /** Bytes kept for replay over all tasks; the oldest tasks go first. */
  replayBytes?: number;
  /**
   * How long finished tasks are kept (AIECS_RETENTION_*): the bridge lets go of a task this long
   * after its end, as the workers' sweeps remove it. Without it, only the bounds above apply.
   */
  retention?: { completedS: number; failedS: number };
}

/** Finished tasks in the order they ended, for one retention time: the oldest expire first. */
interface Finished {
  keepMs: number;
  ids: string[];
  createdAt: number[];
  endedAt: number[];
  head: number;
}

/**
 * Turns the store's event streams (QueueEvents: BullMQ's events and the workers' progress and
 * stream events) into the realtime payloads, by the rules of core/task-events.ts, and fans them
 * out; each is kept in the replay buffer. Every gateway node runs one and sees every event, so no
 * routing between nodes is needed. Events of one task are handled strictly in order.
 */
export class EventBridge extends EventEmitter<{ event: [BridgeEvent] }> {
  private readonly events: QueueEvents[] = [];
  private readonly meta = new Map<string, Meta>();
  private readonly replay: ReplayBuffer;
  private readonly chains = new Map<string, Promise<void>>();
  /** Tasks whose metadata is kept: as many as the replay keeps. */
  private readonly metaTasks: number;
  private readonly finished: { completed: Finished; failed: Finished } | undefined;
  private readonly expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly app: AiecsApp,
    private readonly store: Store,
    private readonly logger: Logger,
    options: BridgeOptions = {},
  ) {
    super();
    this.metaTasks = options.replayTasks ?? DEFAULT_REPLAY_BOUNDS.tasks;
    this.replay = new ReplayBuffer({
      perTask: options.replayPerTask ?? DEFAULT_REPLAY_BOUNDS.perTask,
      tasks: this.metaTasks,
      bytes: options.replayBytes ?? DEFAULT_REPLAY_BOUNDS.bytes,
    });
    const retention = options.retention;
    if (retention) {
      const list = (keepS: number): Finished => ({
        keepMs: keepS * 1000,
        ids: [],
        createdAt: [],
        endedAt: [],
        head: 0,
      });
      this.finished = { completed: list(retention.completedS), failed: list(retention.failedS) };
      // As often as the workers sweep: the bridge never keeps a task much longer than the store.
      this.expiry = setInterval(() => this.expireFinished(Date.now()), sweepIntervalMs(retention));
      this.expiry.unref();
    }
  }

  async start(): Promise<void> {
    for (const queue of QUEUE_KINDS) {
      const events = this.store.createQueueEvents(queue);
      events.on('error', (error) => this.logger.warn({ err: error.message, queue }, 'queue events error'));
      this.attach(events, queue);
      this.events.push(events);
    }
    await Promise.all(this.events.map((e) => e.waitUntilReady()));
  }

  private attach(events: QueueEvents, queue: QueueKind): void {
    // A workflow's hidden fan-out jobs (core/workflow-links.ts) are no tasks: nothing of them is told.
    const on = (taskId: string, handle: (meta: Meta) => Promise<void> | void) =>
      isLinkJobId(taskId) ? undefined : this.forTask(taskId, queue, handle);
    events.on(
      'added',
      ({ jobId }) => !isLinkJobId(jobId) && this.serial(jobId, () => this.onAdded(jobId, queue)),
    );
    events.on('active', ({ jobId }) => on(jobId, (meta) => this.onActive(jobId, meta)));
    events.on('progress', ({ jobId, data }) => on(jobId, (meta) => this.onProgress(jobId, meta, data)));
    events.on('completed', ({ jobId, returnvalue }) =>
      on(jobId, (meta) => this.onCompleted(jobId, meta, returnvalue)),
    );
    events.on('failed', ({ jobId }) => on(jobId, (meta) => this.onFailed(jobId, queue, meta)));
    events.on('removed', ({ jobId }) => this.serial(jobId, () => this.forget(jobId, queue)));
    events.on(STREAM_EVENT as 'added', (raw: unknown) => {
      const e = raw as { task_id?: unknown; user_id?: unknown; seq?: unknown; delta?: unknown };
      if (typeof e.task_id !== 'string' || typeof e.user_id !== 'string' || typeof e.delta !== 'string')
        return;
      const taskId = e.task_id;
      const userId = e.user_id;
      const payload: StreamEvent = { task_id: taskId, seq: Number(e.seq), delta: e.delta };
      this.serial(taskId, () => {
        // The worker names the owner; the task's creation is known once its job has been read.
        const meta = this.meta.get(taskId);
        const createdAt = meta?.userId === userId ? meta.createdAt : UNKNOWN_CREATION;
        this.publish({ kind: STREAM_EVENT, userId, createdAt, taskId, seq: payload.seq, payload });
      });
    });
  }

  /**
   * Runs `handle` with the task's metadata, after the task's earlier events. The usual case (the
   * task is known, nothing of it is waiting) runs at once: no promise per event, thousands a second.
   */
  private forTask(taskId: string, queue: QueueKind, handle: (meta: Meta) => Promise<void> | void): void {
    const meta = this.chains.has(taskId) ? undefined : this.meta.get(taskId);
    if (meta && !meta.terminalSent && meta.queue === queue) return this.serial(taskId, () => handle(meta));
    this.serial(taskId, async () => {
      const found = await this.metaFor(taskId, queue);
      if (found) await handle(found);
    });
  }

  /**
   * One chain per task: an event waiting for a store read holds back the next. `fn` runs at once
   * when nothing of the task is waiting; only what it leaves pending becomes the chain.
   */
  private serial(taskId: string, fn: () => Promise<void> | void): void {
    const previous = this.chains.get(taskId);
    let next: Promise<void>;
    if (previous) next = previous.then(fn);
    else {
      let result: Promise<void> | void;
      try {
        result = fn();
      } catch (error) {
        return this.relayFailed(taskId, error as Error);
      }
      if (!result) return;
      next = result;
    }
    const settled = next.catch((error: Error) => this.relayFailed(taskId, error));
    this.chains.set(taskId, settled);
    void settled.then(() => {
      if (this.chains.get(taskId) === settled) this.chains.delete(taskId);
    });
  }

  private relayFailed(taskId: string, error: Error): void {
    this.logger.warn({ err: error.message, task_id: taskId }, 'could not relay task event');
  }

  /**
   * The task an event of `queue` is of. A live task known here is the usual case. Otherwise the
   * job says (one read, not the record's two): a task not seen yet, or an event after a task's
   * end (a pending task cancelled, then drained by a worker; or a new task under the same id whose
   * `added` this node missed), or from the other queue.
   */
  private async metaFor(taskId: string, queue: QueueKind): Promise<Meta | undefined> {
    const known = this.meta.get(taskId);
    if (known && !known.terminalSent && known.queue === queue) return known;
    const job = (await (await this.app.queue(queue)).getJob(taskId)) as TaskJob | undefined;
    // Gone: the event's task has no one left to tell.
    if (!job) return undefined;
    if (known?.queue === queue && known.createdAt === job.timestamp && known.userId === job.data.user_id)
      return known;
    if (known) this.forget(taskId);
    const attempt = job.attemptsStarted ?? 0;
    const meta: Meta = {
      userId: job.data.user_id,
      createdAt: job.timestamp,
      queue,
      taskName: job.data.task_name,
      labels: { queue, mode: job.data.mode, service: job.data.service },
      step: job.data.step ?? 0,
      ...(job.data.wf
        ? { workflow: { root_id: job.data.wf.root, parent_id: memberParentId(job.parent?.id) } }
        : {}),
      ...(job.data.template !== undefined ? { template: job.data.template } : {}),
      attempt,
      fetchedAttempt: attempt,
      activeSeen: 0,
      progress: progressPayload(job)?.progress ?? 0,
      terminalSent: false,
    };
    this.remember(taskId, meta);
    return meta;
  }

  /** Lets go of what the bridge holds of a task: its owner and its replay. */
  private forget(taskId: string, queue?: QueueKind): void {
    const meta = this.meta.get(taskId);
    // A removal in one queue says nothing of a task under the same id in the other.
    if (queue !== undefined && meta !== undefined && meta.queue !== queue) return;
    this.meta.delete(taskId);
    this.replay.drop(taskId);
  }

  private remember(taskId: string, meta: Meta): void {
    this.meta.set(taskId, meta);
    if (this.meta.size > this.metaTasks) {
      const oldest = this.meta.keys().next().value;
      if (oldest !== undefined) this.meta.delete(oldest);
    }
  }

  private emitProgress(taskId: string, meta: Meta, fields: ProgressFields): void {
    const payload = progressEvent(taskId, meta, fields);
    meta.progress = payload.progress;
    if (isFinal(payload)) {
      if (!meta.terminalSent) this.ended(taskId, meta, payload.status);
      meta.terminalSent = true;
    }
    const { userId, createdAt, labels } = meta;
    this.publish({ kind: PROGRESS_EVENT, userId, createdAt, taskId, seq: payload.seq, payload, labels });
  }

  /**
   * A job was stored under this id: a new task. Whatever the bridge still holds of the id is an
   * earlier task's (removed, and the id reused), and must neither reach nor name the new owner.
   */
  private async onAdded(taskId: string, queue: QueueKind): Promise<void> {
    this.forget(taskId);
    const meta = await this.metaFor(taskId, queue);
    if (meta) this.onPending(taskId, meta);
  }

  private onPending(taskId: string, meta: Meta): void {
    this.emitProgress(taskId, meta, {
      status: TaskStatus.PENDING,
      seq: QUEUED_SEQ,
      message: 'queued',
      progress: 0,
    });
  }

  private onActive(taskId: string, meta: Meta): void {
    // A task cancelled before it ran is still taken (and dropped) by a worker: it stays cancelled.
    if (meta.terminalSent) return;
    // Read late, the record may already count the attempt this event starts.
    meta.activeSeen += 1;
    meta.attempt = meta.activeSeen === 1 ? Math.max(1, meta.fetchedAttempt) : meta.attempt + 1;
    this.emitProgress(taskId, meta, {
      status: TaskStatus.RUNNING,
      seq: runBaseSeq(meta.attempt),
      message: 'started',
      progress: 0,
      attempt: meta.attempt,
    });
  }

  private onProgress(taskId: string, meta: Meta, data: unknown): void {
    const payload = asProgressPayload(data);
    if (!payload) return;
    // Pending after its end: the task was retried by hand (task-retry.ts). A new run follows.
    if (reopensAfterEnd(meta.terminalSent, payload)) this.reopen(meta);
    meta.attempt = Math.max(meta.attempt, payload.attempt);
    // A worker's final word is announced when BullMQ's move lands; the cancel marker ends here.
    if (awaitsMove(payload)) {
      meta.pendingTerminal = payload;
      return;
    }
    if (meta.terminalSent) return;
    this.emitProgress(taskId, meta, payloadFields(payload));
  }

  /** A retried task's events flow again; its next `active` is the next attempt. */
  private reopen(meta: Meta): void {
    meta.terminalSent = false;
    delete meta.pendingTerminal;
    meta.fetchedAttempt = meta.attempt + 1;
    meta.activeSeen = 0;
  }

  private onCompleted(taskId: string, meta: Meta, raw: unknown): void {
    if (meta.terminalSent) return;
    const envelope = envelopeOf(raw);
    const usage = envelope?.resources?.totals;
    if (usage) meta.labels.usage = usage;
    this.emitProgress(taskId, meta, completedFields(envelope, meta.attempt));
  }

  private onFailed(taskId: string, queue: QueueKind, meta: Meta): Promise<void> | void {
    if (meta.terminalSent) return;
    const last = meta.pendingTerminal;
    if (last) {
      this.emitProgress(taskId, meta, payloadFields(last));
      return;
    }
    // Failed without a word from a worker (stalled too often): the record says why.
    return this.app.getTask(taskId, queue).then((record) => {
      if (record && isFinal(record) && sameTask(meta, record)) this.emitRecord(meta, record);
    });
  }

  private emitRecord(meta: Meta, record: TaskRecord): void {
    this.emitProgress(record.task_id, meta, recordFields(record));
  }

  private publish(fields: BridgeFields): void {
    // Every caller builds its fields afresh: the packet is added to them, not to a copy.
    const event = fields as BridgeEvent;
    event.packet = encodeEvent(fields.kind, fields.payload);
    // The event is its task's identity: the buffer keeps it apart from an earlier task's.
    const rootId = event.kind === PROGRESS_EVENT ? event.payload.root_id : undefined;
    this.replay.add(event.taskId, event, { seq: event.seq, packet: event.packet }, rootId);
    this.emit('event', event);
  }

  /**
   * What a client that last saw `afterSeq` missed. When this node no longer holds (or never saw)
   * the task's early events, the current record stands in for them as one progress event.
   */
  async missed(record: TaskRecord, afterSeq: number): Promise<ReplayEntry[]> {
    const meta = metaOf(record);
    const { covers, events: after } = this.replay.since(record.task_id, meta, afterSeq);
    if (covers) return after;
    const fields = recordFields(record);
    // A terminal event keeps the seq it went out with live, so a client never gets it twice.
    if (isFinal(record)) fields.seq = (await this.terminalSeq(record, meta)) ?? fields.seq;
    if (!shouldDeliver(afterSeq, fields)) return after;
    const snapshot: ReplayEntry = {
      seq: fields.seq,
      packet: encodeEvent(PROGRESS_EVENT, progressEvent(record.task_id, meta, fields)),
    };
    return [snapshot, ...after.filter((e) => shouldDeliver(fields.seq, e))];
  }

  /** The seq a terminal record was announced with live (the worker's own), when the store has it. */
  private async terminalSeq(record: TaskRecord, task: TaskIdentity): Promise<number | undefined> {
    const job = (await (await this.app.queue(record.queue)).getJob(record.task_id)) as TaskJob | undefined;
    if (!job || job.timestamp !== task.createdAt) return undefined;
    return finalSeq(
      record.status,
      job.returnvalue as ResultEnvelope | null | undefined,
      progressPayload(job),
    );
  }

  /** Notes a task's end, so that it is let go of once retention has removed it. */
  private ended(taskId: string, meta: Meta, status: TaskStatus): void {
    if (!this.finished) return;
    const list = status === TaskStatus.COMPLETED ? this.finished.completed : this.finished.failed;
    list.ids.push(taskId);
    list.createdAt.push(meta.createdAt);
    list.endedAt.push(Date.now());
  }

  /** Lets go of the tasks that ended longer ago than their retention: the store has removed them. */
  private expireFinished(now: number): void {
    if (!this.finished) return;
    for (const list of [this.finished.completed, this.finished.failed]) {
      let { head } = list;
      while (head < list.ids.length && list.endedAt[head]! + list.keepMs <= now) {
        const taskId = list.ids[head]!;
        const held = this.meta.get(taskId) ?? this.replay.identity(taskId);
        // Still the task that ended, and nothing of it waiting (a new task may have the id now).
        if (held?.createdAt === list.createdAt[head] && !this.chains.has(taskId)) this.forget(taskId);
        head += 1;
      }
      if (head > 1024 && head * 2 > list.ids.length) {
        list.ids.splice(0, head);
        list.createdAt.splice(0, head);
        list.endedAt.splice(0, head);
        head = 0;
      }
      list.head = head;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.expiry);
    await settleWithin(Promise.allSettled(this.events.map((e) => e.close())), CLOSE_DEADLINE_MS);
    this.removeAllListeners();
  }
}

/** Whether what the bridge holds is of the record's task, not of an earlier one under its id. */
function sameTask(held: TaskIdentity, record: TaskRecord): boolean {
  return sameIdentity(held, { userId: record.user_id, createdAt: Date.parse(record.created_at) });
}

/** What the bridge keeps of a task, from its record. */
function metaOf(record: TaskRecord): Meta {
  return {
    userId: record.user_id,
    // The record's created_at is the job's timestamp, to the millisecond.
    createdAt: Date.parse(record.created_at),
    queue: record.queue,
    taskName: record.task_name,
    labels: { queue: record.queue, mode: record.mode, service: record.service },
    step: record.step,
    ...(record.root_id !== undefined
      ? { workflow: { root_id: record.root_id, parent_id: record.parent_id ?? null } }
      : {}),
    ...(record.template !== undefined ? { template: record.template } : {}),
    attempt: record.attempt,
    fetchedAttempt: record.attempt,
    activeSeen: 0,
    progress: record.progress,
    terminalSent: false,
  };
}
