/**
 * The history consumer (docs/design.md, "Task history"): reads every queue's event stream from
 * the position it saved, turns the events into rows (history-entries.ts) and writes them in
 * batches, each in one transaction with the positions it reaches. Nothing of it is on a task's
 * path: a history database that is down only delays the rows, which are read again from the
 * saved position once it is back, as long as the stream still holds them (a gap beyond is counted
 * in `aiecs_history_gaps_total` and logged).
 *
 * One consumer is active per deployment: the one holding a session-level advisory lock on the
 * history database. It writes on that same session, so a consumer that lost its connection (and
 * with it the lock) cannot write beside the one that took over. The others stand by and ask again.
 */
import { EventEmitter } from 'node:events';
import type { Queue, QueueEvents } from 'bullmq';
import { CLOSE_DEADLINE_MS, settleWithin } from '../../core/deadline.js';
import { SchemaTooNewError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { countingMetrics } from '../../core/metrics.js';
import type { QueueKind } from '../../core/task.js';
import { QUEUE_KINDS } from '../../core/task.js';
import type { SqlPool, Store } from '../store.js';
import type { HistoryDb } from './history-db.js';
import { EntryBuilder, RECORDED_EVENTS, type RawEvent } from './history-entries.js';

export type ConsumerState = 'starting' | 'standby' | 'active' | 'waiting' | 'closed';

export interface HistoryConsumerOptions {
  store: Store;
  db: HistoryDb;
  logger: Logger;
  /** AIECS_HISTORY_RETENTION_DAYS: entries older than this are deleted; 0 keeps them. */
  retentionDays: number;
  /** Rows per transaction at most. Default 1,000. */
  batchSize?: number;
  /** Longest wait before what has arrived is written. Default 200 ms. */
  flushMs?: number;
  /** How often a standby consumer asks for the lock. Default 2 s. */
  standbyPollMs?: number;
  /** Waits after a failure, doubling from `min` to `max`. Default 250 ms to 10 s. */
  retryMs?: { min: number; max: number };
  /** How often the retention sweep runs. Default 1 h. */
  sweepIntervalMs?: number;
  /** Where its figures go. Default: this process's metrics (countingMetrics), when counting. */
  figures?: HistoryFigures;
}

/** The consumer's figures: entries written, or a gap found, per queue. */
export type HistoryFigures = (queue: string, figure: { entries: number } | 'gap') => void;

const processFigures: HistoryFigures = (queue, figure) => countingMetrics()?.history(queue, figure);

type Session = Awaited<ReturnType<SqlPool['connect']>> & {
  on?(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  removeListener?(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
};

/** Events waiting to be written past this: stop reading until they are (memory stays bounded). */
const HIGH_WATER = 20_000;
const IDLE_CHECK_MS = 2_000;

export class HistoryConsumer extends EventEmitter<{ state: [ConsumerState] }> {
  private current: ConsumerState = 'starting';
  private closed = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private down = false;
  private readonly builder: EntryBuilder;
  private readonly queues = new Map<QueueKind, Queue>();
  private readonly lockKey: string;
  private lastSweep = 0;
  /** Set when the store refused to start: a newer aiecs migrated the history. */
  failure: Error | undefined;

  constructor(private readonly options: HistoryConsumerOptions) {
    super();
    const { store } = options;
    this.builder = new EntryBuilder(
      (kind) => this.queue(kind),
      store.readJobSummaries ? (kind, ids) => store.readJobSummaries!(kind, ids) : undefined,
    );
    this.lockKey = `aiecs:history:${options.db.schema}`;
  }

  get state(): ConsumerState {
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
    this.setState('closed');
  }

  private setState(state: ConsumerState): void {
    if (this.current === state) return;
    this.current = state;
    this.emit('state', state);
  }

  private queue(kind: QueueKind): Queue {
    let queue = this.queues.get(kind);
    if (!queue) {
      queue = this.options.store.createQueue(kind);
      queue.on('error', () => undefined);
      this.queues.set(kind, queue);
    }
    return queue;
  }

  private async loop(): Promise<void> {
    const { db, logger } = this.options;
    const retry = this.options.retryMs ?? { min: 250, max: 10_000 };
    let failures = 0;
    while (!this.closed) {
      let session: Session | undefined;
      let locked = false;
      try {
        await db.ready();
        session = (await db.pool.connect()) as Session;
        // A connection that drops while checked out says so on the client: consume() listens
        // while it reads; otherwise the next statement fails.
        session.on?.('error', () => undefined);
        const { rows } = await session.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [
          this.lockKey,
        ]);
        locked = rows[0]?.ok === true;
        this.recovered();
        failures = 0;
        if (!locked) {
          this.setState('standby');
          await this.sleep(this.options.standbyPollMs ?? 2_000);
          continue;
        }
        logger.info({ history: db.where }, 'task history consumer active');
        this.setState('active');
        await this.consume(session);
      } catch (error) {
        if (error instanceof SchemaTooNewError) {
          this.failure = error;
          logger.error({ err: error.message }, 'task history consumer stopped');
          break;
        }
        if (this.closed) break;
        this.outage(error as Error);
        failures += 1;
        this.setState('waiting');
        await this.sleep(Math.min(retry.max, retry.min * 2 ** Math.min(failures - 1, 16)));
      } finally {
        if (session) {
          if (locked)
            await session
              .query('SELECT pg_advisory_unlock(hashtext($1))', [this.lockKey])
              .catch(() => undefined);
          session.release(true);
        }
      }
    }
  }

  /** One line per outage, not per retry. */
  private outage(error: Error): void {
    if (this.down) return;
    this.down = true;
    this.options.logger.warn(
      { err: error.message, history: this.options.db.where },
      'task history database unreachable: history is delayed (tasks are not); retrying',
    );
  }

  private recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.options.logger.info({ history: this.options.db.where }, 'task history database back; catching up');
  }

  private sleep(ms: number): Promise<void> {
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

  /** Reads and writes until closed; throws when the session or the database fails. */
  private async consume(session: Session): Promise<void> {
    const { store, db, logger } = this.options;
    let broken: Error | undefined;
    const onBroken = (error?: Error) => {
      broken ??= error ?? new Error('the history database connection ended');
      this.wake?.();
    };
    session.on?.('error', onBroken);
    session.on?.('end', onBroken);

    const saved = await db.positions(session);
    const positions = new Map<QueueKind, string>();
    const epochs = new Map<QueueKind, number>();
    for (const queue of QUEUE_KINDS) {
      const position = saved.get(queue);
      if (position === undefined) continue;
      const { epoch, id } = parsePosition(position);
      epochs.set(queue, epoch);
      if (await store.eventsRestartedBefore(queue, id)) {
        // Read the new stream from its start; its ids repeat the old ones, so its rows are kept
        // apart under the next epoch, saved at once (a restart goes unseen once ids pass `id`).
        epochs.set(queue, epoch + 1);
        positions.set(queue, '0');
        await db.write(session, [], { [queue]: withEpoch(epoch + 1, '0') });
        this.figures(queue, 'gap');
        logger.warn(
          { queue, position },
          "task history has a gap: the queue's event stream restarted (its ids went back: the store's queue data was recreated); events between the saved position and the restart are not recorded",
        );
        continue;
      }
      positions.set(queue, id);
      if (await store.eventsLostAfter(queue, id)) {
        this.figures(queue, 'gap');
        logger.warn(
          { queue, position },
          "task history has a gap: the queue's event stream dropped events the consumer had not read (it was behind for longer than the stream holds)",
        );
      }
    }
    this.builder.reset();
    const pending: RawEvent[] = [];
    let readers: QueueEvents[] = [];
    const open = () => {
      readers = QUEUE_KINDS.map((queue) => {
        // From the beginning of the stream when nothing was saved yet: what it still holds.
        const events = store.createQueueEvents(queue, { from: positions.get(queue) ?? '0' });
        events.on('error', (error) => logger.debug({ err: error.message, queue }, 'history events error'));
        for (const event of RECORDED_EVENTS) {
          events.on(
            event as 'added',
            ((args: RawEvent['args'], id: string) => {
              pending.push({ queue, event, id, args });
              if (pending.length >= this.batchSize) this.wake?.();
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
    let idleSince = Date.now();
    try {
      while (!this.closed) {
        if (pending.length < this.batchSize) await this.sleep(this.options.flushMs ?? 200);
        if (broken) throw broken;
        if (pending.length > HIGH_WATER && readers.length > 0) await closeReaders();
        if (pending.length > 0) {
          const batch = pending.splice(0, this.batchSize);
          await this.write(session, batch, positions, epochs);
          idleSince = Date.now();
        } else if (Date.now() - idleSince > IDLE_CHECK_MS) {
          // Nothing to write: a dead connection (and a lost lock) shows here.
          await session.query('SELECT 1');
          idleSince = Date.now();
        }
        if (readers.length === 0 && pending.length === 0) open();
        await this.sweepIfDue();
      }
    } finally {
      session.removeListener?.('error', onBroken);
      session.removeListener?.('end', onBroken);
      await closeReaders();
    }
  }

  private get batchSize(): number {
    return this.options.batchSize ?? 1_000;
  }

  private async write(
    session: Session,
    batch: RawEvent[],
    positions: Map<QueueKind, string>,
    epochs: ReadonlyMap<QueueKind, number>,
  ): Promise<void> {
    const rows = await this.builder.build(batch);
    for (const r of rows) r.event_id = withEpoch(epochs.get(r.queue as QueueKind) ?? 0, r.event_id);
    const reached = new Map<QueueKind, string>();
    for (const e of batch) reached.set(e.queue, e.id);
    const saved: Record<string, string> = {};
    for (const [queue, id] of reached) saved[queue] = withEpoch(epochs.get(queue) ?? 0, id);
    await this.options.db.write(session, rows, saved);
    for (const [queue, id] of reached) positions.set(queue, id);
    const perQueue = new Map<string, number>();
    for (const r of rows) perQueue.set(r.queue, (perQueue.get(r.queue) ?? 0) + 1);
    for (const [queue, entries] of perQueue) this.figures(queue, { entries });
  }

  private get figures(): HistoryFigures {
    return this.options.figures ?? processFigures;
  }

  /** The retention sweep, by the active consumer only, at most once per interval. */
  private async sweepIfDue(): Promise<void> {
    const { retentionDays, db, logger } = this.options;
    const now = Date.now();
    if (retentionDays <= 0 || now - this.lastSweep < (this.options.sweepIntervalMs ?? 3_600_000)) return;
    this.lastSweep = now;
    const deleted = await db.sweep(now - retentionDays * 86_400_000);
    if (deleted > 0) logger.info({ deleted, retention_days: retentionDays }, 'task history swept');
  }
}

/**
 * A saved position: the stream's event id, after `<epoch>:` once the stream has restarted (its
 * ids went back), so that rows and positions of the new stream never meet the old ones' ids.
 * Redis ids (`ms-seq`) and PostgreSQL ids (digits) never hold a colon.
 */
export function parsePosition(saved: string): { epoch: number; id: string } {
  const match = /^(\d+):(.+)$/.exec(saved);
  return match ? { epoch: Number(match[1]), id: match[2]! } : { epoch: 0, id: saved };
}

export function withEpoch(epoch: number, id: string): string {
  return epoch > 0 ? `${epoch}:${id}` : id;
}

/** Starts a consumer; its first migration is awaited so that a too-new schema stops the start. */
export async function startHistoryConsumer(options: HistoryConsumerOptions): Promise<HistoryConsumer> {
  try {
    await options.db.ready();
  } catch (error) {
    if (error instanceof SchemaTooNewError) throw error;
    // Unreachable now: the consumer keeps trying in the background.
  }
  return new HistoryConsumer(options).start();
}
