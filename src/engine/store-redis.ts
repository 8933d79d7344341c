import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import { FlowProducer, Queue, QueueEvents, QueueEventsProducer, Redis, Worker } from './bullmq.js';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import { StoreUnavailableError } from '../core/errors.js';
import { coalesceWrites } from '../shims/ioredis-coalesced-writes.js';
import { RedisEventBatch } from '../shims/bullmq-redis-event-batch.js';
import { startAtStreamEnd } from '../shims/bullmq-queue-events-start.js';
import { LeanQueue, LeanWorker, isTaskQueue, withTaskName } from '../shims/bullmq-lean-job.js';
import { readScript } from '../core/script-files.js';
import { checkRedisSchema } from './redis-schema.js';
import { redisTaskIndex } from './redis-task-index.js';
import type { ResolvedStoreOptions, Store, WorkerHeartbeat } from './store.js';
import {
  BROKER_HINT,
  DEFAULT_EVENTS_MAX_LEN,
  DEFAULT_STORE_TIMEOUT_MS,
  checkNamespace,
  redactUrl,
} from './store.js';

// Our scripts, in ./lua: read once, when the store module loads.
const ACQUIRE_LEASE = readScript('./lua/acquire-lease.lua', import.meta.url);
const TRY_HIT = readScript('./lua/try-hit.lua', import.meta.url);
const READ_JOB_SUMMARIES = readScript('./lua/read-job-summaries.lua', import.meta.url);

/**
 * Workers wait for Redis forever; producers are told at once that it is down. A producer's
 * command is never kept for later: not queued while Redis is away, and not sent again after a
 * reconnect (maxRetriesPerRequest 0), so a submit refused now does not land later.
 */
function clientOptions(role: 'producer' | 'worker' | 'blocking', timeoutMs: number): RedisOptions {
  const base: RedisOptions = { connectTimeout: timeoutMs, lazyConnect: false };
  if (role === 'producer') {
    return {
      ...base,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (n) => Math.min(n * 200, 2_000),
    };
  }
  return {
    ...base,
    maxRetriesPerRequest: null,
    retryStrategy: (n) => Math.min(1_000 * 2 ** Math.min(n, 4), 20_000),
  };
}

/**
 * Resolves once the client is ready, trying for `timeoutMs` (Redis may be starting beside us);
 * then fails with what the last attempt met (a refused connection, an unknown host, …).
 */
async function connected(client: RedisClient, url: string, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    let last: Error | undefined;
    const fail = () => {
      cleanup();
      const why = last ? ` (${last.message})` : '';
      reject(
        new StoreUnavailableError(
          `cannot reach Redis at ${redactUrl(url)} within ${timeoutMs} ms${why}; ${BROKER_HINT}`,
        ),
      );
    };
    const timer = setTimeout(fail, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      last = error;
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
    };
    client.on('ready', onReady);
    client.on('error', onError);
  });
}

/** Orders two stream ids (`ms-seq`): negative, zero or positive. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map((part) => BigInt(part));
  const [bm = 0n, bs = 0n] = b.split('-').map((part) => BigInt(part));
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}

export async function openRedisStore(url: string, options: ResolvedStoreOptions): Promise<Store> {
  const namespace = checkNamespace(options.namespace ?? 'aiecs');
  const role = options.role ?? 'producer';
  const timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const log = options.logger;
  const clients: RedisClient[] = [];
  const newClient = (kind: 'producer' | 'worker' | 'blocking') => {
    const client = new Redis(url, clientOptions(kind, timeoutMs));
    // ioredis reports every failed reconnect; one line per outage is enough. Before the first
    // ready there is no outage to report: opening fails with its own error (one line in the CLI).
    let down = true;
    client.on('error', (error: Error) => {
      if (!down)
        log.warn({ err: error.message, store: redactUrl(url) }, 'Redis connection error; reconnecting');
      down = true;
    });
    client.on('ready', () => (down = false));
    // Every (re)connect brings a new socket.
    client.on('connect', () => coalesceWrites(client.stream));
    clients.push(client);
    return client;
  };

  const command = newClient(role === 'producer' ? 'producer' : 'worker');
  const subscriber = newClient('blocking');
  try {
    await connected(command, url, timeoutMs);
    await checkRedisSchema(command, namespace);
  } catch (error) {
    clients.forEach((c) => c.disconnect());
    throw error;
  }

  try {
    const policy = (await command.config('GET', 'maxmemory-policy')) as string[];
    if (policy[1] && policy[1] !== 'noeviction') {
      log.warn(
        { policy: policy[1] },
        'Redis maxmemory-policy is not noeviction: Redis may evict queue keys under memory pressure and lose tasks',
      );
    }
  } catch {
    // CONFIG may be disabled on managed Redis; nothing to check then.
  }

  const controlChannel = `${namespace}:aiecs:control`;
  const replyChannel = `${namespace}:aiecs:reply`;
  /** Subscriptions per channel: the last one to go unsubscribes. */
  const listening = new Map<string, number>();
  const beatPrefix = `${namespace}:aiecs:worker:`;
  const limitPrefix = `${namespace}:aiecs:limit:`;
  const cancelPrefix = `${namespace}:aiecs:cancel:`;
  const bull = { connection: command, prefix: namespace };
  const eventsMaxLen = options.eventsMaxLen ?? DEFAULT_EVENTS_MAX_LEN;
  // Workers and QueueEvents block on their connection: each gets its own, with worker options.
  const blockingConnection = () => ({ prefix: namespace, connection: newClient('worker') });

  const index = redisTaskIndex(command, namespace);

  let closed = false;
  return {
    kind: 'redis',
    displayUrl: redactUrl(url),
    namespace,
    createQueue: (name) => {
      const opts = { ...bull, streams: { events: { maxLen: eventsMaxLen } } };
      // A task queue's jobs are stored lean (shims/bullmq-lean-job.ts).
      return isTaskQueue(name) ? new LeanQueue(name, opts) : new Queue(name, opts);
    },
    createWorker: (name, processor, opts) => {
      const all = { ...opts, ...blockingConnection() };
      return isTaskQueue(name) ? new LeanWorker(name, processor, all) : new Worker(name, processor, all);
    },
    createQueueEvents: (name, opts = {}) =>
      opts.from === undefined
        ? startAtStreamEnd(new QueueEvents(name, { ...blockingConnection(), autorun: false }), command)
        : // An explicit id: XREAD starts after it, whenever its first read happens.
          new QueueEvents(name, { ...blockingConnection(), lastEventId: opts.from }),
    async eventsLostAfter(name, position) {
      // Entries after the position are gone when the stream's first entry is past it and the
      // stream has dropped entries (MAXLEN trims from the oldest; XDEL shows in max-deleted).
      const info = (await command.xinfo('STREAM', `${namespace}:${name}:events`).catch(() => null)) as
        unknown[] | null;
      if (!info) return false;
      const field = (key: string) => (info.includes(key) ? info[info.indexOf(key) + 1] : undefined);
      const deleted = field('max-deleted-entry-id');
      if (typeof deleted === 'string' && compareStreamIds(deleted, position) > 0) return true;
      const first = field('first-entry') as [string, unknown] | null | undefined;
      const added = field('entries-added');
      const dropped = added === undefined || Number(added) > Number(field('length'));
      return first != null && compareStreamIds(first[0], position) > 0 && dropped;
    },
    async eventsRestartedBefore(name, position) {
      const info = (await command.xinfo('STREAM', `${namespace}:${name}:events`).catch(() => null)) as
        unknown[] | null;
      if (!info) return true;
      const i = info.indexOf('last-generated-id');
      const last = i >= 0 ? info[i + 1] : undefined;
      return typeof last === 'string' && compareStreamIds(last, position) < 0;
    },
    async readJobSummaries(name, ids) {
      if (ids.length === 0) return [];
      // One script call for the batch, not an HMGET each: a command's cost in ioredis (about 4 µs
      // per task for the history) is more than the script adds on the server (about 1 µs).
      const replies = (await command.eval(
        READ_JOB_SUMMARIES,
        ids.length,
        ...ids.map((id) => `${namespace}:${name}:${id}`),
      )) as Array<Array<string | null>>;
      return ids.map((id, i) => {
        // BullMQ's job hash fields: ats is attemptsStarted, pb processedBy, parent {id, queueKey};
        // a task's name is its job's (bullmq-lean-job.ts).
        const [data, timestamp, ats, pb, parent, jobName] = replies[i] ?? [];
        if (data === null || data === undefined) return undefined;
        const parentId = parent ? (JSON.parse(parent) as { id?: string }).id : undefined;
        return {
          id,
          data: withTaskName(JSON.parse(data), jobName ?? ''),
          timestamp: Number(timestamp),
          attemptsStarted: Number(ats ?? 0),
          ...(pb ? { processedBy: pb } : {}),
          ...(parentId !== undefined ? { parentId } : {}),
        };
      });
    },
    createEventsProducer: (name) => new QueueEventsProducer(name, bull),
    createFlowProducer: () => new FlowProducer(bull),
    createEventWriter: (name) => new RedisEventBatch(command, `${namespace}:${name}:`),

    async publish(message, channel = 'control') {
      await command.publish(channel === 'control' ? controlChannel : replyChannel, message);
    },
    async subscribe(handler, channel = 'control') {
      const name = channel === 'control' ? controlChannel : replyChannel;
      const listener = (from: string, message: string) => {
        if (from === name) handler(message);
      };
      subscriber.on('message', listener);
      listening.set(name, (listening.get(name) ?? 0) + 1);
      await subscriber.subscribe(name);
      return async () => {
        subscriber.off('message', listener);
        const left = (listening.get(name) ?? 1) - 1;
        listening.set(name, left);
        if (left === 0 && !closed) await subscriber.unsubscribe(name);
      };
    },

    async tryHit(key, limit, windowMs) {
      const window = Math.floor(Date.now() / windowMs);
      const [ok, ttl] = (await command.eval(
        TRY_HIT,
        1,
        `${limitPrefix}hit:${key}:${window}`,
        limit,
        windowMs,
      )) as [number, number];
      return { ok: ok === 1, retryAfterMs: ok === 1 ? 0 : Math.max(1, ttl) };
    },
    async acquireLease(key, holder, limit, leaseMs) {
      const ok = await command.eval(
        ACQUIRE_LEASE,
        1,
        `${limitPrefix}lease:${key}`,
        Date.now(),
        limit,
        leaseMs,
        holder,
      );
      return ok === 1;
    },
    async releaseLease(key, holder) {
      await command.zrem(`${limitPrefix}lease:${key}`, holder);
    },

    ...index,

    async clearCancel(taskId) {
      await command.del(`${cancelPrefix}${taskId}`);
    },
    async requestCancel(taskId, ttlMs) {
      await command.set(`${cancelPrefix}${taskId}`, '1', 'PX', ttlMs);
    },
    async cancelRequested(taskIds) {
      if (taskIds.length === 0) return [];
      const values = await command.mget(...taskIds.map((id) => `${cancelPrefix}${id}`));
      return taskIds.filter((_, i) => values[i] !== null);
    },
    async putHeartbeat(beat, ttlMs) {
      await command.set(beatPrefix + beat.id, JSON.stringify(beat), 'PX', ttlMs);
    },
    async removeHeartbeat(id) {
      await command.del(beatPrefix + id);
    },
    async listHeartbeats() {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await command.scan(cursor, 'MATCH', `${beatPrefix}*`, 'COUNT', 200);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      if (keys.length === 0) return [];
      const values = await command.mget(...keys);
      return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as WorkerHeartbeat);
    },

    isUnreachable: () => command.status !== 'ready',
    async ping() {
      await command.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      // quit() waits forever on a client still reconnecting to a Redis that went away.
      await settleWithin(Promise.allSettled(clients.map((c) => c.quit())), CLOSE_DEADLINE_MS);
      clients.forEach((c) => c.disconnect());
    },
  };
}
