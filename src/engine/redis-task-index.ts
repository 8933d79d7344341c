/**
 * The task index on Redis: per namespace a list of every task (`tasks:all`) and one per user
 * (`tasks:user:<id>`), oldest first, appended at submit, trimmed from the head by retention and
 * listed newest first with cursor paging. Positions in a list shift as its head is trimmed, so a
 * counter beside each list (`tasks-trimmed:<name>`) keeps the positions in cursors absolute.
 * Celery aliases (IndexedTask.celery_id) are a hash (`celery-tasks`: Celery id → task id) with a
 * sorted set of their creation times beside it (`celery-tasks-at`), trimmed with the lists. The
 * scripts live in ./lua.
 */
import type { Redis as RedisClient } from 'ioredis';
import { StoreUnavailableError } from '../core/errors.js';
import { readScript } from '../core/script-files.js';
import type { IndexFilter, IndexedTask, Store, TaskPage } from './store.js';
import { INDEX_SCAN_BUDGET, decodeCursor, encodeCursor, hasIndexFilter } from './store.js';

// Read once, when the module loads.
const LIST_TASKS = readScript('./lua/list-tasks.lua', import.meta.url);
const TRIM_INDEX = readScript('./lua/trim-index.lua', import.meta.url);
const INDEX_TASKS = readScript('./lua/index-tasks.lua', import.meta.url);
const LIST_FILTERED = readScript('./lua/list-filtered.lua', import.meta.url);
const TRIM_CELERY_ALIASES = readScript('./lua/trim-celery-aliases.lua', import.meta.url);

/** Index entries per RPUSH or script call: bounds one command for a huge batch (and Lua's unpack). */
const INDEX_CHUNK = 1_000;

type IndexScripts = {
  aiecsListFiltered(
    list: string,
    trimmed: string,
    ...args: Array<string | number>
  ): Promise<[number, Array<number | string>, number, string | null, string | null]>;
  aiecsIndexTasks(all: string, own: string, ...entries: string[]): Promise<number>;
  aiecsListTasks(list: string, trimmed: string, limit: number, at: string): Promise<[number, string[]]>;
  aiecsTrimIndex(list: string, trimmed: string, cutoffMs: number, rounds: number): Promise<number>;
  aiecsTrimCeleryAliases(aliases: string, times: string, cutoffMs: number, limit: number): Promise<number>;
};

export type TaskIndex = Pick<Store, 'indexTasks' | 'trimIndex' | 'listTasks' | 'taskIdForCelery'>;

/** The index of `namespace` on `command` (a non-blocking connection), for the Redis store. */
export function redisTaskIndex(command: RedisClient, namespace: string): TaskIndex {
  // New names, not the old sorted sets' `index:*`: an older deployment's keys never meet a list command.
  const tasksPrefix = `${namespace}:aiecs:tasks:`;
  // Not under `tasks:`, so the SCAN for `tasks:user:*` finds lists only.
  const trimmedPrefix = `${namespace}:aiecs:tasks-trimmed:`;
  const aliasKey = `${namespace}:aiecs:celery-tasks`;
  const aliasTimesKey = `${namespace}:aiecs:celery-tasks-at`;

  // EVALSHA after the first call: the scripts are not sent with every call.
  command.defineCommand('aiecsListTasks', { numberOfKeys: 2, lua: LIST_TASKS });
  command.defineCommand('aiecsTrimIndex', { numberOfKeys: 2, lua: TRIM_INDEX });
  command.defineCommand('aiecsIndexTasks', { numberOfKeys: 2, lua: INDEX_TASKS });
  command.defineCommand('aiecsListFiltered', { numberOfKeys: 2, lua: LIST_FILTERED });
  command.defineCommand('aiecsTrimCeleryAliases', { numberOfKeys: 2, lua: TRIM_CELERY_ALIASES });
  const scripts = command as unknown as IndexScripts;
  /** A pipeline that also takes the index scripts (ioredis types defined commands on no client). */
  const indexPipeline = () =>
    command.pipeline() as unknown as IndexScripts & ReturnType<RedisClient['pipeline']>;

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

  /** Trims these index lists (names after `tasks:`), one pipelined script call per key per pass. */
  async function trimLists(names: string[], cutoffMs: number): Promise<void> {
    let pending = names;
    while (pending.length) {
      const pipeline = indexPipeline();
      for (const name of pending)
        pipeline.aiecsTrimIndex(tasksPrefix + name, trimmedPrefix + name, cutoffMs, 100);
      const more = execResults(await pipeline.exec());
      pending = pending.filter((_, i) => more[i] === 1);
    }
  }

  /** Writes the Celery aliases of these tasks (each has one), hash and times together. */
  async function aliasCeleryIds(aliased: IndexedTask[]): Promise<void> {
    const multi = command.multi();
    for (let i = 0; i < aliased.length; i += INDEX_CHUNK) {
      const chunk = aliased.slice(i, i + INDEX_CHUNK);
      multi.hset(aliasKey, ...chunk.flatMap((t) => [t.celery_id!, t.task_id]));
      multi.zadd(aliasTimesKey, ...chunk.flatMap((t) => [t.created_at, t.celery_id!]));
    }
    execResults(await multi.exec());
  }

  /** Appends the entries to the list of all tasks and to each user's. */
  async function appendEntries(tasks: IndexedTask[]): Promise<void> {
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
  }

  return {
    async indexTasks(tasks) {
      if (tasks.length === 0) return;
      // A submit issues its entries beside its add, on this same connection, whose first write of a
      // turn goes out at once (shims/ioredis-coalesced-writes.ts): the add, on the task's path,
      // should be it. Issued first, the entries went out first and the add some 85 µs later (p50
      // over 1,500 sequential submits); a tick runs once the turn's promise reactions, the add's
      // way to its write among them, have run.
      await new Promise<void>((resolve) => process.nextTick(resolve));
      // Only bridged tasks under another id have an alias: every other submit appends alone.
      const aliased = tasks.filter((t) => t.celery_id !== undefined);
      if (aliased.length === 0) return appendEntries(tasks);
      await Promise.all([appendEntries(tasks), aliasCeleryIds(aliased)]);
    },
    async trimIndex(cutoffMs) {
      await trimLists(['all'], cutoffMs);
      let more = 1;
      while (more === 1)
        more = await scripts.aiecsTrimCeleryAliases(aliasKey, aliasTimesKey, cutoffMs, INDEX_CHUNK);
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
    async taskIdForCelery(celeryId) {
      return (await command.hget(aliasKey, celeryId)) ?? undefined;
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
