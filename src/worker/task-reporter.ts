import type { QueueEventsProducer } from 'bullmq';
import type { TaskLogger } from '../core/task-context.js';
import type { ProgressPayload, StoredStreamEvent } from '../core/task-events.js';
import { STREAM_EVENT, runBaseSeq, runNumber } from '../core/task-events.js';
import { TaskStatus } from '../core/task.js';
import type { EventWriter } from '../engine/store.js';
import type { TaskJob } from '../engine/task-record.js';
import type { ProgressSink } from './execute-service.js';

/**
 * Writes one task's progress to its job and its stream deltas to the queue's event stream.
 * Progress writes never pile up (while one is in flight only the latest waits), stream deltas are
 * coalesced into a few messages a second, and both keep one sequence so clients can order them.
 */
export class TaskReporter implements ProgressSink {
  private seq: number;
  private pendingProgress: ProgressPayload | undefined;
  private progressLoop: Promise<void> | undefined;
  private streamBuffer = '';
  private streamTimer: NodeJS.Timeout | undefined;
  private streamChain: Promise<void> = Promise.resolve();
  private lastPercent = 0;
  private closed = false;

  constructor(
    private readonly job: TaskJob,
    private readonly attempt: number,
    private readonly redeliveries: number,
    private readonly worker: string,
    private readonly producer: QueueEventsProducer | undefined,
    /** The store's batching writer, where it has one; else the job and the producer write. */
    private readonly events: EventWriter | undefined,
    private readonly log: TaskLogger,
    private readonly streamIntervalMs = 50,
  ) {
    // Numbered by run, so a redelivered run's events sort after those of the run that died.
    this.seq = runBaseSeq(runNumber(attempt, redeliveries));
  }

  nextSeq(): number {
    return ++this.seq;
  }

  progress(percent: number, message: string): void {
    if (this.closed) return;
    this.lastPercent = percent;
    this.flushStreamNow();
    this.pendingProgress = this.payload(TaskStatus.RUNNING, percent, message);
    this.progressLoop ??= this.drainProgress();
  }

  private async drainProgress(): Promise<void> {
    while (this.pendingProgress) {
      const next = this.pendingProgress;
      this.pendingProgress = undefined;
      await this.write(next);
    }
    this.progressLoop = undefined;
  }

  private async write(payload: ProgressPayload): Promise<void> {
    try {
      if (this.events) {
        this.job.progress = payload as unknown as object;
        await this.events.progress(this.job.id ?? '', payload);
      } else await this.job.updateProgress(payload as unknown as object);
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'could not record task progress');
    }
  }

  stream(delta: string): void {
    if (this.closed || !(this.producer || this.events)) return;
    this.streamBuffer += delta;
    this.streamTimer ??= setTimeout(() => this.flushStreamNow(), this.streamIntervalMs);
  }

  private flushStreamNow(): void {
    clearTimeout(this.streamTimer);
    this.streamTimer = undefined;
    const { producer, events } = this;
    if (!this.streamBuffer || !(producer || events)) return;
    const event: StoredStreamEvent = {
      eventName: STREAM_EVENT,
      task_id: this.job.id ?? '',
      user_id: this.job.data.user_id,
      seq: this.nextSeq(),
      delta: this.streamBuffer,
    };
    this.streamBuffer = '';
    const warn = (error: Error) => this.log.warn({ err: error.message }, 'could not publish stream delta');
    if (events) {
      // The writer keeps the order of its calls: no chain needed.
      const { eventName, ...fields } = event;
      this.streamChain = events.publish({ event: eventName, ...fields }).catch(warn);
      return;
    }
    // Chained, so a slow store makes bigger batches rather than reordered ones.
    this.streamChain = this.streamChain.then(() => producer!.publishEvent(event).catch(warn));
  }

  /** Waits until everything reported so far is stored. */
  async flush(): Promise<void> {
    this.flushStreamNow();
    await this.streamChain;
    await this.progressLoop;
  }

  payload(status: TaskStatus, percent: number, message: string): ProgressPayload {
    const payload: ProgressPayload = {
      status,
      progress: percent,
      message,
      attempt: this.attempt,
      seq: this.nextSeq(),
      timestamp: Date.now(),
      worker: this.worker,
    };
    if (this.redeliveries > 0) payload.redeliveries = this.redeliveries;
    return payload;
  }

  /** Writes the task's last word for this attempt, after everything before it. */
  async final(
    payload: Omit<ProgressPayload, 'seq' | 'timestamp' | 'attempt' | 'worker' | 'progress' | 'redeliveries'>,
  ): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.write({ ...this.payload(payload.status, this.lastPercent, payload.message), ...payload });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.streamTimer);
  }
}
