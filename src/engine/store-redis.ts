import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import { Queue, QueueEvents, QueueEventsProducer, Redis, Worker } from './bullmq.js';
import { CLOSE_DEADLINE_MS, settleWithin } from '../core/deadline.js';
import { StoreUnavailableError } from '../core/errors.js';
import { RedisEventBatch } from './redis-event-batch.js';
import type { IndexedTask, ResolvedStoreOptions, Store, WorkerHeartbeat } from './store.js';
import { checkNamespace, decodeCursor, indexPage, redactUrl } from './store.js';

const CONNECT_TIMEOUT_MS = 5_000;

// Leases are a sorted set scored by expiry: drop the expired, renew or add if there is room.
const ACQUIRE_LEASE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local expires = tonumber(ARGV[1]) + tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  redis.call('ZADD', KEYS[1], expires, ARGV[4])
elseif redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
else
  redis.call('ZADD', KEYS[1], expires, ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

const TRY_HIT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return {0, redis.call('PTTL', KEYS[1])} end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, 0}`;

// One user's batch of index entries, packed as "<created_at> <queue> <task_id>;" each: one
// argument instead of four per task, which ioredis would otherwise encode one by one.
const INDEX_ONE_USER = `
local user = ARGV[2]
local args = {}
local n = 0
for score, queue, id in string.gmatch(ARGV[1], '(%d+) (%S+) ([^;]+);') do
  args[n + 1] = score
  args[n + 2] = queue .. '|' .. id .. '|' .. user
  n = n + 2
  if n >= 1000 then
    redis.call('ZADD', KEYS[1], unpack(args, 1, n))
    redis.call('ZADD', KEYS[2], unpack(args, 1, n))
    n = 0
  end
end
if n > 0 then
  redis.call('ZADD', KEYS[1], unpack(args, 1, n))
  redis.call('ZADD', KEYS[2], unpack(args, 1, n))
end
return 1`;

/** Workers wait for Redis forever; producers are told at once that it is down. */
function clientOptions(role: 'producer' | 'worker' | 'blocking'): RedisOptions {
  const base: RedisOptions = { connectTimeout: CONNECT_TIMEOUT_MS, lazyConnect: false };
  if (role === 'producer') {
    return {
      ...base,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (n) => Math.min(n * 200, 2_000),
    };
  }
  return {
    ...base,
    maxRetriesPerRequest: null,
    retryStrategy: (n) => Math.min(1_000 * 2 ** Math.min(n, 4), 20_000),
  };
}

async function connected(client: RedisClient, url: string): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new StoreUnavailableError(`cannot reach Redis at ${redactUrl(url)} within ${CONNECT_TIMEOUT_MS} ms`),
      );
    }, CONNECT_TIMEOUT_MS);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

export async function openRedisStore(url: string, options: ResolvedStoreOptions): Promise<Store> {
  const namespace = checkNamespace(options.namespace ?? 'aiecs');
  const role = options.role ?? 'producer';
  const log = options.logger;
  const clients: RedisClient[] = [];
  const newClient = (kind: 'producer' | 'worker' | 'blocking') => {
    const client = new Redis(url, clientOptions(kind));
    // ioredis reports every failed reconnect; one line per outage is enough.
    let down = false;
    client.on('error', (error: Error) => {
      if (!down)
        log.warn({ err: error.message, store: redactUrl(url) }, 'Redis connection error; reconnecting');
      down = true;
    });
    client.on('ready', () => (down = false));
    clients.push(client);
    return client;
  };

  const command = newClient(role === 'producer' ? 'producer' : 'worker');
  const subscriber = newClient('blocking');
  try {
    await connected(command, url);
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
  const beatPrefix = `${namespace}:aiecs:worker:`;
  const limitPrefix = `${namespace}:aiecs:limit:`;
  const indexPrefix = `${namespace}:aiecs:index:`;
  const cancelPrefix = `${namespace}:aiecs:cancel:`;
  const bull = { connection: command, prefix: namespace };
  // Workers and QueueEvents block on their connection: each gets its own, with worker options.
  const blockingConnection = () => ({ prefix: namespace, connection: newClient('worker') });

  // EVALSHA after the first call: the script is not sent with every batch.
  command.defineCommand('aiecsIndexOneUser', { numberOfKeys: 2, lua: INDEX_ONE_USER });
  const indexOneUser = (
    command as unknown as {
      aiecsIndexOneUser(all: string, own: string, packed: string, user: string): Promise<number>;
    }
  ).aiecsIndexOneUser.bind(command);

  let closed = false;
  return {
    kind: 'redis',
    displayUrl: redactUrl(url),
    namespace,
    createQueue: (name) => new Queue(name, bull),
    createWorker: (name, processor, opts) =>
      new Worker(name, processor, { ...opts, ...blockingConnection() }),
    createQueueEvents: (name) => {
      // BullMQ starts reading at '$' whenever its first read happens, which may be after
      // waitUntilReady: events in between were lost. Start instead at the stream's last entry as
      // it is now, and be ready only once that point is fixed.
      const events = new QueueEvents(name, { ...blockingConnection(), autorun: false });
      const started = fixStartingPoint(command, events.keys.events!, () => Boolean(events.closing)).then(
        (from) => {
          if (events.closing || from === undefined) return;
          (events.opts as { lastEventId?: string }).lastEventId = from;
          events.run().catch((error: Error) => events.emit('error', error));
        },
      );
      const ready = events.waitUntilReady.bind(events);
      events.waitUntilReady = async () => {
        await started;
        return ready();
      };
      return events;
    },
    createEventsProducer: (name) => new QueueEventsProducer(name, bull),
    createEventWriter: (name) => new RedisEventBatch(command, `${namespace}:${name}:`),

    async publish(message) {
      await command.publish(controlChannel, message);
    },
    async subscribe(handler) {
      const listener = (channel: string, message: string) => {
        if (channel === controlChannel) handler(message);
      };
      subscriber.on('message', listener);
      await subscriber.subscribe(controlChannel);
      return async () => {
        subscriber.off('message', listener);
        if (subscriber.listenerCount('message') === 0 && !closed)
          await subscriber.unsubscribe(controlChannel);
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
      const user = tasks[0]!.user_id;
      // A batch of one user's tasks (the usual case: a submit, an HTTP batch) goes as one string.
      if (tasks.every((t) => t.user_id === user)) {
        let packed = '';
        for (const t of tasks) packed += `${t.created_at} ${t.queue} ${t.task_id};`;
        await indexOneUser(`${indexPrefix}all`, `${indexPrefix}user:${user}`, packed, user);
        return;
      }
      // ZADD is variadic: one command per key per batch, not two per task.
      const all: Array<number | string> = [];
      const byUser = new Map<string, Array<number | string>>();
      for (const t of tasks) {
        const member = indexMember(t);
        all.push(t.created_at, member);
        let list = byUser.get(t.user_id);
        if (!list) byUser.set(t.user_id, (list = []));
        list.push(t.created_at, member);
      }
      const pipeline = command.pipeline();
      pipeline.zadd(`${indexPrefix}all`, ...all);
      for (const [owner, list] of byUser) pipeline.zadd(`${indexPrefix}user:${owner}`, ...list);
      await pipeline.exec();
    },
    async trimIndex(cutoffMs) {
      const max = `(${cutoffMs}`;
      await command.zremrangebyscore(`${indexPrefix}all`, '-inf', max);
      // Users' own indexes too: SCAN walks them in pages without blocking Redis.
      let cursor = '0';
      do {
        const [next, keys] = await command.scan(cursor, 'MATCH', `${indexPrefix}user:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) {
          const pipeline = command.pipeline();
          for (const key of keys) pipeline.zremrangebyscore(key, '-inf', max);
          await pipeline.exec();
        }
      } while (cursor !== '0');
    },
    async listTasks(userId, limit, cursor) {
      const key = userId === undefined ? `${indexPrefix}all` : `${indexPrefix}user:${userId}`;
      const after = cursor ? decodeCursor(cursor) : undefined;
      const items: IndexedTask[] = [];
      let max = after ? String(after[0]) : '+inf';
      let skipping = after !== undefined;
      // Same-score members come back in reverse lexical order: skip up to and including the cursor's.
      for (let round = 0; round < 20 && items.length <= limit; round++) {
        const batch = await command.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 50);
        if (batch.length === 0) break;
        for (let i = 0; i < batch.length; i += 2) {
          const { task_id: taskId, user_id: user, queue } = parseIndexMember(batch[i]!);
          const createdAt = Number(batch[i + 1]);
          if (skipping) {
            if (createdAt < after![0]) skipping = false;
            else {
              if (taskId === after![1]) skipping = false;
              continue;
            }
          }
          items.push({ task_id: taskId, user_id: user, queue, created_at: createdAt });
          if (items.length > limit) break;
        }
        const lastScore = Number(batch[batch.length - 1]);
        if (batch.length < (limit + 50) * 2) break;
        max = String(lastScore);
      }
      return indexPage(items, limit);
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

/**
 * The id of the stream's last entry ('0-0' when it is empty), where a reader starts. While Redis
 * is away it keeps asking: starting at '$' instead would skip whatever is added between Redis
 * coming back and the reader's first read. Undefined once the reader is closing.
 */
async function fixStartingPoint(
  command: RedisClient,
  key: string,
  closing: () => boolean,
): Promise<string | undefined> {
  for (let attempt = 1; !closing(); attempt++) {
    try {
      const entries = await command.xrevrange(key, '+', '-', 'COUNT', 1);
      return entries[0]?.[0] ?? '0-0';
    } catch {
      await new Promise((resolve) => setTimeout(resolve, Math.min(200 * attempt, 2_000)));
    }
  }
  return undefined;
}

/**
 * `queue|task_id|user_id`: queue names and task ids hold no `|`, so the user id, last, may hold
 * anything. Cheaper to build and read than JSON, at thousands of submits a second.
 */
function indexMember(t: IndexedTask): string {
  return `${t.queue}|${t.task_id}|${t.user_id}`;
}

function parseIndexMember(member: string): Omit<IndexedTask, 'created_at'> {
  const first = member.indexOf('|');
  const second = member.indexOf('|', first + 1);
  return {
    queue: member.slice(0, first),
    task_id: member.slice(first + 1, second),
    user_id: member.slice(second + 1),
  };
}
