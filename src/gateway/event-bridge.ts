import { EventEmitter } from 'node:events';
import type { QueueEvents } from 'bullmq';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import type { Logger } from '../core/logger.js';
import type { QueueKind, TaskRecord } from '../core/task.js';
import { QUEUE_KINDS, TaskStatus, isTerminal } from '../core/task.js';
import type { AiecsApp } from '../engine/app.js';
import type { ProgressPayload, ResultEnvelope, TaskJob } from '../engine/task-record.js';
import { SEQ_PER_ATTEMPT, envelopeSeq, progressPayload } from '../engine/task-record.js';
import type { Store } from '../engine/store.js';
import { sweepIntervalMs } from '../worker/retention-sweeper.js';
import { encodeEvent } from './packet.js';

/** The original's `progress` payload, extended as docs/design.md §3 says. */
export interface ProgressEvent {
  status: TaskStatus;
  step: number;
  task: string;
  message: string;
  result?: unknown;
  error?: string;
  task_id: string;
  user_id: string;
  progress: number;
  error_code?: string;
  attempt: number;
  seq: number;
  timestamp: number;
}

export interface StreamEvent {
  task_id: string;
  seq: number;
  delta: string;
}

/**
 * Which task an event is of. An id names one task at a time, but retention (or a removal) frees
 * it for another user's task: a task is its id, its owner and its creation (the job's timestamp).
 */
interface TaskIdentity {
  userId: string;
  /** The job's timestamp; UNKNOWN_CREATION when only a stream event has been seen. */
  createdAt: number;
}

/** The creation of a task known only from its stream events: it matches no record. */
const UNKNOWN_CREATION = 0;

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
    | { kind: 'progress'; taskId: string; seq: number; payload: ProgressEvent; labels: TaskLabels }
    | { kind: 'stream'; taskId: string; seq: number; payload: StreamEvent }
  );

/** An event for one user's sockets, with its socket.io packet encoded once. */
export type BridgeEvent = BridgeFields & { packet: string };

/** What replay keeps of an event: its order and its packet, one string, not an object tree. */
export interface ReplayEntry {
  seq: number;
  packet: string;
}

interface Meta extends TaskIdentity {
  /** Its queue: an event from the other queue is of another task under the same id. */
  queue: QueueKind;
  taskName: string;
  /** Built once per task: every progress event of it carries the same object. */
  labels: TaskLabels;
  step: number;
  attempt: number;
  /** The attempt the record showed when this node first read it, and active events seen since. */
  fetchedAttempt: number;
  activeSeen: number;
  progress: number;
  /** The worker's last word, held until BullMQ confirms the job failed. */
  pendingTerminal?: ProgressPayload;
  terminalSent: boolean;
}

interface Replay extends TaskIdentity {
  events: ReplayEntry[];
  /** Rough size of the events kept: results and deltas are what weigh. */
  bytes: number;
}

/** Bytes an entry holds, roughly: the packet and the entry around it. */
const weight = (entry: ReplayEntry) => 48 + entry.packet.length;

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
 * stream events) into the realtime payloads. Every gateway node runs one and sees every event,
 * so no routing between nodes is needed. Events of one task are handled strictly in order.
 */
export class EventBridge extends EventEmitter<{ event: [BridgeEvent] }> {
  private readonly events: QueueEvents[] = [];
  private readonly meta = new Map<string, Meta>();
  private readonly replay = new Map<string, Replay>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly replayPerTask: number;
  private readonly replayTasks: number;
  private readonly replayBytes: number;
  private replayTotal = 0;
  private readonly finished: { completed: Finished; failed: Finished } | undefined;
  private readonly expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly app: AiecsApp,
    private readonly store: Store,
    private readonly logger: Logger,
    options: BridgeOptions = {},
  ) {
    super();
    this.replayPerTask = options.replayPerTask ?? 2_000;
    this.replayTasks = options.replayTasks ?? 20_000;
    this.replayBytes = options.replayBytes ?? 64 * 1024 * 1024;
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
    const on = (taskId: string, handle: (meta: Meta) => Promise<void> | void) =>
      this.forTask(taskId, queue, handle);
    events.on('added', ({ jobId }) => this.serial(jobId, () => this.onAdded(jobId, queue)));
    events.on('active', ({ jobId }) => on(jobId, (meta) => this.onActive(jobId, meta)));
    events.on('progress', ({ jobId, data }) => on(jobId, (meta) => this.onProgress(jobId, meta, data)));
    events.on('completed', ({ jobId, returnvalue }) =>
      on(jobId, (meta) => this.onCompleted(jobId, meta, returnvalue)),
    );
    events.on('failed', ({ jobId }) => on(jobId, (meta) => this.onFailed(jobId, queue, meta)));
    events.on('removed', ({ jobId }) => this.serial(jobId, () => this.forget(jobId, queue)));
    events.on('stream' as 'added', (raw: unknown) => {
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
        this.publish({ kind: 'stream', userId, createdAt, taskId, seq: payload.seq, payload });
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
    const replay = this.replay.get(taskId);
    if (replay) this.dropReplay(taskId, replay);
  }

  private dropReplay(taskId: string, replay: Replay): void {
    this.replayTotal -= replay.bytes;
    this.replay.delete(taskId);
  }

  private remember(taskId: string, meta: Meta): void {
    this.meta.set(taskId, meta);
    if (this.meta.size > this.replayTasks) {
      const oldest = this.meta.keys().next().value;
      if (oldest !== undefined) this.meta.delete(oldest);
    }
  }

  private progressEvent(
    taskId: string,
    meta: Meta,
    fields: Partial<ProgressEvent> & Pick<ProgressEvent, 'status' | 'seq'>,
  ): ProgressEvent {
    return {
      status: fields.status,
      step: meta.step,
      task: meta.taskName,
      message: fields.message ?? '',
      task_id: taskId,
      user_id: meta.userId,
      progress: fields.progress ?? meta.progress,
      attempt: fields.attempt ?? meta.attempt,
      seq: fields.seq,
      timestamp: fields.timestamp ?? Date.now(),
      ...(fields.result !== undefined ? { result: fields.result } : {}),
      ...(fields.error !== undefined ? { error: fields.error } : {}),
      ...(fields.error_code !== undefined ? { error_code: fields.error_code } : {}),
    };
  }

  private emitProgress(
    taskId: string,
    meta: Meta,
    fields: Parameters<EventBridge['progressEvent']>[2],
  ): void {
    const payload = this.progressEvent(taskId, meta, fields);
    meta.progress = payload.progress;
    if (isTerminal(payload.status)) {
      if (!meta.terminalSent) this.ended(taskId, meta, payload.status);
      meta.terminalSent = true;
    }
    const { userId, createdAt, labels } = meta;
    this.publish({ kind: 'progress', userId, createdAt, taskId, seq: payload.seq, payload, labels });
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
    this.emitProgress(taskId, meta, { status: TaskStatus.PENDING, seq: 0, message: 'queued', progress: 0 });
  }

  private onActive(taskId: string, meta: Meta): void {
    // A task cancelled before it ran is still taken (and dropped) by a worker: it stays cancelled.
    if (meta.terminalSent) return;
    // Read late, the record may already count the attempt this event starts.
    meta.activeSeen += 1;
    meta.attempt = meta.activeSeen === 1 ? Math.max(1, meta.fetchedAttempt) : meta.attempt + 1;
    this.emitProgress(taskId, meta, {
      status: TaskStatus.RUNNING,
      seq: meta.attempt * SEQ_PER_ATTEMPT,
      message: 'started',
      progress: 0,
      attempt: meta.attempt,
    });
  }

  private onProgress(taskId: string, meta: Meta, data: unknown): void {
    if (typeof data !== 'object' || data === null || !('status' in data)) return;
    const payload = data as ProgressPayload;
    // Pending after its end: the task was retried by hand (task-retry.ts). A new run follows.
    if (meta.terminalSent && payload.status === TaskStatus.PENDING) this.reopen(meta);
    meta.attempt = Math.max(meta.attempt, payload.attempt);
    const fields = {
      status: payload.status,
      seq: payload.seq,
      message: payload.message,
      progress: payload.progress,
      attempt: payload.attempt,
      timestamp: payload.timestamp,
      ...(payload.error ? { error: payload.error.message, error_code: payload.error.code } : {}),
    };
    // A worker's final word comes just before BullMQ moves the job: announce it when the move lands.
    // A pending task cancelled by a caller (seq below the first attempt's) ends right here.
    if (isTerminal(payload.status) && payload.seq >= SEQ_PER_ATTEMPT) {
      meta.pendingTerminal = payload;
      return;
    }
    if (meta.terminalSent) return;
    this.emitProgress(taskId, meta, fields);
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
    const envelope = (typeof raw === 'string' ? safeJson(raw) : raw) as ResultEnvelope | undefined;
    const usage = envelope?.resources?.totals;
    if (usage) meta.labels.usage = usage;
    this.emitProgress(taskId, meta, {
      status: TaskStatus.COMPLETED,
      seq: envelope?.attempt ? envelopeSeq(envelope) : meta.attempt * SEQ_PER_ATTEMPT + SEQ_PER_ATTEMPT - 1,
      message: 'completed',
      progress: 100,
      attempt: envelope?.attempt ?? meta.attempt,
      result: envelope?.result ?? null,
    });
  }

  private onFailed(taskId: string, queue: QueueKind, meta: Meta): Promise<void> | void {
    if (meta.terminalSent) return;
    const last = meta.pendingTerminal;
    if (last) {
      this.emitProgress(taskId, meta, {
        status: last.status,
        seq: last.seq,
        message: last.message,
        progress: last.progress,
        attempt: last.attempt,
        timestamp: last.timestamp,
        ...(last.error ? { error: last.error.message, error_code: last.error.code } : {}),
      });
      return;
    }
    // Failed without a word from a worker (stalled too often): the record says why.
    return this.app.getTask(taskId, queue).then((record) => {
      if (record && isTerminal(record.status) && sameTask(meta, record)) this.emitRecord(meta, record);
    });
  }

  private emitRecord(meta: Meta, record: TaskRecord): void {
    this.emitProgress(record.task_id, meta, recordFields(record));
  }

  private publish(fields: BridgeFields): void {
    // Every caller builds its fields afresh: the packet is added to them, not to a copy.
    const event = fields as BridgeEvent;
    event.packet = encodeEvent(fields.kind, fields.payload);
    let replay = this.replay.get(event.taskId);
    // An earlier task's events under the same id are never replayed as this one's.
    if (replay && (replay.userId !== event.userId || replay.createdAt !== event.createdAt)) {
      this.dropReplay(event.taskId, replay);
      replay = undefined;
    }
    if (!replay) {
      replay = { userId: event.userId, createdAt: event.createdAt, events: [], bytes: 0 };
      this.replay.set(event.taskId, replay);
    }
    const entry: ReplayEntry = { seq: event.seq, packet: event.packet };
    const size = weight(entry);
    replay.events.push(entry);
    replay.bytes += size;
    this.replayTotal += size;
    if (replay.events.length > this.replayPerTask) {
      for (const dropped of replay.events.splice(0, replay.events.length - this.replayPerTask)) {
        const w = weight(dropped);
        replay.bytes -= w;
        this.replayTotal -= w;
      }
    }
    // Bounded by tasks and by bytes: the oldest tasks' histories go first (a client that needs
    // them gets the record's snapshot instead).
    while (
      this.replay.size > this.replayTasks ||
      (this.replayTotal > this.replayBytes && this.replay.size > 1)
    ) {
      const oldest = this.replay.keys().next().value;
      if (oldest === undefined || oldest === event.taskId) break;
      this.dropReplay(oldest, this.replay.get(oldest)!);
    }
    this.emit('event', event);
  }

  /**
   * What a client that last saw `afterSeq` missed. When this node no longer holds (or never saw)
   * the task's early events, the current record stands in for them as one progress event.
   */
  async missed(record: TaskRecord, afterSeq: number): Promise<ReplayEntry[]> {
    const meta = metaOf(record);
    const replay = this.replay.get(record.task_id);
    // Only the record's own task's events: an earlier task under the id kept its own replay.
    const kept = replay && sameTask(replay, record, meta.createdAt) ? replay.events : [];
    const covers = kept.length > 0 && (kept[0]!.seq <= afterSeq + 1 || kept[0]!.seq === 0);
    const after = kept.filter((e) => e.seq > afterSeq);
    if (covers) return after;
    const fields = recordFields(record);
    // A terminal event keeps the seq it went out with live, so a client never gets it twice.
    if (isTerminal(record.status)) fields.seq = (await this.terminalSeq(record, meta)) ?? fields.seq;
    if (fields.seq <= afterSeq) return after;
    const snapshot: ReplayEntry = {
      seq: fields.seq,
      packet: encodeEvent('progress', this.progressEvent(record.task_id, meta, fields)),
    };
    return [snapshot, ...after.filter((e) => e.seq > fields.seq)];
  }

  /** The seq a terminal record was announced with live (the worker's own), when the store has it. */
  private async terminalSeq(record: TaskRecord, task: TaskIdentity): Promise<number | undefined> {
    const job = await (await this.app.queue(record.queue)).getJob(record.task_id);
    if (!job || job.timestamp !== task.createdAt) return undefined;
    if (record.status === TaskStatus.COMPLETED) {
      const envelope = job.returnvalue as ResultEnvelope | null | undefined;
      return envelope?.attempt ? envelopeSeq(envelope) : undefined;
    }
    const last = progressPayload(job);
    return last?.status === record.status ? last.seq : undefined;
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
        const held = this.meta.get(taskId) ?? this.replay.get(taskId);
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
function sameTask(
  held: TaskIdentity,
  record: TaskRecord,
  createdAt = Date.parse(record.created_at),
): boolean {
  return held.userId === record.user_id && held.createdAt === createdAt;
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
    attempt: record.attempt,
    fetchedAttempt: record.attempt,
    activeSeen: 0,
    progress: record.progress,
    terminalSent: false,
  };
}

/** A record as the progress event of its current state. */
function recordFields(record: TaskRecord): Partial<ProgressEvent> & Pick<ProgressEvent, 'status' | 'seq'> {
  const base = record.attempt * SEQ_PER_ATTEMPT;
  const seq =
    record.status === TaskStatus.PENDING && record.attempt === 0
      ? 0
      : isTerminal(record.status)
        ? base + SEQ_PER_ATTEMPT - 1
        : base;
  return {
    status: record.status,
    seq,
    message: record.message,
    progress: record.progress,
    attempt: record.attempt,
    ...(record.status === TaskStatus.COMPLETED ? { result: record.result } : {}),
    ...(record.error ? { error: record.error.message, error_code: record.error.code } : {}),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
