/**
 * The Celery results relay (issue 17; docs/design.md, "Celery results"): follows the store's task
 * events as the task history does (the queues' event streams from a saved position, turned into
 * entries by the history's EntryBuilder) and, for every task the Celery bridge submitted (its job
 * data carries `celery: { id }`), writes its state to the Celery result backend as Celery's
 * RedisBackend does (celery-meta.ts, result-backend.ts), so Python's `AsyncResult.get()`,
 * `.state`, `.info` and `.ready()` work.
 *
 * - Durable: the position per queue is saved in the backend with each batch (`aiecs:celery:relay:
 *   <namespace>:<queue>`), so a relay that was down catches up from where it stopped, as long as
 *   the streams still hold the events.
 * - One active relay: the one holding `aiecs:celery:relay-lock:<namespace>` (renewed a third of
 *   its TTL); the others stand by and ask again. Writes are fenced by the lock and a key already in
 *   a ready state is never written again, so each result is published once.
 * - Low latency: an event wakes the relay at once; what arrived meanwhile is one batch.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../../core/logger.js';
import type { QueueKind } from '../../core/task.js';
import { QUEUE_KINDS } from '../../core/task.js';
import { EventFollower, type FollowerState } from '../../engine/event-follower.js';
import type { RawEvent } from '../../engine/history/history-entries.js';
import { redactUrl as redact, type Store } from '../../engine/store.js';
import { celeryMetaOf, type CeleryMeta } from './celery-meta.js';
import { RelayLockLost, ResultBackend } from './result-backend.js';

export type RelayState = FollowerState;

export interface CeleryResultsOptions {
  store: Store;
  logger: Logger;
  /** `--celery-result-backend` / CELERY_RESULT_BACKEND (a redis:// URL). */
  backendUrl: string;
  /** `--celery-result-expires`: seconds a result is kept (Celery's result_expires); 0 keeps it. */
  expiresS: number;
  /** `--celery-raise-failures`: failures as Celery FAILURE / REVOKED (see celery-meta.ts). */
  raiseFailures: boolean;
  /** The lock's time to live; renewed every third of it. Default 10 s. */
  lockTtlMs?: number;
  /** How often a standby relay asks for the lock. Default 2 s. */
  standbyPollMs?: number;
  /** Waits after a failure, doubling from `min` to `max`. Default 250 ms to 10 s. */
  retryMs?: { min: number; max: number };
  /** Events per batch at most. Default 1,000. */
  batchSize?: number;
}

/** The lead: the backend's relay lock, renewed while held (event-follower.ts runs the loop). */
export class CeleryResults extends EventFollower<true> {
  private lost = false;
  private renewal: NodeJS.Timeout | undefined;
  private readonly backend: ResultBackend;
  /** Metas written (each a SET and a PUBLISH): for tests and logs. */
  written = 0;

  constructor(private readonly options: CeleryResultsOptions) {
    super(options);
    const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.backend = new ResultBackend(options.backendUrl, options.store.namespace, holder);
  }

  protected override closing(): void {
    this.backend.close();
  }

  private get lockTtlMs(): number {
    return this.options.lockTtlMs ?? 10_000;
  }

  protected async takeLead(): Promise<{ lead: true; held: boolean }> {
    await this.backend.connect();
    const held = await this.backend.acquire(this.lockTtlMs);
    if (held) {
      this.lost = false;
      this.renewal = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.lockTtlMs / 3)));
    }
    return { lead: true, held };
  }

  protected async dropLead(_lead: true, held: boolean): Promise<void> {
    clearInterval(this.renewal);
    this.renewal = undefined;
    if (held) await this.backend.release().catch(() => undefined);
  }

  protected active(): void {
    this.options.logger.info({ backend: redact(this.options.backendUrl) }, 'Celery results relay active');
  }

  protected failed(error: unknown): 'again' | undefined {
    if (this.closed || !(error instanceof RelayLockLost)) return undefined;
    // Releasing is a no-op then: the lock is another relay's.
    this.options.logger.warn('Celery results relay lost its lock; standing by');
    return 'again';
  }

  private async renew(): Promise<void> {
    try {
      if (!(await this.backend.renew(this.lockTtlMs))) {
        this.lost = true;
        this.wake?.();
      }
    } catch {
      // The backend is down: the next write fails and the relay starts again.
    }
  }

  protected outageLine(error: Error): void {
    this.options.logger.warn(
      { err: error.message, backend: redact(this.options.backendUrl) },
      'Celery result backend unreachable: Celery results are delayed (tasks are not); retrying',
    );
  }

  protected backLine(): void {
    this.options.logger.info('Celery result backend back; catching up');
  }

  /** Reads and writes until closed; throws when the backend fails or the lock is lost. */
  protected async follow(): Promise<void> {
    const { logger } = this.options;
    const positions = await this.checkPositions(
      await this.backend.positions(QUEUE_KINDS),
      async (queue, position) => {
        // Its ids went back (the store's queue data recreated): read the new stream from its start.
        logger.warn(
          { queue, position },
          "Celery results relay has a gap: the queue's event stream restarted (its ids went back); reading it from its start",
        );
        return undefined;
      },
      (queue, position) =>
        logger.warn(
          { queue, position },
          "Celery results relay has a gap: the queue's event stream dropped events it had not read (it was down for longer than the stream holds); those tasks' results are missing",
        ),
    );
    await this.readAndWrite({
      positions,
      batchSize: this.options.batchSize ?? 1_000,
      // An event wakes it at once; the wait only bounds how long a lost lock goes unnoticed.
      flushAt: 1,
      waitMs: this.lockTtlMs / 3,
      readerError: 'Celery relay events error',
      check: () => {
        if (this.lost) throw new RelayLockLost();
      },
      write: (batch) => this.write(batch, positions),
    });
  }

  private async write(batch: RawEvent[], positions: Map<QueueKind, string>): Promise<void> {
    const entries = await this.builder.entries(batch);
    // The last state of each task in the batch: Celery's key holds one state, readers want the newest.
    const latest = new Map<string, CeleryMeta>();
    const now = new Date();
    for (const entry of entries) {
      const meta = celeryMetaOf(entry, this.options, now);
      if (!meta) continue;
      latest.delete(meta.task_id);
      latest.set(meta.task_id, meta);
    }
    const reached: Record<string, string> = {};
    for (const e of batch) reached[e.queue] = e.id;
    this.written += await this.backend.write([...latest.values()], reached, this.options.expiresS);
    for (const [queue, id] of Object.entries(reached)) positions.set(queue as QueueKind, id);
  }
}

/** Starts the relay in the background (`aiecs worker --celery`); `close()` stops it. */
export function startCeleryResults(options: CeleryResultsOptions): CeleryResults {
  return new CeleryResults(options).start();
}
