import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { TaskFailedError } from '../src/core/errors.js';
import { encodeCursor, type IndexedTask, type Store, type TaskPage } from '../src/engine/store.js';
import { STORE_KINDS, TestEnv, probe, until } from './harness.js';

/** Every index entry of a user (everyone's without one), following cursors page by page. */
async function listAll(store: Store, user: string | undefined, pageSize: number): Promise<IndexedTask[]> {
  const items: IndexedTask[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listTasks(user, pageSize, cursor);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

describe.each(STORE_KINDS)('retention on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('removes completed tasks past AIECS_RETENTION_COMPLETED_S and keeps failed ones for their own time', async () => {
    env = await TestEnv.create(kind, { AIECS_RETENTION_COMPLETED_S: '1', AIECS_RETENTION_FAILED_S: '3600' });
    const app = env.app();
    await env.worker();
    const done = await app.executeTask.delay(probe('echo', { n: 1 }));
    const failed = await app.executeTask.delay(probe('fail', { message: 'no' }));
    expect((await done.get({ timeout: 20 })).status).toBe('completed');
    await expect(failed.get({ timeout: 20 })).rejects.toBeInstanceOf(TaskFailedError);

    // The worker sweeps about once a second (a tenth of the shortest retention, at least 1 s).
    await until(async () => (await app.getTask(done.id)) === undefined, 20_000, 'the completed task to go');
    expect((await app.getTask(failed.id))?.status).toBe('failed');
    const listed = await app.listTasks('user-1');
    expect(listed.tasks.map((t) => t.task_id)).toEqual([failed.id]);
  });

  // What BullMQ's removeOnFail {age} cannot do: it removes expired jobs only when a later job of
  // the same queue fails, and here none does (the reason RetentionSweeper stays).
  it('removes a failed task past AIECS_RETENTION_FAILED_S though no task fails after it', async () => {
    env = await TestEnv.create(kind, { AIECS_RETENTION_COMPLETED_S: '3600', AIECS_RETENTION_FAILED_S: '1' });
    const app = env.app();
    await env.worker();
    const failed = await app.executeTask.delay(probe('fail', { message: 'no' }));
    await expect(failed.get({ timeout: 20 })).rejects.toBeInstanceOf(TaskFailedError);
    const done = await app.executeTask.delay(probe('echo', { n: 1 }));
    expect((await done.get({ timeout: 20 })).status).toBe('completed');

    await until(async () => (await app.getTask(failed.id)) === undefined, 20_000, 'the failed task to go');
    expect((await app.getTask(done.id))?.status).toBe('completed');
  });

  it('trims index entries older than the cutoff, for everyone and for each user', async () => {
    env = await TestEnv.create(kind);
    const store = await env.app().store();
    const now = Date.now();
    await store.indexTasks([
      { task_id: 'old-a', user_id: 'alice', queue: 'fast_tasks', created_at: now - 10_000 },
      { task_id: 'old-b', user_id: 'bob', queue: 'heavy_tasks', created_at: now - 9_000 },
      { task_id: 'new-a', user_id: 'alice', queue: 'fast_tasks', created_at: now },
    ]);
    await store.trimIndex(now - 5_000);
    const ids = async (user?: string) => (await store.listTasks(user, 10)).items.map((i) => i.task_id);
    expect(await ids()).toEqual(['new-a']);
    expect(await ids('alice')).toEqual(['new-a']);
    expect(await ids('bob')).toEqual([]);
  });

  it('indexes a large one-user batch whole, newest first, for everyone and for the user', async () => {
    env = await TestEnv.create(kind);
    const store = await env.app().store();
    const now = Date.now();
    const batch = Array.from({ length: 1_201 }, (_, i) => ({
      task_id: `t-${i}`,
      user_id: 'carol | the "admin"',
      queue: i % 2 ? 'heavy_tasks' : 'fast_tasks',
      created_at: now + i,
    }));
    await store.indexTasks(batch);
    const all = (user?: string) => listAll(store, user, 500);
    const expected = [...batch].reverse();
    expect(await all('carol | the "admin"')).toEqual(expected);
    expect(await all()).toEqual(expected);
  });

  it("keeps a bridged task's Celery id as an alias of its task id for as long as its index entry", async () => {
    env = await TestEnv.create(kind);
    const store = await env.app().store();
    const now = Date.now();
    const entry = (taskId: string, createdAt: number, celeryId?: string): IndexedTask => ({
      task_id: taskId,
      user_id: 'dave',
      queue: 'fast_tasks',
      created_at: createdAt,
      ...(celeryId !== undefined ? { celery_id: celeryId } : {}),
    });
    await store.indexTasks([
      entry('seed-old', now - 10_000, 'celery-old'),
      entry('plain', now - 9_000),
      entry('seed-new', now, 'celery-new'),
    ]);
    // A batch of another user's, aliased too (the several-users path on Redis).
    await store.indexTasks([entry('seed-x', now, 'celery-x'), { ...entry('y', now), user_id: 'erin' }]);
    expect(await store.taskIdForCelery('celery-old')).toBe('seed-old');
    expect(await store.taskIdForCelery('celery-new')).toBe('seed-new');
    expect(await store.taskIdForCelery('celery-x')).toBe('seed-x');
    expect(await store.taskIdForCelery('plain')).toBeUndefined();
    expect(await store.taskIdForCelery('seed-new')).toBeUndefined();
    // The list is unchanged by the aliases.
    expect((await store.listTasks('dave', 10)).items.map((i) => i.task_id)).toEqual([
      'seed-x',
      'seed-new',
      'plain',
      'seed-old',
    ]);

    await store.trimIndex(now - 5_000);
    expect(await store.taskIdForCelery('celery-old')).toBeUndefined();
    expect(await store.taskIdForCelery('celery-new')).toBe('seed-new');
    expect(await store.taskIdForCelery('celery-x')).toBe('seed-x');
  });
});

// The Redis index is a list per key with a trimmed count: positions, cursors and trims have edge
// cases the SQL stores do not.
describe('task index on redis', () => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  const entry = (i: number, createdAt: number, user = 'dave') => ({
    task_id: `e-${i}`,
    user_id: user,
    queue: 'fast_tasks',
    created_at: createdAt,
  });
  const ids = (page: TaskPage) => page.items.map((i) => i.task_id);

  it('continues a cursor taken before a trim, and ends one whose older entries were trimmed', async () => {
    env = await TestEnv.create('redis');
    const store = await env.app().store();
    const now = Date.now();
    // e-0..e-3 are past retention, e-4..e-9 are not.
    await store.indexTasks(
      Array.from({ length: 10 }, (_, i) => entry(i, i < 4 ? now - 10_000 + i : now + i)),
    );
    const users = ['dave', undefined];
    const cursors = [];
    for (const user of users) {
      const first = await store.listTasks(user, 3);
      expect(ids(first)).toEqual(['e-9', 'e-8', 'e-7']);
      const deep = await store.listTasks(user, 6);
      expect(ids(deep)).toEqual(['e-9', 'e-8', 'e-7', 'e-6', 'e-5', 'e-4']);
      const deeper = await store.listTasks(user, 8);
      expect(ids(deeper)).toEqual(['e-9', 'e-8', 'e-7', 'e-6', 'e-5', 'e-4', 'e-3', 'e-2']);
      cursors.push({ user, first, deep, deeper });
    }
    await store.trimIndex(now - 5_000);
    for (const { user, first, deep, deeper } of cursors) {
      const second = await store.listTasks(user, 3, first.next_cursor);
      expect(ids(second)).toEqual(['e-6', 'e-5', 'e-4']);
      expect(second.next_cursor).toBeUndefined();
      // Everything older than e-4 (and e-2) is gone: an empty last page, not a repeat.
      expect(await store.listTasks(user, 3, deep.next_cursor)).toEqual({ items: [] });
      expect(await store.listTasks(user, 3, deeper.next_cursor)).toEqual({ items: [] });
    }
  });

  it('ends a cursor from before its list was trimmed empty and refilled', async () => {
    env = await TestEnv.create('redis');
    const store = await env.app().store();
    const now = Date.now();
    await store.indexTasks(Array.from({ length: 5 }, (_, i) => entry(i, now - 10_000 + i)));
    const page = await store.listTasks('dave', 2);
    expect(ids(page)).toEqual(['e-4', 'e-3']);
    await store.trimIndex(now - 5_000);
    expect(await store.listTasks('dave', 2)).toEqual({ items: [] });
    await store.indexTasks(Array.from({ length: 5 }, (_, i) => entry(10 + i, now + i)));
    // The old cursor's position now holds another task: nothing older than it is left.
    expect(await store.listTasks('dave', 2, page.next_cursor)).toEqual({ items: [] });
    expect(ids(await store.listTasks('dave', 10))).toEqual(['e-14', 'e-13', 'e-12', 'e-11', 'e-10']);
  });

  it('indexes a batch of several users in arrival order, each user and everyone', async () => {
    env = await TestEnv.create('redis');
    const store = await env.app().store();
    const now = Date.now();
    const users = ['alice', 'bob', 'x|y "z"'];
    // Arrival order decides, even where created_at says otherwise (several producers' clocks).
    const batch = Array.from({ length: 2_500 }, (_, i) => entry(i, now + (i % 7), users[i % 3]));
    await store.indexTasks(batch);
    const all = (user?: string) => listAll(store, user, 200);
    for (const user of users)
      expect(await all(user)).toEqual(batch.filter((t) => t.user_id === user).reverse());
    expect(await all()).toEqual([...batch].reverse());
  });

  it('trims a long run of old entries whole, past one script call, and reads a foreign cursor as none', async () => {
    env = await TestEnv.create('redis');
    const store = await env.app().store();
    const now = Date.now();
    const old = Array.from({ length: 10_050 }, (_, i) => entry(i, now - 10_000));
    await store.indexTasks([...old, entry(20_000, now), entry(20_001, now)]);
    await store.trimIndex(now - 5_000);
    expect(ids(await store.listTasks('dave', 5))).toEqual(['e-20001', 'e-20000']);
    expect(ids(await store.listTasks(undefined, 5))).toEqual(['e-20001', 'e-20000']);
    for (const cursor of ['not a cursor', encodeCursor(1.5, 'e-1'), encodeCursor(-1, 'e-1')])
      expect(ids(await store.listTasks('dave', 5, cursor))).toEqual(['e-20001', 'e-20000']);
  });

  it('leaves the old sorted-set index keys alone', async () => {
    env = await TestEnv.create('redis');
    const redis = new Redis(env.brokerUrl);
    try {
      await redis.zadd(`${env.namespace}:aiecs:index:all`, 1, 'fast_tasks|old|dave');
      await redis.zadd(`${env.namespace}:aiecs:index:user:dave`, 1, 'fast_tasks|old|dave');
      const store = await env.app().store();
      await store.indexTasks([entry(1, Date.now())]);
      await store.trimIndex(Date.now() - 5_000);
      expect(ids(await store.listTasks('dave', 5))).toEqual(['e-1']);
      expect(await redis.type(`${env.namespace}:aiecs:tasks:user:dave`)).toBe('list');
    } finally {
      redis.disconnect();
    }
  });
});
