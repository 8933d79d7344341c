import { afterEach, describe, expect, it } from 'vitest';
import { TaskFailedError } from '../src/core/errors.js';
import { STORE_KINDS, TestEnv, probe, until } from './harness.js';

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
    const all = async (user?: string) => {
      const items = [];
      let cursor: string | undefined;
      do {
        const page = await store.listTasks(user, 500, cursor);
        items.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
      return items;
    };
    const expected = [...batch].reverse();
    expect(await all('carol | the "admin"')).toEqual(expected);
    expect(await all()).toEqual(expected);
  });
});
