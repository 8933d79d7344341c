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
import { QUEUE_KINDS } from '../core/task.js';
import { decodeControl } from '../engine/control.js';
import type { Store, WorkerHeartbeat } from '../engine/store.js';
import { configuredStoreOptions, openStore } from '../engine/open-store.js';
import { indexFiredTask } from '../engine/schedules-fired.js';
import type { ResultEnvelope } from '../engine/task-record.js';
import { logProviderStatus } from '../providers/index.js';
import { ServiceRegistry } from '../registry/registry.js';
import { absoluteServicePaths, loadServiceModules } from '../registry/service-loader.js';
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
import type { Controllable, QueuePoolStats, TaskRunInfo } from './remote-control.js';
import { RemoteControl, resizePlan } from './remote-control.js';
import { createTaskProcessor, retryDelay } from './task-runner.js';
import { StepResults } from './step-results.js';
import { WorkflowLinks } from './workflow-links.js';

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
  /**
   * The services this worker runs (default: an empty registry); the modules of `services` in the
   * worker settings are loaded into it. Process-pool children load its sources (module paths, the
   * built-in services) into registries of their own. `aiecs worker` and `aiecs up` pass one with
   * the built-in services (`registerBuiltinServices` from 'aiecs/services').
   */
  registry?: ServiceRegistry;
}

/**
 * A worker process: consumes the fast and heavy queues with their own concurrency and pool,
 * listens on the control channel for cancels, and announces itself with heartbeats.
 */
export class AiecsWorker implements Controllable {
  readonly id: string;
  readonly config: AiecsConfig;
  readonly settings: WorkerSettings;
  readonly logger: Logger;
  readonly registry: ServiceRegistry;
  private store: Store | undefined;
  private readonly workers = new Map<QueueKind, Worker<StoredTaskData, ResultEnvelope>>();
  private readonly executors = new Map<QueueKind, Executor>();
  private readonly abandoned = new Map<QueueKind, AbandonedTasks>();
  private loopWatch: LoopWatch | undefined;
  private readonly producers = new Map<QueueKind, QueueEventsProducer>();
  private gate: LimitGate | undefined;
  /** Consumers stopped by cancel-consumer whose running tasks still finish. */
  private readonly stopping = new Set<Promise<void>>();
  private readonly cancels = new CancelRegistry();
  private unsubscribe: (() => Promise<void>) | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopMemoryLog: (() => void) | undefined;
  private sweeper: RetentionSweeper | undefined;
  private links: WorkflowLinks | undefined;
  private readonly handed = new StepResults();
  readonly startedAt = Date.now();
  readonly version = VERSION;
  private processed = 0;
  private failed = 0;
  private closing: Promise<void> | undefined;
  private markClosed!: () => void;
  private readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  private metricsServer: MetricsServer | undefined;
  private uncountActive: (() => void) | undefined;

  constructor(private readonly options: WorkerOptions = {}) {
    this.config = options.config ?? loadConfig();
    this.settings = { ...this.config.worker, ...options.worker };
    this.id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.logger = (options.logger ?? createLogger(this.config)).child({ worker: this.id });
    this.registry = options.registry ?? new ServiceRegistry();
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
    await loadServiceModules(absoluteServicePaths(this.settings.services), this.registry);
    const store =
      this.options.store ??
      (await openStore(
        this.options.broker ?? this.config.brokerUrl,
        configuredStoreOptions(this.config, {
          logger: this.logger,
          role: 'worker',
          ...(this.options.namespace !== undefined ? { namespace: this.options.namespace } : {}),
        }),
      ));
    this.store = store;
    logProviderStatus(this.logger, this.config);
    const remote = new RemoteControl(store, this, this.logger);
    this.unsubscribe = await store.subscribe((raw) => {
      const message = decodeControl(raw);
      if (message?.type === 'cancel' && this.cancels.cancel(message.task_id)) {
        this.logger.info({ task_id: message.task_id }, 'cancelling running task');
      } else if (message?.type === 'request') void remote.handle(message);
    });

    this.gate = new LimitGate(store, this.id);
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
    this.links = new WorkflowLinks(store, this.logger);
    for (const queue of this.settings.queues) this.startQueue(store, queue);
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

  /** Consumes `queue` (at start, or add-consumer): its pool, and its BullMQ worker, not yet running. */
  private startQueue(store: Store, queue: QueueKind): Worker<StoredTaskData, ResultEnvelope> {
    const concurrency = this.settings.concurrency[queue];
    const executor: Executor =
      this.settings.pool[queue] === 'process'
        ? new ProcessExecutor({
            size: concurrency,
            maxTasksPerChild: this.settings.maxTasksPerChild,
            maxMemoryPerChildKiB: this.settings.maxMemoryPerChildKiB,
            services: [...this.registry.sources],
            providers: this.config.providers,
            logger: this.logger,
          })
        : new AsyncExecutor({ registry: this.registry, providers: this.config.providers }, this.loopWatch);
    this.executors.set(queue, executor);
    let producer = this.producers.get(queue);
    if (!producer) this.producers.set(queue, (producer = store.createEventsProducer(queue)));
    const processor = createTaskProcessor({
      executor,
      producer,
      workerId: this.id,
      events: store.createEventWriter?.(queue),
      config: this.config,
      logger: this.logger,
      cancels: this.cancels,
      gate: this.gate!,
      onFinished: (ok) => (ok ? this.processed++ : this.failed++),
      onAbandoned: (taskId, returned) => this.abandoned.get(queue)?.hold(taskId, returned),
      ...(this.links ? { links: this.links } : {}),
      handed: this.handed,
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
    // A schedule's tasks are made inside the store: the worker lists each under its user.
    worker.on('active', (job) => indexFiredTask(store, job, this.logger));
    // A task (or gather job) that ended wakes the fan-out await jobs that wait for it; a member's
    // result, stored, waits here for its next step, which this worker most often takes next.
    worker.on('completed', (job, envelope) => {
      this.links?.release(job as never);
      this.handed.completed(job, envelope);
    });
    worker.on('failed', (job) => this.links?.release(job as never));
    this.workers.set(queue, worker);
    this.abandoned.set(queue, new AbandonedTasks(worker, concurrency, queue, this.logger));
    return worker;
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
      rss_bytes: process.memoryUsage.rss(),
      version: VERSION,
      services: this.registry.list().map(({ mode, service, methods, accepts_any_task }) => ({
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
      const draining = Promise.all([...[...this.workers.values()].map((w) => w.close()), ...this.stopping]);
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
      await settleWithin(
        Promise.allSettled([...this.producers.values()].map((p) => p.close())),
        CLOSE_DEADLINE_MS,
      );
      await this.unsubscribe?.();
      await sweeperStopped;
      await this.links?.close();
      this.handed.clear();
      await this.store?.removeHeartbeat(this.id).catch(() => undefined);
      this.uncountActive?.();
      await this.metricsServer?.close();
      if (!this.options.store) await this.store?.close();
      this.logger.info({ processed: this.processed, failed: this.failed }, 'worker stopped');
    })();
    this.closing.then(this.markClosed, this.markClosed);
    return this.closing;
  }

  /** Resolves once the worker has stopped, however it was told to (a signal, `aiecs control shutdown`). */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  // Celery's inspect and control verbs (see remote-control.ts).

  counters() {
    const { total, running } = this.abandonedTasks;
    return { processed: this.processed, failed: this.failed, abandoned: total, abandonedRunning: running };
  }

  running(): TaskRunInfo[] {
    return this.cancels.describeRunning();
  }

  pools(): Partial<Record<QueueKind, QueuePoolStats>> {
    const running = this.running();
    const pools: Partial<Record<QueueKind, QueuePoolStats>> = {};
    for (const queue of QUEUE_KINDS) {
      const active = running.filter((t) => t.queue === queue).length;
      const executor = this.executors.get(queue);
      if (!this.workers.has(queue) && active === 0) continue;
      pools[queue] = {
        kind: this.settings.pool[queue],
        concurrency: this.settings.concurrency[queue],
        active,
        consuming: this.workers.has(queue),
        ...(executor instanceof ProcessExecutor ? { children: executor.pids() } : {}),
      };
    }
    return pools;
  }

  resize(concurrency: number | Partial<Record<QueueKind, number>>): string {
    const plan = resizePlan(concurrency, [...this.workers.keys()]);
    for (const [queue, size] of plan) {
      this.settings.concurrency = { ...this.settings.concurrency, [queue]: size };
      const executor = this.executors.get(queue);
      if (executor instanceof ProcessExecutor) executor.resize(size);
      // Slots held by abandoned tasks stay held: the BullMQ worker gets what is left.
      this.abandoned.get(queue)?.resize(size);
    }
    return `concurrency ${plan.map(([q, n]) => `${q}=${n}`).join(', ')}`;
  }

  async cancelConsumer(queue: QueueKind): Promise<string> {
    const worker = this.workers.get(queue);
    if (!worker) throw new Error(`not consuming ${queue}`);
    const executor = this.executors.get(queue);
    this.workers.delete(queue);
    this.executors.delete(queue);
    this.abandoned.get(queue)?.close();
    this.abandoned.delete(queue);
    this.settings.queues = this.settings.queues.filter((q) => q !== queue);
    const left = this.running().filter((t) => t.queue === queue).length;
    // BullMQ's close takes no new task and waits for the running ones; then their pool goes.
    const stopped = worker
      .close()
      .then(() => executor?.close())
      .catch((error: Error) => this.logger.warn({ err: error.message, queue }, 'could not stop consumer'));
    this.stopping.add(stopped);
    void stopped.then(() => this.stopping.delete(stopped));
    void this.beat();
    return `no longer consuming ${queue}` + (left ? `; its ${left} running task(s) finish` : '');
  }

  async addConsumer(queue: QueueKind): Promise<string> {
    if (this.closing) throw new Error('shutting down');
    if (this.workers.has(queue)) throw new Error(`already consuming ${queue}`);
    const store = this.store;
    if (!store) throw new Error('not started');
    const worker = this.startQueue(store, queue);
    this.settings.queues = QUEUE_KINDS.filter((q) => q === queue || this.settings.queues.includes(q));
    void worker.run();
    await worker.waitUntilReady();
    void this.beat();
    return `consuming ${queue} (${this.settings.pool[queue]} x${this.settings.concurrency[queue]})`;
  }

  shutdown(): void {
    this.logger.info('shutting down on request (aiecs control shutdown)');
    void this.close();
  }
}

export async function startWorker(options: WorkerOptions = {}): Promise<AiecsWorker> {
  return new AiecsWorker(options).start();
}
