import type { FlowProducer, Processor, QueueEvents, QueueEventsProducer, WorkerOptions } from 'bullmq';
import type { Queue, Worker } from 'bullmq';
import { ConfigError, StoreUnavailableError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export type StoreKind = 'embedded' | 'postgres' | 'redis';

export interface WorkerHeartbeat {
  id: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: Record<string, number>;
  pool: Record<string, string>;
  active: number;
  processed: number;
  failed: number;
  /** Tasks ended past their hard limit (or cancel grace) while their code kept running in the event loop. */
  abandoned?: number;
  /** Of those, the ones whose code still runs: each holds a slot of its queue. */
  abandoned_running?: number;
  started_at: number;
  last_seen: number;
  /** The worker process's resident memory at the heartbeat (the dashboard shows it). */
  rss_bytes?: number;
  version: string;
  /** What this worker can run: the union over live workers is what the gateway accepts. */
  services: Array<{ mode: string; service: string; methods: string[]; accepts_any_task: boolean }>;
}

export type ControlHandler = (message: string) => void;

/**
 * The store's two pub/sub channels: `control` carries cancels and requests to every worker,
 * `reply` the workers' answers to requesters (see control.ts).
 */
export type Channel = 'control' | 'reply';

/** Writes a queue's task progress and custom events to its event stream, as BullMQ would. */
export interface EventWriter {
  /** Stores a job's progress and announces it (BullMQ's job.updateProgress). */
  progress(jobId: string, data: object): Promise<void>;
  /** Adds a custom event (BullMQ's QueueEventsProducer.publishEvent). */
  publish(fields: Record<string, string | number>): Promise<void>;
}

/** What a pg.Pool and the embedded store's PGlite pool both offer. */
export interface SqlPool {
  query(text: string, params?: readonly unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  connect(): Promise<{
    query(text: string, params?: readonly unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
    release(destroy?: boolean): void;
  }>;
}

export interface IndexedTask {
  task_id: string;
  user_id: string;
  queue: string;
  created_at: number;
  /** Fixed at submit, kept so that lists filter on them without reading records; absent on older entries. */
  task_name?: string;
  mode?: string;
  service?: string;
  /**
   * A bridged task's Celery id when it is not the task id (the seed's task_id argument chose
   * another): indexTasks keeps it as an alias (taskIdForCelery) for as long as the entry.
   * Written only; lists do not return it.
   */
  celery_id?: string;
}

/** What a list may be narrowed to from the index alone (the task's record is not read for it). */
export interface IndexFilter {
  queue?: string;
  task_name?: string;
  mode?: string;
  service?: string;
  /** created_at at or after this (epoch ms). */
  since?: number;
  /** created_at at or before this (epoch ms). */
  until?: number;
}

/** Whether a filter narrows anything. */
export function hasIndexFilter(filter: IndexFilter | undefined): filter is IndexFilter {
  if (!filter) return false;
  for (const value of Object.values(filter)) if (value !== undefined) return true;
  return false;
}

/**
 * Entries a filtered list reads per request at most where the store cannot seek to them (Redis):
 * past it the page comes back short, with a cursor to go on from.
 */
export const INDEX_SCAN_BUDGET = 2_000;

export interface TaskPage {
  items: IndexedTask[];
  /** Pass back to get the next (older) page; absent on the last page. */
  next_cursor?: string;
}

/**
 * One store behind one URL: what BullMQ needs to build queues, plus the two small things aiecs
 * adds on the same store: a control channel (cancel from anywhere) and worker heartbeats.
 */
/** What `Store.readJobSummaries` reads of a job: its data, creation, runs started, worker, parent. */
export interface JobSummary {
  id: string;
  /** The job's data as stored (JSON-parsed). */
  data: unknown;
  timestamp: number;
  attemptsStarted: number;
  processedBy?: string;
  parentId?: string;
}

export interface Store {
  readonly kind: StoreKind;
  /** The URL with any password hidden, for logs. */
  readonly displayUrl: string;
  /** Redis key prefix or PostgreSQL schema that isolates this deployment. */
  readonly namespace: string;

  createQueue<D, R>(name: string, opts?: { producer?: boolean }): Queue<D, R>;
  createWorker<D, R>(
    name: string,
    processor: Processor<D, R>,
    opts: Omit<WorkerOptions, 'connection'>,
  ): Worker<D, R>;
  /**
   * A queue's event reader. By default it starts at the stream's end (events from now on); with
   * `from`, an event id it handed out before (the listener's second argument), it reads the
   * events after that one that the stream still holds (the task history's consumer resumes so).
   */
  createQueueEvents(name: string, opts?: { from?: string }): QueueEvents;
  /**
   * Whether the queue's event stream has dropped events after `position` (an event id): the
   * stream is trimmed to its max length, so a reader that fell that far behind lost some.
   */
  eventsLostAfter(name: string, position: string): Promise<boolean>;
  /**
   * Whether the queue's event stream restarted since `position` was handed out: its ids went
   * back (PostgreSQL: the queue tables recreated or truncated, the id sequence from 1 again;
   * Redis: the stream gone). Read from there, a reader would wait for ids past `position` and
   * skip every event before them; it reads from the stream's start instead.
   */
  eventsRestartedBefore(name: string, position: string): Promise<boolean>;
  /**
   * A few fields of several jobs of a queue in one round trip, where the store has a way (Redis:
   * one pipeline of HMGETs, not a whole job read each); a job that is gone is undefined. The task
   * history's consumer reads each new task of a batch so; without it, it reads whole jobs.
   */
  readJobSummaries?(name: string, ids: readonly string[]): Promise<Array<JobSummary | undefined>>;
  /**
   * The store's own PostgreSQL database, for tables kept beside the queue's (the task history):
   * a URL on PostgreSQL, the in-process pool on the embedded store; absent on Redis.
   */
  readonly database?: { url: string; schema: string } | { pool: SqlPool; schema: string };
  createEventsProducer(name: string): QueueEventsProducer;
  /** Adds workflows (trees of jobs across both queues) in one atomic call. */
  createFlowProducer(): FlowProducer;
  /**
   * A writer that batches progress and events across tasks, where the store has one (Redis);
   * elsewhere workers write through the job and the events producer.
   */
  createEventWriter?(name: string): EventWriter;

  /** Sends on `channel` (default `control`). */
  publish(message: string, channel?: Channel): Promise<void>;
  /** Resolves once subscribed to `channel` (default `control`); returns the unsubscribe function. */
  subscribe(handler: ControlHandler, channel?: Channel): Promise<() => Promise<void>>;

  /**
   * Counts one use in the current `windowMs` window of `key` if fewer than `limit` were counted;
   * otherwise says how long until the window ends. Shared by every process on the store.
   */
  tryHit(key: string, limit: number, windowMs: number): Promise<{ ok: boolean; retryAfterMs: number }>;
  /** Takes (or renews) one of `limit` slots of `key` for `leaseMs`; an expired lease frees its slot. */
  acquireLease(key: string, holder: string, limit: number, leaseMs: number): Promise<boolean>;
  releaseLease(key: string, holder: string): Promise<void>;

  /** Records tasks under their user, newest first, so a user's tasks can be listed. */
  indexTasks(tasks: IndexedTask[]): Promise<void>;
  /**
   * Drops index entries (and Celery aliases) of tasks created before `cutoffMs` (their records
   * are gone by then).
   */
  trimIndex(cutoffMs: number): Promise<void>;
  /**
   * The task id a Celery id was indexed under as an alias (IndexedTask.celery_id); the newest
   * when several were. Flower clients know a bridged task by its Celery id only.
   */
  taskIdForCelery(celeryId: string): Promise<string | undefined>;
  /**
   * One page of a user's tasks (or everyone's, without a user), newest first, narrowed by
   * `filter`. A store that has to scan for a filter reads at most INDEX_SCAN_BUDGET entries and
   * may return fewer than `limit` items with a next_cursor.
   */
  listTasks(
    userId: string | undefined,
    limit: number,
    cursor?: string,
    filter?: IndexFilter,
  ): Promise<TaskPage>;

  /**
   * Records that a running task should stop, for `ttlMs`. The control message is the fast path;
   * this is what a worker finds on its next heartbeat if that message was lost (pub/sub keeps
   * nothing for a subscriber that was not listening).
   */
  requestCancel(taskId: string, ttlMs: number): Promise<void>;
  /** Which of these tasks have a cancel request. */
  cancelRequested(taskIds: string[]): Promise<string[]>;
  /** Forgets a task's cancel request: a retried task's new run must not be stopped by the old one. */
  clearCancel(taskId: string): Promise<void>;
  putHeartbeat(beat: WorkerHeartbeat, ttlMs: number): Promise<void>;
  removeHeartbeat(id: string): Promise<void>;
  listHeartbeats(): Promise<WorkerHeartbeat[]>;

  /**
   * True when the store is known to be unreachable right now (a Redis connection that is not
   * ready). Sends nothing: a request can be refused before anything of it reaches the store.
   */
  isUnreachable(): boolean;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** Redis key prefix / PostgreSQL schema. Default `aiecs` (the embedded store always uses `bullmq`). */
  namespace?: string;
  /** Default: a pino logger at AIECS_LOG_LEVEL (info) on stderr. */
  logger?: Logger;
  /** Producers fail fast when the store is down; workers wait and reconnect. */
  role?: 'producer' | 'worker';
  /** How long opening may take to reach the store (AIECS_STORE_TIMEOUT_MS). */
  timeoutMs?: number;
  /**
   * How many events each queue's event stream keeps (AIECS_EVENTS_MAX_LEN; default 10,000,
   * BullMQ's): set on every queue this store makes (BullMQ's `streams.events.maxLen`, kept in the
   * queue's meta hash, where its scripts read it when they trim). Every process must agree.
   */
  eventsMaxLen?: number;
  /**
   * The embedded store only: time between two passes of its upkeep (vacuum, analyze, checkpoint;
   * AIECS_EMBEDDED_UPKEEP_INTERVAL_S). Default 15 s.
   */
  upkeepIntervalMs?: number;
}

/** AIECS_EVENTS_MAX_LEN's default: BullMQ's. */
export const DEFAULT_EVENTS_MAX_LEN = 10_000;

/** AIECS_STORE_TIMEOUT_MS's default. */
export const DEFAULT_STORE_TIMEOUT_MS = 5_000;

/** Said with every "cannot reach the store" at start: where the URL came from. */
export const BROKER_HINT = 'check --broker or AIECS_BROKER_URL, and that the server is running';

// Node's socket errors, and PostgreSQL's: 08xxx connection exceptions, shutting down, too many clients.
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);
// What ioredis, BullMQ and pg say when the connection, not the command, failed.
const CONNECTION_MESSAGES =
  /Stream isn't writeable|Connection is closed|Reached the max retries per request|Connection terminated|Connection ended|timeout exceeded when trying to connect|Client has encountered a connection error/;

/** Whether an error means the store could not be reached (as opposed to a refused command). */
export function isStoreConnectionError(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string' && (CONNECTION_CODES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code)))
    return true;
  return typeof e.message === 'string' && CONNECTION_MESSAGES.test(e.message);
}

export type ParsedBrokerUrl =
  { kind: 'embedded'; dir: string } | { kind: 'postgres'; url: string } | { kind: 'redis'; url: string };

export function parseBrokerUrl(url: string): ParsedBrokerUrl {
  if (url.startsWith('embedded:')) {
    const dir = url.slice('embedded:'.length).replace(/^\/\/(?=\/)/, '');
    if (!dir) throw new ConfigError(`broker URL ${url}: embedded:<dir> needs a directory`);
    return { kind: 'embedded', dir };
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  if (/^rediss?:\/\//.test(url)) return { kind: 'redis', url };
  throw new ConfigError(
    `broker URL ${JSON.stringify(redactUrl(url))} is not supported; expected embedded:<dir>, postgres://…, redis://… or rediss://…`,
  );
}

/** The first `limit` of `items` (newest first; one more was read to know whether more follow). */
export function indexPage(items: IndexedTask[], limit: number): TaskPage {
  const page = items.slice(0, limit);
  const last = page[page.length - 1];
  return items.length > limit && last
    ? { items: page, next_cursor: encodeCursor(last.created_at, last.task_id) }
    : { items: page };
}

/**
 * Cursors are opaque to callers: a number and the id of the last item seen. The number is the
 * created time on PostgreSQL and embedded, the item's position in its list on Redis.
 */
export function encodeCursor(position: number, taskId: string): string {
  return Buffer.from(JSON.stringify([position, taskId])).toString('base64url');
}

export function decodeCursor(cursor: string): [number, string] | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string')
      return [value[0], value[1]];
  } catch {
    // fall through
  }
  return undefined;
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

/**
 * Every BullMQ object on a shared PostgreSQL pool adds an 'error' listener that it never removes.
 * A process makes a fixed few (queue, worker, events reader and producer per queue; `aiecs up` has
 * app, worker and gateway on one pool): more than Node's default of 10, far fewer than this.
 */
export const POOL_MAX_LISTENERS = 100;

export const NAMESPACE_PATTERN = /^[a-z_][a-z0-9_]{0,40}$/;

export function checkNamespace(namespace: string): string {
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new ConfigError(`namespace ${JSON.stringify(namespace)} must match ${NAMESPACE_PATTERN}`);
  }
  return namespace;
}

export type ResolvedStoreOptions = StoreOptions & { logger: Logger };
