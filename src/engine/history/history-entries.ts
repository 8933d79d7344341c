/**
 * Turns a queue's events into history rows, by the task event protocol (core/task-events.ts), as
 * the gateway's event bridge turns them into socket events: `added` is the task queued, `active`
 * a run started, `progress` the worker's word (a step, a retry's pending, the cancel marker), and
 * `completed` / `failed` the end, a failure carrying the worker's last word (held until BullMQ's
 * move) or, without one, what the job says. The task's fixed fields (owner, name, mode, service,
 * step, workflow place, schedule, creation) come from its job, read once per task: the new tasks
 * of a batch in one round trip where the store can (Store.readJobSummaries), else job by job.
 * The Celery results relay (worker/celery/celery-results.ts) reads the same entries, with the
 * error's type and stack and the job's Celery id beside each row.
 */
import type { Queue } from 'bullmq';
import type { TaskErrorInfo } from '../../core/errors.js';
import type { QueueKind, StoredTaskData } from '../../core/task.js';
import { TaskStatus } from '../../core/task.js';
import type { ProgressFields, ProgressPayload } from '../../core/task-events.js';
import {
  QUEUED_SEQ,
  asProgressPayload,
  awaitsMove,
  completedFields,
  envelopeOf,
  isFinal,
  payloadFields,
  recordFields,
  reopensAfterEnd,
  runBaseSeq,
} from '../../core/task-events.js';
import type { JobSummary } from '../store.js';
import type { TaskJob } from '../task-record.js';
import { toTaskRecord } from '../task-record.js';
import { EVENT_TIME_FIELD } from '../../shims/bullmq-pg-event-reader.js';
import type { HistoryKind, HistoryRow } from './history-db.js';

/** The events of a task the history records. */
export const RECORDED_EVENTS = ['added', 'active', 'progress', 'completed', 'failed'] as const;
export type RecordedEvent = (typeof RECORDED_EVENTS)[number];

/** One event as QueueEvents hands it out: its name, its fields, and its id in the stream. */
export interface RawEvent {
  queue: QueueKind;
  event: RecordedEvent;
  id: string;
  args: Record<string, unknown> & { jobId: string };
}

/** A row with what the history does not store: the error whole, and the job's Celery id. */
export interface Entry {
  row: HistoryRow;
  error?: TaskErrorInfo;
  /** The Celery message id a bridged task came from (StoredTaskData.celery). */
  celery?: string;
}

interface TaskMeta {
  createdAt: number;
  fixed: Pick<
    HistoryRow,
    'task_id' | 'user_id' | 'task_name' | 'mode' | 'service' | 'step' | 'root_id' | 'parent_id' | 'schedule'
  >;
  /** As the bridge counts runs: the attempt the job showed when read, and active events since. */
  fetchedAttempt: number;
  activeSeen: number;
  attempt: number;
  worker: string | null;
  /** The worker's last word, held until BullMQ's failed event. */
  pendingTerminal?: ProgressPayload;
  ended: boolean;
  celery?: string;
}

const KIND: Record<RecordedEvent, HistoryKind> = {
  added: 'queued',
  active: 'running',
  progress: 'progress',
  completed: 'completed',
  failed: 'failed',
};

/** Tasks whose fixed fields are kept between batches; the oldest go first. */
const MAX_TASKS = 20_000;
/** Jobs read at once while enriching a batch. */
const READ_CONCURRENCY = 64;

/** Reads the summaries of a queue's jobs at once (Store.readJobSummaries). */
export type SummaryReader = (
  kind: QueueKind,
  ids: readonly string[],
) => Promise<Array<JobSummary | undefined>>;

export class EntryBuilder {
  private readonly tasks = new Map<string, TaskMeta>();

  constructor(
    private readonly queue: (kind: QueueKind) => Queue,
    private readonly summaries?: SummaryReader,
  ) {}

  /** Forgets every task: after a restart the stream is read again from the saved position. */
  reset(): void {
    this.tasks.clear();
  }

  /** The rows of `events` (in stream order); an event of a task whose job is gone is skipped. */
  async build(events: readonly RawEvent[]): Promise<HistoryRow[]> {
    return (await this.entries(events)).map((e) => e.row);
  }

  /** As build, with each row's error and Celery id. */
  async entries(events: readonly RawEvent[]): Promise<Entry[]> {
    const keys = events.map(keyOf);
    const toRead = new Map<string, RawEvent>();
    events.forEach((e, i) => {
      if (e.event === 'added' || !this.tasks.has(keys[i]!)) toRead.set(keys[i]!, e);
    });
    const jobs = await this.readSummaries([...toRead.values()]);
    const rows: Entry[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const key = keys[i]!;
      let meta = this.tasks.get(key);
      if (e.event === 'added' || !meta) {
        const job = jobs.get(key);
        if (!job) continue;
        // `added`: a job stored under the id, a new task (an earlier one under it is forgotten).
        meta = metaOf(job, e.event === 'added');
        this.remember(key, meta);
        if (e.event === 'added') jobs.delete(key);
      }
      // Only a failure no worker spoke of needs the job read (rare): the rest build in step.
      const entry =
        e.event === 'failed' && !meta.ended && !meta.pendingTerminal
          ? await this.failedFromJob(e, meta)
          : this.rowOf(e, meta);
      // An ended task stays known: a worker still takes (and drops) a task cancelled before it ran.
      if (entry) {
        if (meta.celery !== undefined) entry.celery = meta.celery;
        rows.push(entry);
      }
    }
    return rows;
  }

  private async readSummaries(events: RawEvent[]): Promise<Map<string, JobSummary>> {
    const found = new Map<string, JobSummary>();
    const { summaries } = this;
    if (summaries) {
      const byQueue = new Map<QueueKind, RawEvent[]>();
      for (const e of events) {
        const part = byQueue.get(e.queue);
        if (part) part.push(e);
        else byQueue.set(e.queue, [e]);
      }
      for (const [kind, part] of byQueue) {
        const read = await summaries(
          kind,
          part.map((e) => e.args.jobId),
        );
        read.forEach((job, j) => {
          if (job) found.set(keyOf(part[j]!), job);
        });
      }
      return found;
    }
    for (let i = 0; i < events.length; i += READ_CONCURRENCY) {
      const part = events.slice(i, i + READ_CONCURRENCY);
      const read = await Promise.all(
        part.map((e) => this.queue(e.queue).getJob(e.args.jobId) as Promise<TaskJob | undefined>),
      );
      read.forEach((job, j) => {
        if (job) found.set(keyOf(part[j]!), summaryOf(job));
      });
    }
    return found;
  }

  private remember(key: string, meta: TaskMeta): void {
    this.tasks.delete(key);
    this.tasks.set(key, meta);
    if (this.tasks.size > MAX_TASKS) {
      const oldest = this.tasks.keys().next().value;
      if (oldest !== undefined) this.tasks.delete(oldest);
    }
  }

  private rowOf(e: RawEvent, meta: TaskMeta): Entry | undefined {
    const at = eventTime(e);
    switch (e.event) {
      case 'added':
        meta.ended = false;
        return row(e, meta, at, {
          status: TaskStatus.PENDING,
          seq: QUEUED_SEQ,
          message: 'queued',
          progress: 0,
        });
      case 'active': {
        // A task cancelled before it ran is still taken (and dropped) by a worker.
        if (meta.ended) return undefined;
        meta.activeSeen += 1;
        meta.attempt = meta.activeSeen === 1 ? Math.max(1, meta.fetchedAttempt) : meta.attempt + 1;
        return row(e, meta, at, {
          status: TaskStatus.RUNNING,
          seq: runBaseSeq(meta.attempt),
          message: 'started',
          progress: 0,
          attempt: meta.attempt,
        });
      }
      case 'progress': {
        const payload = asProgressPayload(e.args.data);
        if (!payload) return undefined;
        if (reopensAfterEnd(meta.ended, payload)) {
          meta.ended = false;
          delete meta.pendingTerminal;
          meta.fetchedAttempt = meta.attempt + 1;
          meta.activeSeen = 0;
        }
        meta.attempt = Math.max(meta.attempt, payload.attempt);
        if (payload.worker) meta.worker = payload.worker;
        if (awaitsMove(payload)) {
          meta.pendingTerminal = payload;
          return undefined;
        }
        if (meta.ended) return undefined;
        if (isFinal(payload)) meta.ended = true;
        return row(e, meta, payload.timestamp || at, payloadFields(payload), payload.error);
      }
      case 'completed': {
        if (meta.ended) return undefined;
        meta.ended = true;
        return row(e, meta, at, completedFields(envelopeOf(e.args.returnvalue), meta.attempt));
      }
      case 'failed': {
        if (meta.ended) return undefined;
        meta.ended = true;
        const held = meta.pendingTerminal;
        return held ? row(e, meta, at, payloadFields(held), held.error) : undefined;
      }
    }
  }

  /** A failure without a word from a worker we saw (stalled too often, or read after a restart). */
  private async failedFromJob(e: RawEvent, meta: TaskMeta): Promise<Entry> {
    meta.ended = true;
    const at = eventTime(e);
    const failed = (await this.queue(e.queue).getJob(e.args.jobId)) as TaskJob | undefined;
    if (!failed) return row(e, meta, at, failedFields(e));
    const record = toTaskRecord(failed, 'failed', e.queue);
    return row(e, meta, at, { ...recordFields(record), attempt: record.attempt }, record.error);
  }
}

function keyOf(e: RawEvent): string {
  return `${e.queue}\n${e.args.jobId}`;
}

function summaryOf(job: TaskJob): JobSummary {
  return {
    id: job.id ?? '',
    data: job.data,
    timestamp: job.timestamp,
    attemptsStarted: job.attemptsStarted ?? 0,
    ...(job.processedBy ? { processedBy: job.processedBy } : {}),
    ...(job.parent?.id !== undefined ? { parentId: job.parent.id } : {}),
  };
}

function metaOf(job: JobSummary, justAdded: boolean): TaskMeta {
  const data = job.data as StoredTaskData;
  const attempt = justAdded ? 0 : job.attemptsStarted;
  return {
    createdAt: job.timestamp,
    fixed: {
      task_id: job.id,
      user_id: data.user_id,
      task_name: data.task_name ?? null,
      mode: data.mode ?? null,
      service: data.service ?? null,
      step: data.step ?? 0,
      root_id: data.wf?.root ?? null,
      parent_id: data.wf ? (job.parentId ?? null) : null,
      schedule: data.schedule ?? null,
    },
    fetchedAttempt: attempt,
    activeSeen: 0,
    attempt,
    worker: job.processedBy ?? null,
    ended: false,
    ...(typeof data.celery?.id === 'string' ? { celery: data.celery.id } : {}),
  };
}

/** When the event was published: a Redis stream id starts with it; PostgreSQL's carry it. */
function eventTime(e: RawEvent): number {
  const field = e.args[EVENT_TIME_FIELD];
  if (field !== undefined) {
    const stamped = Number(field);
    if (Number.isFinite(stamped) && stamped > 0) return stamped;
  }
  const dash = e.id.indexOf('-');
  const ms = dash > 0 ? Number(e.id.slice(0, dash)) : Number.NaN;
  return Number.isFinite(ms) ? ms : Date.now();
}

function failedFields(e: RawEvent): ProgressFields {
  const reason = typeof e.args.failedReason === 'string' ? e.args.failedReason : 'task failed';
  return { status: TaskStatus.FAILED, seq: 0, message: reason, error: reason, error_code: 'E003' };
}

function row(
  e: RawEvent,
  meta: TaskMeta,
  at: number,
  fields: ProgressFields,
  error?: TaskErrorInfo | null,
): Entry {
  const { fixed } = meta;
  // Field by field, not spread: one shape for every row (a spread between fields is V8's slow path).
  const row: HistoryRow = {
    queue: e.queue,
    event_id: e.id,
    task_id: fixed.task_id,
    user_id: fixed.user_id,
    task_name: fixed.task_name,
    mode: fixed.mode,
    service: fixed.service,
    step: fixed.step,
    root_id: fixed.root_id,
    parent_id: fixed.parent_id,
    schedule: fixed.schedule,
    kind: KIND[e.event],
    status: fields.status,
    seq: fields.seq,
    attempt: fields.attempt ?? meta.attempt,
    progress: fields.progress ?? null,
    message: fields.message ?? null,
    result: fields.status === TaskStatus.COMPLETED ? (fields.result ?? null) : null,
    error_code: fields.error_code ?? null,
    error_message: fields.error ?? null,
    worker: meta.worker,
    at_ms: at,
    created_at_ms: meta.createdAt,
  };
  return error ? { row, error } : { row };
}
