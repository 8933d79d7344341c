import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import { Queue, QueueEvents, QueueEventsProducer, Redis, Worker } from './bullmq.js';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import { StoreUnavailableError } from '../core/errors.js';
import { coalesceWrites } from '../shims/ioredis-coalesced-writes.js';
import { RedisEventBatch } from '../shims/bullmq-redis-event-batch.js';
import { startAtStreamEnd } from '../shims/bullmq-queue-events-start.js';
import { readScript } from '../core/script-files.js';
import { checkRedisSchema } from './redis-schema.js';
import type {
  IndexFilter,
  IndexedTask,
  ResolvedStoreOptions,
  Store,
  TaskPage,
  WorkerHeartbeat,
} from './store.js';
import {
  INDEX_SCAN_BUDGET,
  hasIndexFilter,
  BROKER_HINT,
  DEFAULT_STORE_TIMEOUT_MS,
  checkNamespace,
  decodeCursor,
  encodeCursor,
  redactUrl,
} from './store.js';

// Our scripts, in ./lua: read once, when the store module loads.
const ACQUIRE_LEASE = readScript('./lua/acquire-lease.lua', import.meta.url);
const TRY_HIT = readScript('./lua/try-hit.lua', import.meta.url);
const LIST_TASKS = readScript('./lua/list-tasks.lua', import.meta.url);
const TRIM_INDEX = readScript('./lua/trim-index.lua', import.meta.url);
const INDEX_TASKS = readScript('./lua/index-tasks.lua', import.meta.url);
const LIST_FILTERED = readScript('./lua/list-filtered.lua', import.meta.url);

/** Index entries per RPUSH or script call: bounds one command for a huge batch (and Lua's unpack). */
const INDEX_CHUNK = 1_000;

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
  // New names, not the old sorted sets' `index:*`: an older deployment's keys never meet a list command.
  const tasksPrefix = `${namespace}:aiecs:tasks:`;
  // Not under `tasks:`, so the SCAN for `tasks:user:*` finds lists only.
  const trimmedPrefix = `${namespace}:aiecs:tasks-trimmed:`;
  const cancelPrefix = `${namespace}:aiecs:cancel:`;
  const bull = { connection: command, prefix: namespace };
  // Workers and QueueEvents block on their connection: each gets its own, with worker options.
  const blockingConnection = () => ({ prefix: namespace, connection: newClient('worker') });

  // EVALSHA after the first call: the scripts are not sent with every call.
  command.defineCommand('aiecsListTasks', { numberOfKeys: 2, lua: LIST_TASKS });
  command.defineCommand('aiecsTrimIndex', { numberOfKeys: 2, lua: TRIM_INDEX });
  command.defineCommand('aiecsIndexTasks', { numberOfKeys: 2, lua: INDEX_TASKS });
  command.defineCommand('aiecsListFiltered', { numberOfKeys: 2, lua: LIST_FILTERED });
  type IndexScripts = {
    aiecsListFiltered(
      list: string,
      trimmed: string,
      ...args: Array<string | number>
    ): Promise<[number, Array<number | string>, number, string | null, string | null]>;
    aiecsIndexTasks(all: string, own: string, ...entries: string[]): Promise<number>;
    aiecsListTasks(list: string, trimmed: string, limit: number, at: string): Promise<[number, string[]]>;
    aiecsTrimIndex(list: string, trimmed: string, cutoffMs: number, rounds: number): Promise<number>;
  };
  const scripts = command as unknown as IndexScripts;

  /** A filtered page: the script scans a bounded stretch and says where it stopped. */
  async function listFiltered(
    name: string,
    limit: number,
    after: [number, string] | undefined,
    filter: IndexFilter,
  ): Promise<TaskPage> {
    const [trimmed, found, lastPos, lastEntry, own] = await scripts.aiecsListFiltered(
      tasksPrefix + name,
      trimmedPrefix + name,
      limit,
      after ? String(after[0]) : '',
      INDEX_SCAN_BUDGET,
      filter.queue ?? '',
      filter.task_name ?? '',
      filter.mode ?? '',
      filter.service ?? '',
      filter.since ?? '',
      filter.until ?? '',
    );
    // The cursor's own entry must still be there: see listTasks.
    if (after && (own === null || parseIndexEntry(own).task_id !== after[1])) return { items: [] };
    const items: IndexedTask[] = [];
    for (let i = 0; i + 1 < found.length && items.length < limit; i += 2) {
      const item = parseIndexEntry(String(found[i + 1]));
      items.push(item);
      if (items.length === limit && found.length > 2 * limit)
        return { items, next_cursor: encodeCursor(trimmed + Number(found[i]), item.task_id) };
    }
    // Read its budget before a full page: go on from the last entry read.
    if (lastPos >= 0 && lastEntry !== null)
      return { items, next_cursor: encodeCursor(trimmed + lastPos, parseIndexEntry(lastEntry).task_id) };
    return { items };
  }
  /** A pipeline that also takes the index scripts (ioredis types defined commands on no client). */
  const indexPipeline = () =>
    command.pipeline() as unknown as IndexScripts & ReturnType<RedisClient['pipeline']>;
  /** Trims these index lists (names after `tasks:`), one pipelined script call per key per pass. */
  const trimLists = async (names: string[], cutoffMs: number) => {
    let pending = names;
    while (pending.length) {
      const pipeline = indexPipeline();
      for (const name of pending)
        pipeline.aiecsTrimIndex(tasksPrefix + name, trimmedPrefix + name, cutoffMs, 100);
      const more = execResults(await pipeline.exec());
      pending = pending.filter((_, i) => more[i] === 1);
    }
  };

  let closed = false;
  return {
    kind: 'redis',
    displayUrl: redactUrl(url),
    namespace,
    createQueue: (name) => new Queue(name, bull),
    createWorker: (name, processor, opts) =>
      new Worker(name, processor, { ...opts, ...blockingConnection() }),
    createQueueEvents: (name) =>
      startAtStreamEnd(new QueueEvents(name, { ...blockingConnection(), autorun: false }), command),
    createEventsProducer: (name) => new QueueEventsProducer(name, bull),
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

    async indexTasks(tasks) {
      if (tasks.length === 0) return;
      const entries = tasks.map(indexEntry);
      const owner = tasks[0]!.user_id;
      const oneUser = tasks.every((t) => t.user_id === owner);
      const all = `${tasksPrefix}all`;
      // A pipeline object copies every script defined on the connection (BullMQ's, some 65):
      // a lone call, every single submit's, goes without one.
      if (entries.length <= INDEX_CHUNK && oneUser) {
        await scripts.aiecsIndexTasks(all, `${tasksPrefix}user:${owner}`, ...entries);
        return;
      }
      const pipeline = indexPipeline();
      if (oneUser) {
        // One user (every single submit, most batches): each entry crosses the wire once, and the
        // script appends it to both lists.
        for (let i = 0; i < entries.length; i += INDEX_CHUNK)
          pipeline.aiecsIndexTasks(all, `${tasksPrefix}user:${owner}`, ...entries.slice(i, i + INDEX_CHUNK));
      } else {
        // Appended in arrival order, one variadic RPUSH per key (and chunk), all in one round trip.
        const byUser = new Map<string, string[]>();
        for (const [i, t] of tasks.entries()) {
          let own = byUser.get(t.user_id);
          if (!own) byUser.set(t.user_id, (own = []));
          own.push(entries[i]!);
        }
        const push = (key: string, list: string[]) => {
          for (let i = 0; i < list.length; i += INDEX_CHUNK)
            pipeline.rpush(key, ...list.slice(i, i + INDEX_CHUNK));
        };
        push(all, entries);
        for (const [user, own] of byUser) push(`${tasksPrefix}user:${user}`, own);
      }
      execResults(await pipeline.exec());
    },
    async trimIndex(cutoffMs) {
      await trimLists(['all'], cutoffMs);
      // Users' own lists too: SCAN walks them in pages without blocking Redis.
      let cursor = '0';
      do {
        const [next, keys] = await command.scan(cursor, 'MATCH', `${tasksPrefix}user:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length)
          await trimLists(
            keys.map((k) => k.slice(tasksPrefix.length)),
            cutoffMs,
          );
      } while (cursor !== '0');
    },
    async listTasks(userId, limit, cursor, filter) {
      const name = userId === undefined ? 'all' : `user:${userId}`;
      const decoded = cursor ? decodeCursor(cursor) : undefined;
      // A cursor that is not one of ours reads as none, as a malformed one does: the first page.
      const after = decoded && Number.isSafeInteger(decoded[0]) && decoded[0] >= 0 ? decoded : undefined;
      if (hasIndexFilter(filter)) return listFiltered(name, limit, after, filter);
      const [first, entries] = await scripts.aiecsListTasks(
        tasksPrefix + name,
        trimmedPrefix + name,
        limit,
        after ? String(after[0]) : '',
      );
      if (after) {
        // The last entry is the cursor's own: another task there means the positions restarted
        // (the list was emptied by trimming and refilled), so nothing older is left to list.
        const own = entries.pop();
        if (own === undefined || parseIndexEntry(own).task_id !== after[1]) return { items: [] };
      }
      const items = entries.map(parseIndexEntry).reverse().slice(0, limit);
      const oldest = items[items.length - 1];
      // Positions count up from the head: the oldest item returned is first + what was read past it.
      return entries.length > limit && oldest
        ? { items, next_cursor: encodeCursor(first + entries.length - limit, oldest.task_id) }
        : { items };
    },

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

/** A pipeline's replies; throws the first command's error (exec reports them, it does not throw). */
function execResults(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (!results) throw new StoreUnavailableError('Redis pipeline was not run');
  for (const [error] of results) if (error) throw error;
  return results.map(([, value]) => value);
}

/**
 * `created_at|queue:task_name:mode:service|task_id|user_id`: queue names and task ids hold no `|`
 * and names no `:` (they are identifiers), so the user id, last, may hold anything. Cheaper to
 * build and read than JSON, at thousands of submits a second. Entries written before the labels
 * have the queue alone in the second field.
 */
function indexEntry(t: IndexedTask): string {
  const labels = t.task_name === undefined ? t.queue : `${t.queue}:${t.task_name}:${t.mode}:${t.service}`;
  return `${t.created_at}|${labels}|${t.task_id}|${t.user_id}`;
}

function parseIndexEntry(entry: string): IndexedTask {
  const first = entry.indexOf('|');
  const second = entry.indexOf('|', first + 1);
  const third = entry.indexOf('|', second + 1);
  const [queue, task_name, mode, service] = entry.slice(first + 1, second).split(':');
  return {
    task_id: entry.slice(second + 1, third),
    user_id: entry.slice(third + 1),
    queue: queue!,
    created_at: Number(entry.slice(0, first)),
    ...(task_name !== undefined ? { task_name, mode: mode!, service: service! } : {}),
  };
}
