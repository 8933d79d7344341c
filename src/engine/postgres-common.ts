/**
 * What the PostgreSQL and embedded (PGlite) stores share: our own tables and channels next to
 * BullMQ's, BullMQ on a PostgreSQL connection, and the store built from the two.
 */
import {
  FlowProducer,
  Queue,
  QueueEvents,
  QueueEventsProducer,
  Worker,
  createPostgresBackend,
  quoteSchemaName,
} from './bullmq.js';
import { QUEUE_KINDS } from '../core/task.js';
import { readEventsInOrder, type PgEventBackend } from '../shims/bullmq-pg-event-reader.js';
import { LeanQueue, LeanWorker, isTaskQueue } from '../shims/bullmq-lean-job.js';
import { inSchema, readQueries } from '../core/script-files.js';
import { migrate } from './migrate.js';
import type { Channel, ControlHandler, Store, StoreKind, WorkerHeartbeat } from './store.js';
import { DEFAULT_EVENTS_MAX_LEN, decodeCursor, indexPage } from './store.js';

/** The part of a pg pool our own queries need; both pg.Pool and the PGlite pool fit. */
export interface PgLike {
  query(text: string, params?: readonly unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  connect(): Promise<PgListenerClient>;
}

export interface PgListenerClient {
  query(text: string, params?: readonly unknown[]): Promise<unknown>;
  on(event: 'notification', listener: (msg: { channel: string; payload?: string }) => void): unknown;
  removeListener(
    event: 'notification',
    listener: (msg: { channel: string; payload?: string }) => void,
  ): unknown;
  release(): void;
}

/** Everything of a store that is not BullMQ's: the same SQL serves PostgreSQL and PGlite. */
export type ExtrasPart = Omit<
  Store,
  | 'kind'
  | 'displayUrl'
  | 'namespace'
  | 'createQueue'
  | 'createWorker'
  | 'createQueueEvents'
  | 'createEventsProducer'
  | 'createFlowProducer'
  | 'close'
> & {
  closeExtras(): Promise<void>;
};

const QUERIES = readQueries('./postgres-common.sql', import.meta.url, [
  'notify',
  'count_hit',
  'drop_expired_hits',
  'acquire_lease',
  'release_lease',
  'index_tasks',
  'trim_index',
  'task_for_celery',
  'list_tasks',
  'request_cancel',
  'drop_expired_cancels',
  'cancel_requested',
  'clear_cancel',
  'put_heartbeat',
  'remove_heartbeat',
  'drop_expired_heartbeats',
  'list_heartbeats',
  'events_lost_after',
  'events_restarted_before',
]);

/** Control channel on LISTEN/NOTIFY and heartbeats in a small table, in the store's schema. */
export async function pgExtras(pool: PgLike, schema: string): Promise<ExtrasPart> {
  const quoted = quoteSchemaName(schema);
  const sql = inSchema(QUERIES, quoted);
  await migrate(pool, schema);
  // LISTEN channels are database-wide: the schema keeps deployments (and tests) apart.
  const channels: Record<Channel, string> = { control: `aiecs_ctl_${schema}`, reply: `aiecs_rep_${schema}` };
  const handlers = new Map<string, Set<ControlHandler>>();
  let listener: Promise<PgListenerClient> | undefined;
  /** One LISTEN per channel, kept once it succeeded. */
  const listening = new Map<string, Promise<void>>();
  const onNotification = (msg: { channel: string; payload?: string }) => {
    if (msg.payload === undefined) return;
    for (const handler of handlers.get(msg.channel) ?? []) handler(msg.payload);
  };
  const listen = (name: string): Promise<void> => {
    let done = listening.get(name);
    if (!done) {
      listener ??= pool.connect().then((client) => {
        client.on('notification', onNotification);
        return client;
      });
      done = listener.then((client) => client.query(`LISTEN ${name}`)).then(() => undefined);
      listening.set(name, done);
      // A failed LISTEN (or connect) is tried again by the next subscriber.
      done.catch(() => {
        listening.delete(name);
        if (listening.size > 0) return;
        const failed = listener;
        listener = undefined;
        void failed?.then(
          (client) => client.release(),
          () => undefined,
        );
      });
    }
    return done;
  };

  return {
    async publish(message, channel = 'control') {
      await pool.query(sql.notify, [channels[channel], message]);
    },
    async subscribe(handler, channel = 'control') {
      const name = channels[channel];
      await listen(name);
      let set = handlers.get(name);
      if (!set) handlers.set(name, (set = new Set()));
      set.add(handler);
      return async () => {
        set.delete(handler);
      };
    },
    async tryHit(key, limit, windowMs) {
      const now = Date.now();
      const window = Math.floor(now / windowMs);
      // One statement: the row lock of ON CONFLICT makes concurrent hits count exactly.
      const { rows } = await pool.query(sql.count_hit, [key, window, (window + 2) * windowMs, limit]);
      if (Math.random() < 0.01) void pool.query(sql.drop_expired_hits, [now]).catch(() => undefined);
      return rows.length
        ? { ok: true, retryAfterMs: 0 }
        : { ok: false, retryAfterMs: Math.max(1, (window + 1) * windowMs - now) };
    },
    async acquireLease(key, holder, limit, leaseMs) {
      const { rows } = await pool.query(sql.acquire_lease, [key, holder, limit, Date.now(), leaseMs]);
      return rows[0]?.ok === true;
    },
    async releaseLease(key, holder) {
      await pool.query(sql.release_lease, [key, holder]);
    },
    async indexTasks(tasks) {
      if (tasks.length === 0) return;
      await pool.query(sql.index_tasks, [
        tasks.map((t) => t.task_id),
        tasks.map((t) => t.user_id),
        tasks.map((t) => t.queue),
        tasks.map((t) => t.created_at),
        tasks.map((t) => t.task_name ?? null),
        tasks.map((t) => t.mode ?? null),
        tasks.map((t) => t.service ?? null),
        tasks.map((t) => t.celery_id ?? null),
      ]);
    },
    async trimIndex(cutoffMs) {
      await pool.query(sql.trim_index, [cutoffMs]);
    },
    async taskIdForCelery(celeryId) {
      const { rows } = await pool.query(sql.task_for_celery, [celeryId]);
      return rows.length ? String(rows[0]!.task_id) : undefined;
    },
    async listTasks(userId, limit, cursor, filter = {}) {
      const after = cursor ? decodeCursor(cursor) : undefined;
      const { rows } = await pool.query(sql.list_tasks, [
        limit + 1,
        userId ?? null,
        after?.[0] ?? null,
        after?.[1] ?? null,
        filter.queue ?? null,
        filter.task_name ?? null,
        filter.mode ?? null,
        filter.service ?? null,
        filter.since ?? null,
        filter.until ?? null,
      ]);
      const items = rows.map((r) => ({
        task_id: String(r.task_id),
        user_id: String(r.user_id),
        queue: String(r.queue),
        created_at: Number(r.created_at_ms),
      }));
      return indexPage(items, limit);
    },
    async requestCancel(taskId, ttlMs) {
      const now = Date.now();
      await pool.query(sql.request_cancel, [taskId, now + ttlMs]);
      // Expired requests go when new ones come: the table stays as small as the recent cancels.
      await pool.query(sql.drop_expired_cancels, [now]);
    },
    async clearCancel(taskId) {
      await pool.query(sql.clear_cancel, [taskId]);
    },
    async cancelRequested(taskIds) {
      if (taskIds.length === 0) return [];
      const { rows } = await pool.query(sql.cancel_requested, [taskIds, Date.now()]);
      return rows.map((r) => r.task_id as string);
    },
    async putHeartbeat(beat, ttlMs) {
      await pool.query(sql.put_heartbeat, [beat.id, JSON.stringify(beat), Date.now() + ttlMs]);
    },
    async removeHeartbeat(id) {
      await pool.query(sql.remove_heartbeat, [id]);
    },
    async listHeartbeats() {
      const now = Date.now();
      await pool.query(sql.drop_expired_heartbeats, [now - 60_000]);
      const { rows } = await pool.query(sql.list_heartbeats, [now]);
      return rows.map((r) => (typeof r.beat === 'string' ? JSON.parse(r.beat) : r.beat) as WorkerHeartbeat);
    },
    async eventsLostAfter(name, position) {
      const { rows } = await pool.query(sql.events_lost_after, [name, Number(position)]);
      return rows[0]?.lost === true;
    },
    async eventsRestartedBefore(_name, position) {
      const { rows } = await pool.query(sql.events_restarted_before, [Number(position)]);
      return rows[0]?.restarted === true;
    },
    // A pool has no connection state to read: calls fail (or time out) on their own.
    isUnreachable: () => false,
    async ping() {
      await pool.query('SELECT 1');
    },
    async closeExtras() {
      handlers.clear();
      listening.clear();
      const client = await listener?.catch(() => undefined);
      listener = undefined;
      if (client) {
        client.removeListener('notification', onNotification);
        await client.query('UNLISTEN *').catch(() => undefined);
        client.release();
      }
    },
  };
}

/** How long BullMQ's waits may last on an idle store; without them, the defaults (PostgreSQL's). */
export interface IdleWaits {
  /** Longest wait between two reads of an idle event stream, ms; also QueueEvents' blocking timeout. */
  eventPollMs: number;
  /** The event readers wake on the jobs channel too (where add_jobs_bulk announces its events). */
  wakeOnJobs: boolean;
  /** A worker's longest wait for a job on an empty queue, s (BullMQ's drainDelay; default 5). */
  drainDelayS: number;
}

/** The BullMQ half of a PostgreSQL-backed store, given what to pass as `connection`. */
export function bullOnPostgres(
  connection: unknown,
  /** AIECS_EVENTS_MAX_LEN: kept in each queue's meta, where BullMQ's functions read it to trim. */
  eventsMaxLen = DEFAULT_EVENTS_MAX_LEN,
  waits?: IdleWaits,
): Pick<
  Store,
  'createQueue' | 'createWorker' | 'createQueueEvents' | 'createEventsProducer' | 'createFlowProducer'
> {
  // BullMQ's constructors are typed for Redis by default; the backend factory makes them PostgreSQL.
  const opts = { connection } as never;
  const factory = createPostgresBackend as never;
  const eventsFactory = (from?: number) =>
    ((name: string, opts: never, factoryOpts: never) =>
      readEventsInOrder(createPostgresBackend(name, opts, factoryOpts) as unknown as PgEventBackend, {
        queues: QUEUE_KINDS,
        ...(from !== undefined ? { from } : {}),
        ...(waits ? { idlePollMs: waits.eventPollMs, wakeOnJobs: waits.wakeOnJobs } : {}),
      })) as never;
  const blocking = waits ? { blockingTimeout: waits.eventPollMs } : {};
  const drain = waits ? { drainDelay: waits.drainDelayS } : {};
  return {
    createQueue: (name) => {
      const queueOpts = { connection, streams: { events: { maxLen: eventsMaxLen } } } as never;
      // A task queue's jobs are stored lean (shims/bullmq-lean-job.ts).
      return isTaskQueue(name)
        ? new LeanQueue(name, queueOpts, factory)
        : new Queue(name, queueOpts, factory);
    },
    createWorker: (name, processor, workerOpts) => {
      const all = { ...drain, ...workerOpts, connection } as never;
      return isTaskQueue(name)
        ? new LeanWorker(name, processor, all, factory)
        : new Worker(name, processor, all, factory);
    },
    createQueueEvents: (name, eventsOpts = {}) =>
      new QueueEvents(
        name,
        { connection, autorun: true, ...blocking } as never,
        eventsFactory(eventsOpts.from === undefined ? undefined : Number(eventsOpts.from)),
      ),
    createEventsProducer: (name) => new QueueEventsProducer(name, opts, factory),
    createFlowProducer: () => new FlowProducer(opts, factory),
  };
}

export function storeFrom(
  kind: StoreKind,
  displayUrl: string,
  namespace: string,
  bull: ReturnType<typeof bullOnPostgres>,
  extras: ExtrasPart,
  closeRest: () => Promise<void>,
  database: NonNullable<Store['database']>,
): Store {
  let closing: Promise<void> | undefined;
  const { closeExtras, ...control } = extras;
  return {
    kind,
    displayUrl,
    namespace,
    database,
    ...bull,
    ...control,
    close() {
      closing ??= (async () => {
        await closeExtras();
        await closeRest();
      })();
      return closing;
    },
  };
}
