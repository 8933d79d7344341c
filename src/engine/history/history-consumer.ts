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
import { SchemaTooNewError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { countingMetrics } from '../../core/metrics.js';
import type { QueueKind } from '../../core/task.js';
import { QUEUE_KINDS } from '../../core/task.js';
import { EventFollower, type FollowerState } from '../event-follower.js';
import type { SqlPool, Store } from '../store.js';
import type { HistoryDb } from './history-db.js';
import type { RawEvent } from './history-entries.js';

export type ConsumerState = FollowerState;

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
export type HistoryFigures = (queue: string, figure: { entries: number } | 'gap' | 'refused') => void;

const processFigures: HistoryFigures = (queue, figure) => countingMetrics()?.history(queue, figure);

type Session = Awaited<ReturnType<SqlPool['connect']>> & {
  on?(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  removeListener?(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
};

const IDLE_CHECK_MS = 2_000;
/**
 * An idle consumer on the embedded store's own database has no session to check: it wakes only
 * for the retention sweep's turn (hourly), which this delays by at most this long.
 */
const IN_PROCESS_IDLE_MS = 60_000;

/** The lead: a session holding the advisory lock (event-follower.ts runs the loop). */
export class HistoryConsumer extends EventFollower<Session> {
  private readonly lockKey: string;
  private lastSweep = 0;
  /** Set when the store refused to start: a newer aiecs migrated the history. */
  failure: Error | undefined;

  constructor(private readonly options: HistoryConsumerOptions) {
    super(options);
    this.lockKey = `aiecs:history:${options.db.schema}`;
  }

  protected async takeLead(): Promise<{ lead: Session; held: boolean }> {
    const { db } = this.options;
    await db.ready();
    const session = (await db.pool.connect()) as Session;
    try {
      // A connection that drops while checked out says so on the client: follow() listens
      // while it reads; otherwise the next statement fails.
      session.on?.('error', () => undefined);
      const { rows } = await session.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [this.lockKey]);
      return { lead: session, held: rows[0]?.ok === true };
    } catch (error) {
      session.release(true);
      throw error;
    }
  }

  protected async dropLead(session: Session, held: boolean): Promise<void> {
    if (held)
      await session.query('SELECT pg_advisory_unlock(hashtext($1))', [this.lockKey]).catch(() => undefined);
    session.release(true);
  }

  protected active(): void {
    this.options.logger.info({ history: this.options.db.where }, 'task history consumer active');
  }

  protected failed(error: unknown): 'stop' | undefined {
    if (!(error instanceof SchemaTooNewError)) return undefined;
    this.failure = error;
    this.options.logger.error({ err: error.message }, 'task history consumer stopped');
    return 'stop';
  }

  protected outageLine(error: Error): void {
    this.options.logger.warn(
      { err: error.message, history: this.options.db.where },
      'task history database unreachable: history is delayed (tasks are not); retrying',
    );
  }

  protected backLine(): void {
    this.options.logger.info({ history: this.options.db.where }, 'task history database back; catching up');
  }

  /** Reads and writes until closed; throws when the session or the database fails. */
  protected async follow(session: Session): Promise<void> {
    const { db, logger } = this.options;
    let broken: Error | undefined;
    const onBroken = (error?: Error) => {
      broken ??= error ?? new Error('the history database connection ended');
      this.wake?.();
    };
    session.on?.('error', onBroken);
    session.on?.('end', onBroken);
    try {
      const saved = await db.positions(session);
      const ids = new Map<QueueKind, string>();
      const epochs = new Map<QueueKind, number>();
      for (const queue of QUEUE_KINDS) {
        const position = saved.get(queue);
        if (position === undefined) continue;
        const { epoch, id } = parsePosition(position);
        epochs.set(queue, epoch);
        ids.set(queue, id);
      }
      const positions = await this.checkPositions(
        ids,
        async (queue) => {
          // Read the new stream from its start; its ids repeat the old ones, so its rows are kept
          // apart under the next epoch, saved at once (a restart goes unseen once ids pass `id`).
          const epoch = epochs.get(queue) ?? 0;
          epochs.set(queue, epoch + 1);
          await db.write(session, [], { [queue]: withEpoch(epoch + 1, '0') });
          this.figures(queue, 'gap');
          logger.warn(
            { queue, position: saved.get(queue) },
            "task history has a gap: the queue's event stream restarted (its ids went back: the store's queue data was recreated); events between the saved position and the restart are not recorded",
          );
          return '0';
        },
        (queue) => {
          this.figures(queue, 'gap');
          logger.warn(
            { queue, position: saved.get(queue) },
            "task history has a gap: the queue's event stream dropped events the consumer had not read (it was behind for longer than the stream holds)",
          );
        },
      );
      let idleSince = Date.now();
      await this.readAndWrite({
        positions,
        batchSize: this.batchSize,
        flushAt: this.batchSize,
        waitMs: this.options.flushMs ?? 200,
        // Idle, it wakes only to check its session (was every flushMs: 5 times a second).
        idleMs: db.inProcess ? Math.min(IN_PROCESS_IDLE_MS, this.sweepIntervalMs) : IDLE_CHECK_MS,
        readerError: 'history events error',
        check: () => {
          if (broken) throw broken;
        },
        write: async (batch) => {
          await this.write(session, batch, positions, epochs);
          idleSince = Date.now();
        },
        idle: async () => {
          if (db.inProcess || Date.now() - idleSince <= IDLE_CHECK_MS) return;
          // Nothing to write: a dead connection (and a lost lock) shows here.
          await session.query('SELECT 1');
          idleSince = Date.now();
        },
        round: () => this.sweepIfDue(),
      });
    } finally {
      session.removeListener?.('error', onBroken);
      session.removeListener?.('end', onBroken);
    }
  }

  private get sweepIntervalMs(): number {
    return this.options.sweepIntervalMs ?? 3_600_000;
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
    const refused = await this.options.db.write(session, rows, saved);
    for (const [queue, id] of reached) positions.set(queue, id);
    const perQueue = new Map<string, number>();
    for (const r of rows) perQueue.set(r.queue, (perQueue.get(r.queue) ?? 0) + 1);
    for (const r of refused) {
      perQueue.set(r.queue, (perQueue.get(r.queue) ?? 0) - 1);
      this.figures(r.queue, 'refused');
      this.options.logger.error(
        { queue: r.queue, event_id: r.event_id, task_id: r.task_id, kind: r.kind },
        'task history entry refused by the database (a value it cannot store); left out, the history goes on',
      );
    }
    for (const [queue, entries] of perQueue) this.figures(queue, { entries });
  }

  private get figures(): HistoryFigures {
    return this.options.figures ?? processFigures;
  }

  /** The retention sweep, by the active consumer only, at most once per interval. */
  private async sweepIfDue(): Promise<void> {
    const { retentionDays, db, logger } = this.options;
    const now = Date.now();
    if (retentionDays <= 0 || now - this.lastSweep < this.sweepIntervalMs) return;
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
