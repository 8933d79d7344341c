/**
 * What the task history consumer (history/history-consumer.ts) and the Celery results relay
 * (worker/celery/celery-results.ts) share: one follower of the queues' event streams at a time
 * (the one holding a lead: a lock each takes its own way), the others standing by; a failure
 * retried with a doubling wait, logged once per outage; readers opened at the saved positions,
 * their events turned into batches, reading paused past a high water mark. Each says how to take
 * and drop the lead, what a gap means and what to do with a batch.
 */
import { EventEmitter } from 'node:events';
import type { Queue, QueueEvents } from 'bullmq';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import type { Logger } from '../core/logger.js';
import type { QueueKind } from '../core/task.js';
import { QUEUE_KINDS } from '../core/task.js';
import { EntryBuilder, RECORDED_EVENTS, type RawEvent } from './history/history-entries.js';
import type { Store } from './store.js';

export type FollowerState = 'starting' | 'standby' | 'active' | 'waiting' | 'closed';

export interface FollowerOptions {
  store: Store;
  logger: Logger;
  /** How often a standby follower asks for the lead. Default 2 s. */
  standbyPollMs?: number;
  /** Waits after a failure, doubling from `min` to `max`. Default 250 ms to 10 s. */
  retryMs?: { min: number; max: number };
}

/** How one round of reading runs (see `follow`). */
export interface FollowRound {
  /** Where each queue's stream is read from (`0`, its start, when absent); kept by `write`. */
  positions: Map<QueueKind, string>;
  batchSize: number;
  /** Events waiting that end the wait at once: a full batch, or 1 to write every event at once. */
  flushAt: number;
  /** The longest wait before what has arrived is written (and `check` runs). */
  waitMs: number;
  /**
   * The longest wait while nothing has arrived (the first event ends it, then `waitMs` gathers a
   * batch). Default `waitMs`. An idle follower wakes this often, not every `waitMs`.
   */
  idleMs?: number;
  /** The debug line for a reader's error. */
  readerError: string;
  /** Throws when the lead is lost. */
  check(): void;
  write(batch: RawEvent[]): Promise<void>;
  /** After a wait with nothing to write. */
  idle?(): Promise<void>;
  /** After each wait. */
  round?(): Promise<void>;
}

/** Events waiting to be written past this: stop reading until they are (memory stays bounded). */
const HIGH_WATER = 20_000;

export abstract class EventFollower<Lead> extends EventEmitter<{ state: [FollowerState] }> {
  protected closed = false;
  protected wake: (() => void) | undefined;
  protected readonly builder: EntryBuilder;
  private current: FollowerState = 'starting';
  private running: Promise<void> | undefined;
  private down = false;
  private readonly queues = new Map<QueueKind, Queue>();

  constructor(private readonly base: FollowerOptions) {
    super();
    const { store } = base;
    this.builder = new EntryBuilder(
      (kind) => this.queue(kind),
      store.readJobSummaries ? (kind, ids) => store.readJobSummaries!(kind, ids) : undefined,
    );
  }

  /** Takes the lead: `held` false when another holds it; throws when its service is unreachable. */
  protected abstract takeLead(): Promise<{ lead: Lead; held: boolean } | undefined>;
  /** Gives back what `takeLead` returned (the lead too when `held`); never throws. */
  protected abstract dropLead(lead: Lead, held: boolean): Promise<void>;
  /** Reads and writes while it leads, until closed; throws when the lead or its service fails. */
  protected abstract follow(lead: Lead): Promise<void>;
  /** The line saying it leads. */
  protected abstract active(): void;
  /** A failure it knows: 'stop' ends the loop, 'again' asks for the lead at once. */
  protected abstract failed(error: unknown): 'stop' | 'again' | undefined;
  /** The lines of an outage and of its end. */
  protected abstract outageLine(error: Error): void;
  protected abstract backLine(): void;

  get state(): FollowerState {
    return this.current;
  }

  /** Starts in the background; never throws (a failure is logged and retried). */
  start(): this {
    this.running ??= this.loop();
    return this;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.running;
    await settleWithin(
      Promise.allSettled([...this.queues.values()].map((q) => q.close())),
      CLOSE_DEADLINE_MS,
    );
    this.closing();
    this.setState('closed');
  }

  /** What else `close` releases. */
  protected closing(): void {}

  protected setState(state: FollowerState): void {
    if (this.current === state) return;
    this.current = state;
    this.emit('state', state);
  }

  private queue(kind: QueueKind): Queue {
    let queue = this.queues.get(kind);
    if (!queue) {
      queue = this.base.store.createQueue(kind);
      queue.on('error', () => undefined);
      this.queues.set(kind, queue);
    }
    return queue;
  }

  private async loop(): Promise<void> {
    const retry = this.base.retryMs ?? { min: 250, max: 10_000 };
    let failures = 0;
    while (!this.closed) {
      let taken: { lead: Lead; held: boolean } | undefined;
      try {
        taken = await this.takeLead();
        this.recovered();
        failures = 0;
        if (!taken?.held) {
          this.setState('standby');
          await this.sleep(this.base.standbyPollMs ?? 2_000);
          continue;
        }
        this.active();
        this.setState('active');
        await this.follow(taken.lead);
      } catch (error) {
        const known = this.failed(error);
        if (known === 'stop' || this.closed) break;
        if (known === 'again') continue;
        this.outage(error as Error);
        failures += 1;
        this.setState('waiting');
        await this.sleep(Math.min(retry.max, retry.min * 2 ** Math.min(failures - 1, 16)));
      } finally {
        if (taken) await this.dropLead(taken.lead, taken.held);
      }
    }
  }

  /** One line per outage, not per retry. */
  private outage(error: Error): void {
    if (this.down) return;
    this.down = true;
    this.outageLine(error);
  }

  private recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.backLine();
  }

  protected sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * Checks saved positions (ids) against the streams, in queue order: `restarted` says where a
   * stream whose ids went back is read from (undefined: its start), `lost` hears of dropped events.
   */
  protected async checkPositions(
    saved: ReadonlyMap<QueueKind, string>,
    restarted: (queue: QueueKind, id: string) => Promise<string | undefined>,
    lost: (queue: QueueKind, id: string) => void,
  ): Promise<Map<QueueKind, string>> {
    const { store } = this.base;
    const positions = new Map<QueueKind, string>();
    for (const queue of QUEUE_KINDS) {
      const id = saved.get(queue);
      if (id === undefined) continue;
      if (await store.eventsRestartedBefore(queue, id)) {
        const from = await restarted(queue, id);
        if (from !== undefined) positions.set(queue, from);
        continue;
      }
      positions.set(queue, id);
      if (await store.eventsLostAfter(queue, id)) lost(queue, id);
    }
    return positions;
  }

  /** Reads every queue's stream from `positions` and writes what arrives, until closed. */
  protected async readAndWrite(r: FollowRound): Promise<void> {
    const { store, logger } = this.base;
    this.builder.reset();
    const pending: RawEvent[] = [];
    // While idle the first event wakes the loop; otherwise a full batch does.
    const idleMs = r.idleMs ?? r.waitMs;
    let idle = false;
    let readers: QueueEvents[] = [];
    const open = () => {
      readers = QUEUE_KINDS.map((queue) => {
        // From the beginning of the stream when nothing was saved yet: what it still holds.
        const events = store.createQueueEvents(queue, { from: r.positions.get(queue) ?? '0' });
        events.on('error', (error) => logger.debug({ err: error.message, queue }, r.readerError));
        for (const event of RECORDED_EVENTS) {
          events.on(
            event as 'added',
            ((args: RawEvent['args'], id: string) => {
              pending.push({ queue, event, id, args });
              if (pending.length >= r.flushAt || idle) this.wake?.();
            }) as never,
          );
        }
        return events;
      });
    };
    const closeReaders = async () => {
      const closing = readers;
      readers = [];
      await settleWithin(Promise.allSettled(closing.map((e) => e.close())), CLOSE_DEADLINE_MS);
    };
    open();
    try {
      while (!this.closed) {
        if (pending.length === 0 && idleMs > r.waitMs) {
          idle = true;
          await this.sleep(idleMs);
          idle = false;
          if (pending.length > 0 && pending.length < r.flushAt) await this.sleep(r.waitMs);
        } else if (pending.length < r.flushAt) await this.sleep(r.waitMs);
        r.check();
        if (pending.length > HIGH_WATER && readers.length > 0) await closeReaders();
        if (pending.length > 0) await r.write(pending.splice(0, r.batchSize));
        else await r.idle?.();
        if (readers.length === 0 && pending.length === 0) open();
        await r.round?.();
      }
    } finally {
      await closeReaders();
    }
  }
}
