/**
 * The two things under test behind one small interface: aiecs (app + worker) and raw BullMQ
 * (Queue + Worker + QueueEvents), each on Redis or on the embedded store (PGlite). The workloads
 * only see `Target`, so both sides run exactly the same loop and are measured the same way.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker, createPostgresBackend, type Job } from 'bullmq';
import pg from 'pg';
import { loadConfig, type WorkerSettings } from '../src/core/config.js';
import { silentLogger } from '../src/core/logger.js';
import { disableMetrics, enableMetrics } from '../src/core/metrics.js';
import { DEFAULT_PRIORITY, FAST_QUEUE, HEAVY_QUEUE, toBullPriority } from '../src/core/task.js';
import { createApp, type AiecsApp, type WireSubmission } from '../src/engine/app.js';
import { openMigratedPglite } from '../src/engine/pglite-pool.js';
import { openStore } from '../src/engine/open-store.js';
import type { Store } from '../src/engine/store.js';
import { ServiceRegistry } from '../src/registry/registry.js';
import type { TaskContext } from '../src/core/task-context.js';
import { AiecsWorker } from '../src/worker/worker.js';
import { runHistory } from '../src/engine/history/run-history.js';
import { makeTempDir, removeTempDir, sleep } from './lifecycle.js';

/**
 * Starts raw BullMQ parts: mutes the 'error' events of `muted` (an unhandled one would end the run
 * before cleanup; a real failure shows anyway, as tasks that do not complete) and waits until
 * `ready` are; if one cannot start, closes everything with `close` and rethrows.
 */
export async function startParts(
  muted: ReadonlyArray<{ on(event: 'error', listener: () => void): unknown }>,
  ready: ReadonlyArray<{ waitUntilReady(): Promise<unknown> }>,
  close: () => Promise<void>,
): Promise<void> {
  for (const part of muted) part.on('error', () => undefined);
  try {
    await Promise.all(ready.map((part) => part.waitUntilReady()));
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

export type BenchTask = { kind: 'noop' } | { kind: 'wait'; ms: number };

export interface Target {
  /** Adds `count` tasks with one bulk call. */
  addBulk(count: number, task: BenchTask): Promise<void>;
  /** Submits one task and resolves once it has completed. */
  runOne(task: BenchTask, timeoutMs: number): Promise<void>;
  counts(): Promise<{ completed: number; failed: number }>;
  /** With the task history on: what it holds (every entry, and the tasks it saw complete). */
  history?(): Promise<{ entries: number; completed: number }>;
  /** With `deferWorker`: starts the worker (before that, tasks only pile up). */
  startWorker?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * How a target's worker runs: `deferWorker` leaves it unstarted until `startWorker()` (a backlog
 * submitted before any worker); `noWorker` has none at all (a producer for worker processes).
 */
export interface WorkerPlan {
  deferWorker?: boolean;
  noWorker?: boolean;
}

export type StoreChoice =
  | { kind: 'redis'; url: string; namespace: string }
  | { kind: 'embedded' }
  /** A real PostgreSQL server: aiecs's PostgreSQL store, or raw BullMQ's PostgreSQL backend, in `schema`. */
  | { kind: 'postgres'; url: string; schema: string };

/** The bench services, run in the target's process: the async pool (fast queue) calls them in-process. */
export function registerBenchServices(registry: ServiceRegistry): ServiceRegistry {
  registry.register('bench', 'noop', {
    noop: () => ({ ok: true }),
    wait: async (input: Record<string, unknown>, _ctx: unknown, task: TaskContext) => {
      await sleep(Number(input.ms), task.signal);
      return { ok: true };
    },
  });
  return registry;
}

const BASE_REQUEST = { user_id: 'bench', mode: 'bench', service: 'noop' };

function wireRequest(task: BenchTask): Record<string, unknown> {
  return task.kind === 'noop'
    ? { ...BASE_REQUEST, task_name: 'noop' }
    : { ...BASE_REQUEST, task_name: 'wait', input_data: { ms: task.ms } };
}

/** How often the metrics side is scraped: the interval deploy/prometheus/prometheus.yml sets. */
export const BENCH_SCRAPE_MS = 15_000;

/** The task history's tables in PostgreSQL at `url`, in a schema named as the target's namespace. */
export interface BenchHistory {
  url: string;
}

/**
 * aiecs on `store`. With `metrics`, the process counts every figure (as a worker on
 * --metrics-port does) and is scraped every BENCH_SCRAPE_MS while the target lives. With
 * `history` (Redis only), the worker's process also runs the task history's consumer, as
 * `aiecs worker` does with AIECS_HISTORY_URL set; its schema is dropped on close.
 */
export async function aiecsTarget(
  store: StoreChoice,
  concurrency: number,
  options: { metrics?: boolean; history?: BenchHistory } & WorkerPlan = {},
): Promise<Target & { app: AiecsApp }> {
  // The history's schema is named after the Redis namespace, which each target has of its own.
  if (options.history && store.kind !== 'redis') throw new Error('the bench runs the history on Redis only');
  // An empty environment: the figures must not depend on whoever runs the benchmark.
  const config = loadConfig({
    AIECS_LOG_LEVEL: 'silent',
    // The history's consumer runs on the worker's store (run-history.ts).
    ...(options.history && store.kind === 'redis' ? { AIECS_HISTORY_URL: options.history.url } : {}),
  });
  const logger = silentLogger;
  const settings: Partial<WorkerSettings> = {
    queues: [FAST_QUEUE],
    concurrency: { [FAST_QUEUE]: concurrency, [HEAVY_QUEUE]: 1 },
    services: [],
  };
  let dir: string | undefined;
  let shared: Store | undefined;
  type Where = { store: Store } | { broker: string; namespace: string };
  let where: Where;
  let workerWhere: Where;
  if (store.kind === 'embedded') {
    // One process may open an embedded dir: app and worker share the store, as in `aiecs up`.
    dir = makeTempDir('aiecs');
    shared = await openStore(`embedded:${dir}`, { logger, role: 'worker' });
    where = workerWhere = { store: shared };
  } else if (store.kind === 'postgres') {
    // As on Redis: app and worker open their own connections (and pools).
    where = workerWhere = { broker: store.url, namespace: store.schema };
  } else {
    // Redis: app and worker open their own connections, as a producer and a worker process would.
    where = workerWhere = { broker: store.url, namespace: store.namespace };
    // With the history, the worker's process opens the store and shares it with the consumer,
    // as `aiecs worker` does.
    if (options.history) {
      shared = await openStore(store.url, { logger, role: 'worker', namespace: store.namespace });
      workerWhere = { store: shared };
    }
  }
  const historyDb =
    options.history && store.kind === 'redis'
      ? benchHistoryDb(options.history.url, store.namespace)
      : undefined;
  let scrapes: NodeJS.Timeout | undefined;
  if (options.metrics) {
    const metrics = enableMetrics();
    scrapes = setInterval(() => void metrics.exposition(), BENCH_SCRAPE_MS);
  }
  const registry = registerBenchServices(new ServiceRegistry());
  const worker = new AiecsWorker({ ...workerWhere, config, logger, worker: settings, registry });
  const app = createApp({ ...where, config, logger });
  let history: Awaited<ReturnType<typeof runHistory>> | undefined;
  let started = false;
  const startWorker = async () => {
    started = true;
    await worker.start();
  };
  const close = async () => {
    clearInterval(scrapes);
    if (options.metrics) disableMetrics();
    if (started) await worker.close(5);
    await history?.close();
    await app.close();
    await shared?.close();
    await historyDb?.drop();
    if (dir) removeTempDir(dir);
  };
  let queue: Awaited<ReturnType<typeof app.queue>>;
  try {
    if (!options.deferWorker && !options.noWorker) await startWorker();
    if (historyDb && shared) history = await runHistory(config, shared, logger);
    queue = await app.queue(FAST_QUEUE);
    await queue.waitUntilReady();
  } catch (error) {
    // A section that fails to start must not leave a worker polling the store for the next one.
    await close().catch(() => undefined);
    throw error;
  }

  return {
    // For workloads of their own (the workflow section's chains and groups).
    app,
    async addBulk(count, task) {
      const request = wireRequest(task);
      await app.submitWire(
        Array.from({ length: count }, (): WireSubmission => ({ queue: FAST_QUEUE, request })),
      );
    },
    async runOne(task, timeoutMs) {
      const handle = await app.submitWire({ queue: FAST_QUEUE, request: wireRequest(task) });
      await handle.get({ timeout: timeoutMs / 1000 });
    },
    async counts() {
      const c = await queue.getJobCounts('completed', 'failed');
      return { completed: c.completed ?? 0, failed: c.failed ?? 0 };
    },
    ...(historyDb ? { history: () => historyDb.count() } : {}),
    ...(options.deferWorker ? { startWorker } : {}),
    close,
  };
}

/** The bench's own look at a target's history tables: how much they hold, and their removal. */
function benchHistoryDb(url: string, schema: string) {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('error', () => undefined);
  const quoted = `"${schema}"`;
  return {
    async count(): Promise<{ entries: number; completed: number }> {
      const { rows } = await pool
        .query<{ entries: number; completed: number }>(
          `SELECT count(*)::int AS entries, count(*) FILTER (WHERE kind = 'completed')::int AS completed
           FROM ${quoted}.aiecs_history`,
        )
        // Not created yet: the consumer migrates on its start.
        .catch(() => ({ rows: [{ entries: 0, completed: 0 }] }));
      return rows[0] ?? { entries: 0, completed: 0 };
    },
    async drop(): Promise<void> {
      await pool.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`).finally(() => pool.end());
    },
  };
}

type BullData = {
  task_name: string;
  user_id: string;
  mode: string;
  service: string;
  input_data?: { ms: number };
};

/** What a plain BullMQ user would write: return a result, or wait first for the I/O workload. */
async function bullProcessor(job: Job<BullData>): Promise<{ ok: true }> {
  const ms = job.data.input_data?.ms;
  if (ms !== undefined) await sleep(ms);
  return { ok: true };
}

function bullData(task: BenchTask): BullData {
  return wireRequest(task) as BullData;
}

/**
 * Raw BullMQ given the job options aiecs's contract sets on every task (docs/design.md §2): a priority,
 * the task id (a UUID) as job id, the attempts, and a named worker. No aiecs code runs: this side
 * tells what those options cost BullMQ itself from what aiecs's own code costs.
 */
export interface BullmqShape {
  withTaskOptions: boolean;
  /**
   * With the task options: only this one of the two that cost BullMQ (the attempts and the named
   * worker stay), so the option-costs section can tell the priority's share from the job id's.
   */
  only?: 'priority' | 'jobId';
}

export async function bullmqTarget(
  store: StoreChoice,
  concurrency: number,
  shape: BullmqShape = { withTaskOptions: false },
  plan: WorkerPlan = {},
): Promise<Target> {
  // The queue aiecs's fast tasks use: every key, and so every command, carries the same name.
  const name = FAST_QUEUE;
  let queue: Queue<BullData>;
  let makeWorker: () => Worker<BullData>;
  let makeEvents: () => QueueEvents;
  let closeStore = async () => {};

  const workerName = shape.withTaskOptions ? { name: `bench:${process.pid}` } : {};
  const config = shape.withTaskOptions ? loadConfig({}) : undefined;
  const jobOptions = config
    ? () => ({
        ...(shape.only !== 'priority' ? { jobId: randomUUID() } : {}),
        ...(shape.only !== 'jobId' ? { priority: toBullPriority(DEFAULT_PRIORITY[FAST_QUEUE]) } : {}),
        attempts: config.maxAttempts,
      })
    : () => undefined;
  if (store.kind === 'redis') {
    const { hostname, port } = new URL(store.url);
    const connection = { host: hostname, port: Number(port), maxRetriesPerRequest: null };
    const prefix = store.namespace;
    queue = new Queue<BullData>(name, { connection, prefix });
    makeWorker = () =>
      new Worker<BullData>(name, bullProcessor, { connection, prefix, concurrency, ...workerName });
    makeEvents = () => new QueueEvents(name, { connection, prefix });
  } else {
    // Embedded: the same adapter the embedded store uses, on its own fresh dir. PostgreSQL: the
    // connection config our PostgreSQL store gives BullMQ (store-postgres.ts), on its own schema.
    // Either way without anything of aiecs on top.
    let connection: unknown;
    if (store.kind === 'embedded') {
      const dir = makeTempDir('bullmq');
      const { db, pool } = await openMigratedPglite(join(dir, 'pgdata'));
      connection = pool;
      closeStore = async () => {
        await pool.end();
        await db.close();
        removeTempDir(dir);
      };
    } else connection = { connectionString: store.url, schema: store.schema, migrate: true, max: 4 };
    // BullMQ's constructors are typed for Redis by default; the backend factory makes them PostgreSQL.
    const factory = createPostgresBackend as never;
    queue = new Queue<BullData>(name, { connection } as never, factory);
    makeWorker = () =>
      new Worker<BullData>(name, bullProcessor, { connection, concurrency, ...workerName } as never, factory);
    makeEvents = () => new QueueEvents(name, { connection } as never, factory);
  }
  let events: QueueEvents | undefined;
  let worker: Worker<BullData> | undefined;
  const close = async () => {
    await worker?.close();
    await events?.close();
    await queue.close();
    await closeStore();
  };
  const startWorker = async () => {
    const started = makeWorker();
    worker = started;
    await startParts([started], [started], async () => undefined);
  };
  await startParts([queue], [queue], close);
  if (!plan.deferWorker && !plan.noWorker) {
    try {
      await startWorker();
    } catch (error) {
      await close().catch(() => undefined);
      throw error;
    }
  }

  return {
    async addBulk(count, task) {
      const data = bullData(task);
      await queue.addBulk(
        Array.from({ length: count }, () => ({ name: data.task_name, data, opts: jobOptions() })),
      );
    },
    async runOne(task, timeoutMs) {
      if (!events) {
        events = makeEvents();
        events.on('error', () => undefined);
        await events.waitUntilReady();
      }
      const data = bullData(task);
      const job = await queue.add(data.task_name, data, jobOptions());
      await job.waitUntilFinished(events, timeoutMs);
    },
    async counts() {
      const c = await queue.getJobCounts('completed', 'failed');
      return { completed: c.completed ?? 0, failed: c.failed ?? 0 };
    },
    ...(plan.deferWorker ? { startWorker } : {}),
    close,
  };
}
