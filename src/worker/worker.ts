import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { QueueEventsProducer, Worker } from 'bullmq';
import type { AiecsConfig, WorkerSettings } from '../core/config.js';
import { loadConfig } from '../core/config.js';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import type { Logger } from '../core/logger.js';
import { createLogger } from '../core/logger.js';
import { countActiveTasks } from '../core/metrics.js';
import { VERSION } from '../core/version.js';
import type { QueueKind, StoredTaskData } from '../core/task.js';
import { decodeControl } from '../engine/control.js';
import type { Store, WorkerHeartbeat } from '../engine/store.js';
import { openStore } from '../engine/store.js';
import type { ResultEnvelope } from '../engine/task-record.js';
import { configureProviders, logProviderStatus } from '../providers/index.js';
import { registry } from '../registry/registry.js';
import { absoluteServicePaths, loadServiceModules } from '../registry/service-loader.js';
import { registerBuiltinServices } from '../services/builtin.js';
import { AbandonedTasks } from './abandoned-tasks.js';
import { CancelRegistry } from './cancel-registry.js';
import { LimitGate } from './limit-gate.js';
import type { Executor } from './executor.js';
import { AsyncExecutor } from './executor.js';
import { LoopWatch } from './loop-watch.js';
import { startMemoryLog } from './memory-log.js';
import { serveMetrics, type MetricsServer } from './metrics-server.js';
import { ProcessExecutor } from './process-pool.js';
import { RetentionSweeper } from './retention-sweeper.js';
import { createTaskProcessor, retryDelay } from './task-runner.js';

export { VERSION } from '../core/version.js';

export interface WorkerOptions {
  broker?: string;
  namespace?: string;
  config?: AiecsConfig;
  /** Overrides of the config's worker settings (CLI flags). */
  worker?: Partial<WorkerSettings>;
  logger?: Logger;
  /** An already open store to share (`aiecs up`). */
  store?: Store;
  /** Register the built-in services, here and in process-pool children (default true). */
  builtins?: boolean;
}

/**
 * A worker process: consumes the fast and heavy queues with their own concurrency and pool,
 * listens on the control channel for cancels, and announces itself with heartbeats.
 */
export class AiecsWorker {
  readonly id: string;
  readonly config: AiecsConfig;
  readonly settings: WorkerSettings;
  readonly logger: Logger;
  private store: Store | undefined;
  private readonly workers = new Map<QueueKind, Worker<StoredTaskData, ResultEnvelope>>();
  private readonly executors = new Map<QueueKind, Executor>();
  private readonly abandoned = new Map<QueueKind, AbandonedTasks>();
  private loopWatch: LoopWatch | undefined;
  private readonly producers: QueueEventsProducer[] = [];
  private readonly cancels = new CancelRegistry();
  private unsubscribe: (() => Promise<void>) | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopMemoryLog: (() => void) | undefined;
  private sweeper: RetentionSweeper | undefined;
  private readonly startedAt = Date.now();
  private processed = 0;
  private failed = 0;
  private closing: Promise<void> | undefined;
  private metricsServer: MetricsServer | undefined;
  private uncountActive: (() => void) | undefined;

  constructor(private readonly options: WorkerOptions = {}) {
    this.config = options.config ?? loadConfig();
    this.settings = { ...this.config.worker, ...options.worker };
    this.id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.logger = (options.logger ?? createLogger(this.config)).child({ worker: this.id });
  }

  /** Connects, loads the service modules and starts consuming. */
  async start(): Promise<this> {
    // The metrics port first: one taken is one line before anything else has started.
    const { metricsPort } = this.settings;
    if (metricsPort !== undefined)
      this.metricsServer = await serveMetrics({
        port: metricsPort,
        host: this.config.host,
        token: this.config.metricsToken,
        logger: this.logger,
      });
    this.uncountActive = countActiveTasks(() => this.cancels.size);
    try {
      return await this.startConsuming();
    } catch (error) {
      this.uncountActive();
      await this.metricsServer?.close();
      throw error;
    }
  }

  /** Where this worker serves /metrics (--metrics-port), if it does. */
  get metricsUrl(): string | undefined {
    return this.metricsServer?.url;
  }

  private async startConsuming(): Promise<this> {
    const services = absoluteServicePaths(this.settings.services);
    if (this.options.builtins ?? true) registerBuiltinServices();
    await loadServiceModules(services);
    const store =
      this.options.store ??
      (await openStore(this.options.broker ?? this.config.brokerUrl, {
        logger: this.logger,
        role: 'worker',
        timeoutMs: this.config.storeTimeoutMs,
        ...(this.options.namespace !== undefined ? { namespace: this.options.namespace } : {}),
      }));
    this.store = store;
    configureProviders(this.config);
    logProviderStatus(this.logger, this.config);
    this.unsubscribe = await store.subscribe((raw) => {
      const message = decodeControl(raw);
      if (message?.type === 'cancel' && this.cancels.cancel(message.task_id)) {
        this.logger.info({ task_id: message.task_id }, 'cancelling running task');
      }
    });

    const gate = new LimitGate(store, this.id);
    if (this.settings.queues.some((queue) => this.settings.pool[queue] === 'async')) {
      this.loopWatch = new LoopWatch({
        // BullMQ renews a task's lock every quarter to half of the lock duration: a loop blocked
        // this long already delays renewal, and past the whole duration its tasks are taken away.
        reportMs: Math.round(this.config.lockDurationMs / 4),
        exitS: this.settings.blockedLoopExitS,
        logger: this.logger,
        workerId: this.id,
      });
      this.loopWatch.start();
    }
    for (const queue of this.settings.queues) {
      const concurrency = this.settings.concurrency[queue];
      const executor: Executor =
        this.settings.pool[queue] === 'process'
          ? new ProcessExecutor({
              size: concurrency,
              maxTasksPerChild: this.settings.maxTasksPerChild,
              maxMemoryPerChildKiB: this.settings.maxMemoryPerChildKiB,
              services,
              builtins: this.options.builtins ?? true,
              providers: this.config.providers,
              logger: this.logger,
            })
          : new AsyncExecutor(this.loopWatch);
      this.executors.set(queue, executor);
      const producer = store.createEventsProducer(queue);
      this.producers.push(producer);
      const processor = createTaskProcessor({
        executor,
        producer,
        workerId: this.id,
        events: store.createEventWriter?.(queue),
        config: this.config,
        logger: this.logger,
        cancels: this.cancels,
        gate,
        onFinished: (ok) => (ok ? this.processed++ : this.failed++),
        onAbandoned: (taskId, returned) => this.abandoned.get(queue)?.hold(taskId, returned),
      });
      const worker = store.createWorker<StoredTaskData, ResultEnvelope>(queue, processor, {
        name: this.id,
        concurrency,
        lockDuration: this.config.lockDurationMs,
        stalledInterval: this.config.stalledIntervalMs,
        maxStalledCount: 2,
        settings: { backoffStrategy: retryDelay(this.config.retryBackoffMs) },
        autorun: false,
      });
      worker.on('error', (error) => this.logger.warn({ err: error.message, queue }, 'worker error'));
      this.workers.set(queue, worker);
      this.abandoned.set(queue, new AbandonedTasks(worker, concurrency, queue, this.logger));
    }
    for (const worker of this.workers.values()) void worker.run();
    await Promise.all([...this.workers.values()].map((w) => w.waitUntilReady()));
    await this.beat();
    this.heartbeatTimer = setInterval(() => void this.beat(), this.config.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.stopMemoryLog = startMemoryLog({
      intervalS: this.config.memoryLogIntervalS,
      logger: this.logger,
      activeTasks: () => this.cancels.size,
    });
    this.sweeper = new RetentionSweeper(store, this.settings.queues, this.config.retention, this.logger);
    this.sweeper.start();
    const prefetch = this.settings.prefetchMultiplier;
    if (prefetch !== 1)
      this.logger.info(
        { prefetch_multiplier: prefetch },
        `CELERY_WORKER_PREFETCH_MULTIPLIER=${prefetch} has no effect: BullMQ fetches one task per free slot ` +
          '(Celery with a multiplier of 1), so no task waits on a busy worker while another is idle',
      );
    this.logger.info(
      {
        store: store.displayUrl,
        queues: this.settings.queues,
        concurrency: this.settings.concurrency,
        pool: this.settings.pool,
      },
      'worker ready',
    );
    return this;
  }

  get activeTasks(): number {
    return this.cancels.size;
  }

  /** Tasks ended past their limit while their code kept running: since start, and still running. */
  get abandonedTasks(): { total: number; running: number } {
    let total = 0;
    let running = 0;
    for (const tasks of this.abandoned.values()) {
      total += tasks.total;
      running += tasks.size;
    }
    return { total, running };
  }

  heartbeat(): WorkerHeartbeat {
    const abandoned = this.abandonedTasks;
    return {
      id: this.id,
      hostname: hostname(),
      pid: process.pid,
      queues: this.settings.queues,
      concurrency: this.settings.concurrency,
      pool: this.settings.pool,
      active: this.cancels.size,
      processed: this.processed,
      failed: this.failed,
      abandoned: abandoned.total,
      abandoned_running: abandoned.running,
      started_at: this.startedAt,
      last_seen: Date.now(),
      version: VERSION,
      services: registry.list().map(({ mode, service, methods, accepts_any_task }) => ({
        mode,
        service,
        methods,
        accepts_any_task,
      })),
    };
  }

  private async beat(): Promise<void> {
    try {
      await this.store?.putHeartbeat(this.heartbeat(), this.config.heartbeatIntervalMs * 3);
      // A cancel whose control message this worker missed (a reconnect, say) is found here.
      if (this.cancels.size > 0 && this.store) {
        for (const taskId of await this.store.cancelRequested(this.cancels.runningIds())) {
          if (this.cancels.cancel(taskId))
            this.logger.info({ task_id: taskId }, 'cancelling running task (found on heartbeat)');
        }
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not record heartbeat');
    }
  }

  /** Child process ids of the process pools (for tests and inspection). */
  childPids(): number[] {
    return [...this.executors.values()].flatMap((e) => (e instanceof ProcessExecutor ? e.pids() : []));
  }

  /**
   * Graceful stop: take no new tasks, let running ones finish until the deadline, then send the
   * rest back to the queue for another worker. Nothing is lost.
   */
  close(deadlineS = this.config.shutdownTimeoutS): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.heartbeatTimer);
      this.stopMemoryLog?.();
      for (const tasks of this.abandoned.values()) tasks.close();
      const sweeperStopped = this.sweeper?.stop();
      const draining = Promise.all([...this.workers.values()].map((w) => w.close()));
      const deadline = new Promise<'deadline'>((resolve) =>
        setTimeout(() => resolve('deadline'), deadlineS * 1000).unref(),
      );
      if ((await Promise.race([draining.then(() => 'drained' as const), deadline])) === 'deadline') {
        const left = this.cancels.shutdownAll();
        this.logger.warn({ tasks: left }, 'drain deadline passed; returning running tasks to the queue');
        await draining;
      }
      await Promise.all([...this.executors.values()].map((e) => e.close()));
      await this.loopWatch?.close();
      await settleWithin(Promise.allSettled(this.producers.map((p) => p.close())), CLOSE_DEADLINE_MS);
      await this.unsubscribe?.();
      await sweeperStopped;
      await this.store?.removeHeartbeat(this.id).catch(() => undefined);
      this.uncountActive?.();
      await this.metricsServer?.close();
      if (!this.options.store) await this.store?.close();
      this.logger.info({ processed: this.processed, failed: this.failed }, 'worker stopped');
    })();
    return this.closing;
  }
}

export async function startWorker(options: WorkerOptions = {}): Promise<AiecsWorker> {
  return new AiecsWorker(options).start();
}
