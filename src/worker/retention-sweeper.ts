import type { AiecsConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { QueueKind } from '../core/task.js';
import type { Store } from '../engine/store.js';
import { LazyQueues } from './lazy-queues.js';

/** Jobs removed per store call; a sweep goes on until a call removes fewer. */
const BATCH = 1_000;
/** A bound on one sweep's work; what is left waits for the next sweep. */
const MAX_BATCHES = 50;

/** A tenth of the shortest retention, between 1 s and 1 min. */
export function sweepIntervalMs(retention: AiecsConfig['retention']): number {
  return Math.min(60_000, Math.max(1_000, Math.min(retention.completedS, retention.failedS) * 100));
}

/**
 * Removes finished tasks past their retention (AIECS_RETENTION_COMPLETED_S / _FAILED_S) and
 * their index entries. Every worker sweeps now and then; sweeps of several workers overlap
 * harmlessly.
 *
 * Why not BullMQ's removeOnComplete/removeOnFail ages (issue 14 §2, bullmq 6.7.0, measured
 * 2026-12-04 on the shared 2-core machine):
 * - they remove expired jobs only inside a later job's finish in the same queue and state, so the
 *   last tasks before a quiet spell, and the failed tasks of a queue that rarely fails, outlive
 *   their retention for good (5 completed and 1 failed job with age 1 s were all still there 3 s
 *   later; test/retention.test.ts checks a failed task goes with no failure after it);
 * - they know nothing of our task index (trimIndex), on any of the three stores;
 * - they cost every task: aiecs/BullMQ throughput ratio (paired rounds, median) with the sweeper
 *   against with ages set on each job, alternating runs: Redis 0.79, 0.85, 0.88 against 0.77,
 *   0.80; embedded 0.94, 0.97, 1.06 against 0.84, 0.85. The removals themselves cost Redis about
 *   the same either way: 5 us CPU per job in moveToFinished, 6 us in the sweeper's clean batches
 *   (30,000 no-op jobs, 3 rounds; a no-op job costs Redis 44-48 us).
 */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  /** Opened on first sweep: a worker that stops before then never opens them. */
  private readonly queues: LazyQueues;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly kinds: readonly QueueKind[],
    private readonly retention: AiecsConfig['retention'],
    private readonly logger: Logger,
    readonly intervalMs = sweepIntervalMs(retention),
  ) {
    this.queues = new LazyQueues(store, logger);
  }

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    // Jittered, so that workers started together do not sweep together.
    const delay = this.intervalMs * (0.75 + Math.random() * 0.5);
    this.timer = setTimeout(() => {
      void this.sweep()
        .catch((error: Error) => this.logger.warn({ err: error.message }, 'retention sweep failed'))
        .finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  /** One sweep now (or joins the one under way); resolves with the number of tasks removed. */
  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    let removed = 0;
    for (const kind of this.kinds) {
      const queue = this.queues.get(kind);
      for (const [state, keepS] of [
        ['completed', this.retention.completedS],
        ['failed', this.retention.failedS],
      ] as const) {
        for (let batch = 0; batch < MAX_BATCHES && !this.stopped; batch++) {
          const ids = await queue.clean(keepS * 1000, BATCH, state);
          removed += ids.length;
          if (ids.length < BATCH) break;
        }
      }
    }
    const keepS = Math.max(this.retention.completedS, this.retention.failedS);
    await this.store.trimIndex(Date.now() - keepS * 1000);
    if (removed > 0) this.logger.debug({ removed }, 'removed tasks past their retention');
    return removed;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sweeping?.catch(() => undefined);
    await this.queues.close();
  }
}
