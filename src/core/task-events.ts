/**
 * The task event protocol: what workers, callers and gateways write about a task, and how each
 * reader orders and ends it. The one place these rules live (docs/design.md, "Task event
 * protocol"); the worker's reporter, the engine's record, cancel and retry, the result waiter and
 * the gateway's bridge call these functions. No store or socket library here: every layer imports it.
 *
 * - Events: `progress` (a state change or a progress step; BullMQ's job progress carries the
 *   worker's ProgressPayload, the socket carries a ProgressEvent) and `stream` (output deltas).
 * - seq orders one task's events across its whole life. Each run (an attempt, or a redelivery
 *   after a worker died) owns the range [run × SEQ_PER_ATTEMPT, (run + 1) × SEQ_PER_ATTEMPT): its
 *   `running` event is the range's base, its reporter counts up from there, so a new run resets
 *   the count to a higher base and any late event of an older run sorts before it. The `queued`
 *   event is 0; the caller's cancel-before-run marker is 1.
 * - A reader delivers an event only when its seq is above the last it delivered (shouldDeliver):
 *   duplicates and stale events of older runs are dropped by that one comparison.
 * - The final event of a run is its terminal progress event (isFinal). A worker writes its last
 *   word just before BullMQ moves the job, so readers hold it until the move (awaitsMove); the
 *   completed event's seq is the envelope's (envelopeSeq).
 * - The cancel-before-run marker: a cancelled payload with seq 1 (below every run's range). The
 *   task never ran, it is final at once, and a worker that takes the job drops it.
 * - A manual retry writes a pending payload between the ended run's range and the next
 *   (retrySeq); a pending event after a final one reopens the task (reopensAfterEnd).
 */
import type { TaskErrorInfo } from './errors.js';
import type { StoredResources, TaskRecord } from './task.js';
import { TaskStatus, isTerminal } from './task.js';

/** The socket.io event names a task's events go out under. */
export const PROGRESS_EVENT = 'progress';
export const STREAM_EVENT = 'stream';
export type TaskEventKind = typeof PROGRESS_EVENT | typeof STREAM_EVENT;

/**
 * What a worker writes with `job.updateProgress` (and what `progress` events carry): the live
 * state of a task between the states BullMQ itself records.
 */
export interface ProgressPayload {
  status: TaskStatus;
  progress: number;
  message: string;
  attempt: number;
  seq: number;
  timestamp: number;
  error?: TaskErrorInfo;
  resources?: StoredResources;
  worker?: string;
  /** Times the task was started again without its own error spending an attempt; left out when 0. */
  redeliveries?: number;
}

/**
 * What a worker returns for a completed task (BullMQ's return value): the service's result plus
 * what the task used. Kept small: it is written to the job and to the event stream for every
 * task. The worker is the job's `processedBy`.
 */
export interface ResultEnvelope {
  result: unknown;
  resources: StoredResources;
  /** The completed event's seq; left out when the attempt reported nothing (see envelopeSeq). */
  seq?: number;
  attempt: number;
  /** See ProgressPayload; left out when 0. */
  redeliveries?: number;
  /**
   * When the attempt started (the job's processedOn) and ended (ms), and the worker that ran it:
   * with them the completed event alone makes the task's record, so `get()` needs no read after it
   * (toTaskRecord prefers them to the job's own fields, so both ways give the same record).
   * Absent from envelopes written before they were added.
   */
  started?: number;
  finished?: number;
  worker?: string;
  /** Earlier runs kept in the job's data (a task retried by hand); left out when none. */
  reruns?: number;
}

/** A completed event's return value as BullMQ hands it over (JSON text or parsed): its envelope. */
export function envelopeOf(raw: unknown): ResultEnvelope | undefined {
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  return typeof raw === 'object' && raw !== null ? (raw as ResultEnvelope) : undefined;
}

/** The `stream` event a worker publishes to the store's event stream, with its output delta. */
export interface StoredStreamEvent {
  eventName: typeof STREAM_EVENT;
  task_id: string;
  user_id: string;
  seq: number;
  delta: string;
}

/** The socket's `progress` payload: the original's, extended as docs/design.md §3 says. */
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
  /** A workflow member's root task id and the task waiting for it (docs/design.md §9). */
  root_id?: string;
  parent_id?: string | null;
  /** The template version a task was submitted by (`summarize@2`), on each of its events. */
  template?: string;
}

/** The socket's `stream` payload. */
export interface StreamEvent {
  task_id: string;
  seq: number;
  delta: string;
}

/** A progress event's own fields; the rest comes from the task (see progressEvent). */
export type ProgressFields = Partial<ProgressEvent> & Pick<ProgressEvent, 'status' | 'seq'>;

// ---- seq ----------------------------------------------------------------------------------

/** The width of one run's seq range: a run reports fewer events than this. */
export const SEQ_PER_ATTEMPT = 1_000_000;
/** The `queued` event's seq: the first event of every task. */
export const QUEUED_SEQ = 0;

/** A run is an attempt or a redelivery: run number = attempt + redeliveries (BullMQ's attemptsStarted). */
export function runNumber(attempt: number, redeliveries = 0): number {
  return attempt + redeliveries;
}

/** The run's `running` event; the run's own events count up from it (base + 1, + 2, …). */
export function runBaseSeq(run: number): number {
  return run * SEQ_PER_ATTEMPT;
}

/** The last seq of the run's range: a final event whose own seq is not known goes out with it. */
export function runEndSeq(run: number): number {
  return runBaseSeq(run + 1) - 1;
}

/** The run an event belongs to (0: before any run, as the queued event and the cancel marker). */
export function runOfSeq(seq: number): number {
  return Math.floor(seq / SEQ_PER_ATTEMPT);
}

/** Whether a reader that last delivered `lastSeen` delivers this event: no duplicates, nothing stale. */
export function shouldDeliver(lastSeen: number, event: { seq: number }): boolean {
  return event.seq > lastSeen;
}

/** The seq a completed task was announced with: the run's first when it reported nothing. */
export function envelopeSeq(envelope: ResultEnvelope): number {
  return envelope.seq ?? runBaseSeq(runNumber(envelope.attempt, envelope.redeliveries)) + 1;
}

// ---- the final event ----------------------------------------------------------------------

/** The last event of a run: a terminal state. */
export function isFinal(event: { status: TaskStatus }): boolean {
  return isTerminal(event.status);
}

/**
 * A worker's final word, written just before BullMQ moves the job: announced when the move lands
 * (the job's completed or failed event), not before. The cancel marker is final at once.
 */
export function awaitsMove(payload: ProgressPayload): boolean {
  return isFinal(payload) && payload.seq >= SEQ_PER_ATTEMPT;
}

/**
 * The seq a final event went out with live, from what the job stores: the envelope's for a
 * completed task, else the last payload's when it is that final word. Undefined when neither says.
 */
export function finalSeq(
  status: TaskStatus,
  envelope: ResultEnvelope | null | undefined,
  last: ProgressPayload | undefined,
): number | undefined {
  if (status === TaskStatus.COMPLETED) return envelope?.attempt ? envelopeSeq(envelope) : undefined;
  return last?.status === status ? last.seq : undefined;
}

// ---- the cancel-before-run marker ---------------------------------------------------------

/** The marker's seq: after the queued event, below every run's range. */
export const CANCEL_MARKER_SEQ = 1;
export const CANCELLED_BEFORE_RUN = 'cancelled before it ran';

/** What a caller writes on a task that has not run, to cancel it (see isCancelMarker). */
export function cancelMarker(
  attempt: number,
  error: TaskErrorInfo,
  message = CANCELLED_BEFORE_RUN,
  now = Date.now(),
): ProgressPayload {
  return {
    status: TaskStatus.CANCELLED,
    progress: 0,
    message,
    attempt,
    seq: CANCEL_MARKER_SEQ,
    timestamp: now,
    error,
  };
}

/** The caller's marker: the task was cancelled before any run and never ran. */
export function isCancelMarker(payload: unknown): payload is ProgressPayload {
  const p = asProgressPayload(payload);
  return p !== undefined && p.status === TaskStatus.CANCELLED && p.seq < SEQ_PER_ATTEMPT;
}

/**
 * Whether a worker taking a job with this last word drops it instead of running it: the caller's
 * marker, or the final cancel of a run whose worker died before BullMQ moved the job.
 */
export function dropsOnStart(last: ProgressPayload | undefined): boolean {
  return last?.status === TaskStatus.CANCELLED;
}

// ---- retry --------------------------------------------------------------------------------

/**
 * The manual retry's pending event's seq: after every event of the ended run (whose last is at
 * most the next run's base − 1) and before the new run's first (the next base). Between two
 * integers, so no event of either run shares it.
 */
export function retrySeq(runsStarted: number): number {
  return runBaseSeq(runsStarted + 1) - 0.5;
}

/** What a manual retry writes before the job goes back to waiting (see task-retry.ts). */
export function retryPending(attempt: number, runsStarted: number, now = Date.now()): ProgressPayload {
  return {
    status: TaskStatus.PENDING,
    progress: 0,
    message: 'queued again by a retry',
    attempt,
    seq: retrySeq(runsStarted),
    timestamp: now,
  };
}

/** Pending after a final event: the task was retried by hand, and a new run follows. */
export function reopensAfterEnd(ended: boolean, payload: ProgressPayload): boolean {
  return ended && payload.status === TaskStatus.PENDING;
}

/**
 * Cancels heard before this time are an earlier run's: a pending last word (a manual retry's)
 * queued the task again after them. 0 when every cancel counts.
 */
export function cancelsCountFrom(last: ProgressPayload | undefined): number {
  return last?.status === TaskStatus.PENDING ? last.timestamp : 0;
}

// ---- what events carry --------------------------------------------------------------------

/** A job's progress as the worker's payload; undefined for a plain number or nothing. */
export function asProgressPayload(data: unknown): ProgressPayload | undefined {
  return typeof data === 'object' && data !== null && 'status' in data
    ? (data as ProgressPayload)
    : undefined;
}

/** What a stored payload says as a progress event: a failure carries its message and code. */
export function payloadFields(payload: ProgressPayload): ProgressFields {
  const fields: ProgressFields = {
    status: payload.status,
    seq: payload.seq,
    message: payload.message,
    progress: payload.progress,
    attempt: payload.attempt,
    timestamp: payload.timestamp,
  };
  if (payload.error) {
    fields.error = payload.error.message;
    fields.error_code = payload.error.code;
  }
  return fields;
}

/** The completed event: progress 100 and the result, at the envelope's seq (else the run's last). */
export function completedFields(envelope: ResultEnvelope | undefined, run: number): ProgressFields {
  return {
    status: TaskStatus.COMPLETED,
    seq: envelope?.attempt ? envelopeSeq(envelope) : runEndSeq(run),
    message: 'completed',
    progress: 100,
    attempt: envelope?.attempt ?? run,
    result: envelope?.result ?? null,
  };
}

/**
 * A record as the progress event of its current state (a snapshot for a client that missed the
 * live events): queued before any run, the run's end for a final state, else the run's start.
 */
export function recordFields(record: TaskRecord): ProgressFields {
  const seq =
    record.status === TaskStatus.PENDING && record.attempt === 0
      ? QUEUED_SEQ
      : isFinal(record)
        ? runEndSeq(record.attempt)
        : runBaseSeq(record.attempt);
  const fields: ProgressFields = {
    status: record.status,
    seq,
    message: record.message,
    progress: record.progress,
    attempt: record.attempt,
  };
  if (record.status === TaskStatus.COMPLETED) fields.result = record.result;
  if (record.error) {
    fields.error = record.error.message;
    fields.error_code = record.error.code;
  }
  return fields;
}

/** What an event takes from its task when its fields leave it out. */
export interface EventTask {
  userId: string;
  taskName: string;
  step: number;
  /** The last progress and attempt announced. */
  progress: number;
  attempt: number;
  /** A workflow member's place, carried by each of its events so a UI can draw the tree. */
  workflow?: { root_id: string; parent_id: string | null };
  /** The template version it was submitted by, if any. */
  template?: string;
}

/** The socket's progress event; `result`, `error` and `error_code` only where the fields have them. */
export function progressEvent(taskId: string, task: EventTask, fields: ProgressFields): ProgressEvent {
  return {
    status: fields.status,
    step: task.step,
    task: task.taskName,
    message: fields.message ?? '',
    task_id: taskId,
    user_id: task.userId,
    progress: fields.progress ?? task.progress,
    attempt: fields.attempt ?? task.attempt,
    seq: fields.seq,
    timestamp: fields.timestamp ?? Date.now(),
    ...(fields.result !== undefined ? { result: fields.result } : {}),
    ...(fields.error !== undefined ? { error: fields.error } : {}),
    ...(fields.error_code !== undefined ? { error_code: fields.error_code } : {}),
    ...task.workflow,
    ...(task.template !== undefined ? { template: task.template } : {}),
  };
}
