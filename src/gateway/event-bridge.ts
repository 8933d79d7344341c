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

type BridgeFields =
  | { kind: 'progress'; userId: string; taskId: string; seq: number; payload: ProgressEvent }
  | { kind: 'stream'; userId: string; taskId: string; seq: number; payload: StreamEvent };

/** An event for one user's sockets, with its socket.io packet encoded once. */
export type BridgeEvent = BridgeFields & { packet: string };

/** What replay keeps of an event: its order and its packet, one string, not an object tree. */
export interface ReplayEntry {
  seq: number;
  packet: string;
}

interface Meta {
  userId: string;
  taskName: string;
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

interface Replay {
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
    events.on('added', ({ jobId }) => on(jobId, (meta) => this.onPending(jobId, meta)));
    events.on('active', ({ jobId }) => on(jobId, (meta) => this.onActive(jobId, meta)));
    events.on('progress', ({ jobId, data }) => on(jobId, (meta) => this.onProgress(jobId, meta, data)));
    events.on('completed', ({ jobId, returnvalue }) =>
      on(jobId, (meta) => this.onCompleted(jobId, meta, returnvalue)),
    );
    events.on('failed', ({ jobId }) => on(jobId, (meta) => this.onFailed(jobId, queue, meta)));
    events.on('removed', ({ jobId }) => this.serial(jobId, () => void this.meta.delete(jobId)));
    events.on('stream' as 'added', (raw: unknown) => {
      const e = raw as { task_id?: unknown; user_id?: unknown; seq?: unknown; delta?: unknown };
      if (typeof e.task_id !== 'string' || typeof e.user_id !== 'string' || typeof e.delta !== 'string')
        return;
      const taskId = e.task_id;
      const payload: StreamEvent = { task_id: taskId, seq: Number(e.seq), delta: e.delta };
      this.serial(taskId, () =>
        this.publish({ kind: 'stream', userId: e.user_id as string, taskId, seq: payload.seq, payload }),
      );
    });
  }

  /**
   * Runs `handle` with the task's metadata, after the task's earlier events. The usual case (the
   * task is known, nothing of it is waiting) runs at once: no promise per event, thousands a second.
   */
  private forTask(taskId: string, queue: QueueKind, handle: (meta: Meta) => Promise<void> | void): void {
    const meta = this.chains.has(taskId) ? undefined : this.meta.get(taskId);
    if (meta) return this.serial(taskId, () => handle(meta));
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

  private async metaFor(taskId: string, queue: QueueKind): Promise<Meta | undefined> {
    const known = this.meta.get(taskId);
    if (known) return known;
    // The job alone says whose task it is: one read, not the record's two (job and state).
    const job = (await (await this.app.queue(queue)).getJob(taskId)) as TaskJob | undefined;
    if (!job) return undefined;
    const attempt = job.attemptsStarted ?? 0;
    const meta: Meta = {
      userId: job.data.user_id,
      taskName: job.data.task_name,
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
    if (isTerminal(payload.status)) meta.terminalSent = true;
    this.publish({ kind: 'progress', userId: meta.userId, taskId, seq: payload.seq, payload });
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

  private onCompleted(taskId: string, meta: Meta, raw: unknown): void {
    if (meta.terminalSent) return;
    const envelope = (typeof raw === 'string' ? safeJson(raw) : raw) as ResultEnvelope | undefined;
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
      if (record && isTerminal(record.status)) this.emitRecord(meta, record);
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
    if (!replay) {
      replay = { events: [], bytes: 0 };
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
      this.replayTotal -= this.replay.get(oldest)?.bytes ?? 0;
      this.replay.delete(oldest);
    }
    this.emit('event', event);
  }

  /**
   * What a client that last saw `afterSeq` missed. When this node no longer holds (or never saw)
   * the task's early events, the current record stands in for them as one progress event.
   */
  async missed(record: TaskRecord, afterSeq: number): Promise<ReplayEntry[]> {
    const kept = this.replay.get(record.task_id)?.events ?? [];
    const covers = kept.length > 0 && (kept[0]!.seq <= afterSeq + 1 || kept[0]!.seq === 0);
    const after = kept.filter((e) => e.seq > afterSeq);
    if (covers) return after;
    const meta = this.meta.get(record.task_id) ?? metaOf(record);
    const fields = recordFields(record);
    // A terminal event keeps the seq it went out with live, so a client never gets it twice.
    if (isTerminal(record.status)) fields.seq = (await this.terminalSeq(record)) ?? fields.seq;
    if (fields.seq <= afterSeq) return after;
    const snapshot: ReplayEntry = {
      seq: fields.seq,
      packet: encodeEvent('progress', this.progressEvent(record.task_id, meta, fields)),
    };
    return [snapshot, ...after.filter((e) => e.seq > fields.seq)];
  }

  /** The seq a terminal record was announced with live (the worker's own), when the store has it. */
  private async terminalSeq(record: TaskRecord): Promise<number | undefined> {
    const job = await (await this.app.queue(record.queue)).getJob(record.task_id);
    if (!job) return undefined;
    if (record.status === TaskStatus.COMPLETED) {
      const envelope = job.returnvalue as ResultEnvelope | null | undefined;
      return envelope?.attempt ? envelopeSeq(envelope) : undefined;
    }
    const last = progressPayload(job);
    return last?.status === record.status ? last.seq : undefined;
  }

  async close(): Promise<void> {
    await settleWithin(Promise.allSettled(this.events.map((e) => e.close())), CLOSE_DEADLINE_MS);
    this.removeAllListeners();
  }
}

/** What the bridge keeps of a task, from its record as first read. */
function metaOf(record: TaskRecord): Meta {
  return {
    userId: record.user_id,
    taskName: record.task_name,
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
