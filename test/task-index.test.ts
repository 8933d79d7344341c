// The task index's filters on every store: narrowed in the index (no record read), newest first,
// cursor paging; on Redis a filter reads a bounded stretch per call and returns a short page with
// a cursor rather than scanning the whole list.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndexFilter, IndexedTask, Store } from '../src/engine/store.js';
import { INDEX_SCAN_BUDGET } from '../src/engine/store.js';
import { STORE_KINDS, TestEnv } from './harness.js';

describe.each(STORE_KINDS)('task index filters on %s', (kind) => {
  let env: TestEnv;
  let store: Store;
  const t0 = 1_700_000_000_000;
  const entries: IndexedTask[] = [];
  beforeAll(async () => {
    env = await TestEnv.create(kind);
    store = await env.app().store();
    // Older entries without labels (indexed before they existed), then a few rare ones, then
    // more than a scan's budget of common ones: the rare ones sit far from the newest end.
    for (let i = 0; i < 3; i++)
      entries.push({ task_id: `old-${i}`, user_id: 'u1', queue: 'fast_tasks', created_at: t0 + i });
    for (let i = 0; i < 3; i++)
      entries.push({
        task_id: `rare-${i}`,
        user_id: i === 1 ? 'u2' : 'u1',
        queue: 'heavy_tasks',
        created_at: t0 + 10 + i,
        task_name: 'rare',
        mode: 'm2',
        service: 's2',
      });
    const common = INDEX_SCAN_BUDGET + 500;
    for (let i = 0; i < common; i++)
      entries.push({
        task_id: `common-${i}`,
        user_id: 'u1',
        queue: 'fast_tasks',
        created_at: t0 + 100 + i,
        task_name: 'common',
        mode: 'm1',
        service: 's1',
      });
    for (let i = 0; i < entries.length; i += 1000) await store.indexTasks(entries.slice(i, i + 1000));
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  /** Every page of a filtered list: the ids in order, and how many calls it took. */
  async function listAll(userId: string | undefined, filter: IndexFilter, limit = 10) {
    const ids: string[] = [];
    let cursor: string | undefined;
    let calls = 0;
    do {
      const page = await store.listTasks(userId, limit, cursor, filter);
      calls += 1;
      expect(page.items.length).toBeLessThanOrEqual(limit);
      ids.push(...page.items.map((i) => i.task_id));
      cursor = page.next_cursor;
    } while (cursor && calls < 100);
    return { ids, calls };
  }

  it('narrows by task name, queue, mode, service, user and time, newest first', async () => {
    expect((await listAll(undefined, { task_name: 'rare' })).ids).toEqual(['rare-2', 'rare-1', 'rare-0']);
    expect((await listAll(undefined, { queue: 'heavy_tasks', mode: 'm2' })).ids).toEqual([
      'rare-2',
      'rare-1',
      'rare-0',
    ]);
    expect((await listAll('u1', { service: 's2' })).ids).toEqual(['rare-2', 'rare-0']);
    expect((await listAll('u2', { task_name: 'rare' })).ids).toEqual(['rare-1']);
    expect((await listAll(undefined, { task_name: 'rare', since: t0 + 11, until: t0 + 11 })).ids).toEqual([
      'rare-1',
    ]);
    expect((await listAll(undefined, { service: 'nope' })).ids).toEqual([]);
    // The entries without labels still list unfiltered, and by time.
    expect((await listAll(undefined, { until: t0 + 5 })).ids).toEqual(['old-2', 'old-1', 'old-0']);
  });

  it('pages a common filter without repeats or gaps', async () => {
    const page = await store.listTasks(undefined, 25, undefined, { task_name: 'common' });
    expect(page.items.map((i) => i.task_id)).toEqual(
      Array.from({ length: 25 }, (_, i) => `common-${INDEX_SCAN_BUDGET + 499 - i}`),
    );
    const next = await store.listTasks(undefined, 25, page.next_cursor, { task_name: 'common' });
    expect(next.items[0]!.task_id).toBe(`common-${INDEX_SCAN_BUDGET + 474}`);
    expect(next.items[0]).toMatchObject({
      queue: 'fast_tasks',
      user_id: 'u1',
      created_at: t0 + 100 + INDEX_SCAN_BUDGET + 474,
    });
  });

  it('reads a bounded stretch per call where it must scan (Redis), a direct seek elsewhere', async () => {
    const { ids, calls } = await listAll(undefined, { task_name: 'rare' }, 10);
    expect(ids).toEqual(['rare-2', 'rare-1', 'rare-0']);
    if (kind === 'redis') {
      // More than one budget of newer entries lie before the rare ones: the first call returns a
      // short (empty) page with a cursor instead of reading on.
      const first = await store.listTasks(undefined, 10, undefined, { task_name: 'rare' });
      expect(first.items).toEqual([]);
      expect(first.next_cursor).toBeDefined();
      expect(calls).toBeGreaterThan(1);
    } else expect(calls).toBe(1);
  });
});
