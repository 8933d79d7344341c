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
import type { Queue, QueueEvents } from 'bullmq';
import { CLOSE_DEADLINE_MS, settleWithin } from '../../core/deadline.js';
import type { Logger } from '../../core/logger.js';
import type { QueueKind } from '../../core/task.js';
import { QUEUE_KINDS } from '../../core/task.js';
import { EntryBuilder, RECORDED_EVENTS, type RawEvent } from '../../engine/history/history-entries.js';
import { redactUrl as redact, type Store } from '../../engine/store.js';
import { celeryMetaOf, type CeleryMeta } from './celery-meta.js';
import { RelayLockLost, ResultBackend } from './result-backend.js';

export type RelayState = 'starting' | 'standby' | 'active' | 'waiting' | 'closed';

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

/** Events read and not yet written past this: stop reading until they are. */
const HIGH_WATER = 20_000;

export class CeleryResults {
  private current: RelayState = 'starting';
  private closed = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private down = false;
  private lost = false;
  private readonly builder: EntryBuilder;
  private readonly queues = new Map<QueueKind, Queue>();
  private readonly backend: ResultBackend;
  /** Metas written (each a SET and a PUBLISH): for tests and logs. */
  written = 0;

  constructor(private readonly options: CeleryResultsOptions) {
    const { store } = options;
    this.builder = new EntryBuilder(
      (kind) => this.queue(kind),
      store.readJobSummaries ? (kind, ids) => store.readJobSummaries!(kind, ids) : undefined,
    );
    const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.backend = new ResultBackend(options.backendUrl, store.namespace, holder);
  }

  get state(): RelayState {
    return this.current;
  }

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
    this.backend.close();
    this.current = 'closed';
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

  private get lockTtlMs(): number {
    return this.options.lockTtlMs ?? 10_000;
  }

  private async loop(): Promise<void> {
    const { logger } = this.options;
    const retry = this.options.retryMs ?? { min: 250, max: 10_000 };
    let failures = 0;
    while (!this.closed) {
      let locked = false;
      let renewal: NodeJS.Timeout | undefined;
      try {
        await this.backend.connect();
        locked = await this.backend.acquire(this.lockTtlMs);
        this.recovered();
        failures = 0;
        if (!locked) {
          this.current = 'standby';
          await this.sleep(this.options.standbyPollMs ?? 2_000);
          continue;
        }
        this.lost = false;
        renewal = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.lockTtlMs / 3)));
        logger.info({ backend: redact(this.options.backendUrl) }, 'Celery results relay active');
        this.current = 'active';
        await this.consume();
      } catch (error) {
        if (this.closed) break;
        if (error instanceof RelayLockLost) {
          // Releasing below is a no-op then: the lock is another relay's.
          logger.warn('Celery results relay lost its lock; standing by');
          continue;
        }
        this.outage(error as Error);
        failures += 1;
        this.current = 'waiting';
        await this.sleep(Math.min(retry.max, retry.min * 2 ** Math.min(failures - 1, 16)));
      } finally {
        clearInterval(renewal);
        if (locked) await this.backend.release().catch(() => undefined);
      }
    }
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

  private outage(error: Error): void {
    if (this.down) return;
    this.down = true;
    this.options.logger.warn(
      { err: error.message, backend: redact(this.options.backendUrl) },
      'Celery result backend unreachable: Celery results are delayed (tasks are not); retrying',
    );
  }

  private recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.options.logger.info('Celery result backend back; catching up');
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

  /** Reads and writes until closed; throws when the backend fails or the lock is lost. */
  private async consume(): Promise<void> {
    const { store, logger } = this.options;
    const positions = await this.backend.positions(QUEUE_KINDS);
    for (const [queue, position] of positions) {
      if (await store.eventsRestartedBefore(queue, position)) {
        // Its ids went back (the store's queue data recreated): read the new stream from its start.
        positions.delete(queue);
        logger.warn(
          { queue, position },
          "Celery results relay has a gap: the queue's event stream restarted (its ids went back); reading it from its start",
        );
        continue;
      }
      if (await store.eventsLostAfter(queue, position))
        logger.warn(
          { queue, position },
          "Celery results relay has a gap: the queue's event stream dropped events it had not read (it was down for longer than the stream holds); those tasks' results are missing",
        );
    }
    this.builder.reset();
    const pending: RawEvent[] = [];
    let readers: QueueEvents[] = [];
    const open = () => {
      readers = QUEUE_KINDS.map((queue) => {
        // From the start of the stream when nothing was saved: a first relay writes what it holds.
        const events = store.createQueueEvents(queue, { from: positions.get(queue) ?? '0' });
        events.on('error', (error) =>
          logger.debug({ err: error.message, queue }, 'Celery relay events error'),
        );
        for (const event of RECORDED_EVENTS) {
          events.on(
            event as 'added',
            ((args: RawEvent['args'], id: string) => {
              pending.push({ queue, event, id, args });
              this.wake?.();
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
        // An event wakes it; the timeout only bounds how long a lost lock goes unnoticed.
        if (pending.length === 0) await this.sleep(this.lockTtlMs / 3);
        if (this.lost) throw new RelayLockLost();
        if (pending.length > HIGH_WATER && readers.length > 0) await closeReaders();
        if (pending.length > 0) {
          const batch = pending.splice(0, this.options.batchSize ?? 1_000);
          await this.write(batch, positions);
        }
        if (readers.length === 0 && pending.length === 0) open();
      }
    } finally {
      await closeReaders();
    }
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
