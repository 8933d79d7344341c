// How the tasks table applies `task_changes`: rows in view take the latest state, new matching
// tasks join the top of the first page, the page keeps its size, and a burst of thousands of
// changes is one pass.
import { describe, expect, it } from 'vitest';
import { applyChanges, matches, type Row } from '../../src/dashboard/live-rows.js';
import type { TaskChange } from '../../src/dashboard/types.js';

const row = (i: number, extra: Partial<Row> = {}): Row => ({
  task_id: `old-${i}`,
  task_name: 'echo',
  user_id: 'u1',
  queue: 'fast_tasks',
  mode: 'test',
  service: 'probe',
  status: 'running',
  progress: 10,
  message: '',
  attempt: 1,
  created_at: 1_000 - i,
  updated_at: 1_000,
  ...extra,
});

const change = (id: string, extra: Partial<TaskChange> = {}): TaskChange => ({
  task_id: id,
  user_id: 'u1',
  task_name: 'echo',
  queue: 'fast_tasks',
  mode: 'test',
  service: 'probe',
  status: 'pending',
  progress: 0,
  message: 'queued',
  attempt: 0,
  timestamp: 2_000,
  ...extra,
});

describe('the tasks table under task_changes', () => {
  const page = Array.from({ length: 50 }, (_, i) => row(i));

  it('updates rows in view with the latest state and ignores older ones', () => {
    const next = applyChanges(
      page,
      [
        change('old-3', { status: 'completed', progress: 100, attempt: 1, timestamp: 3_000 }),
        change('old-4', { status: 'failed', timestamp: 500 }),
      ],
      {},
      true,
    );
    expect(next[3]).toMatchObject({ status: 'completed', progress: 100 });
    expect(next[4]).toEqual(page[4]);
    expect(next).toHaveLength(50);
  });

  it('puts new tasks that match the filters on top of the first page only, keeping its size', () => {
    const changes = [
      change('new-a', { timestamp: 2_001 }),
      change('new-b', { queue: 'heavy_tasks', timestamp: 2_002 }),
      change('new-a', { status: 'running', attempt: 1, progress: 40, timestamp: 2_003 }),
    ];
    const next = applyChanges(page, changes, { queue: 'fast_tasks' }, true);
    expect(next.map((r) => r.task_id).slice(0, 2)).toEqual(['new-a', 'old-0']);
    expect(next[0]).toMatchObject({ status: 'running', progress: 40 });
    expect(next).toHaveLength(50);
    expect(applyChanges(page, changes, {}, false)).toBe(page);
  });

  it('does not put an old task seen running (from a later page) on top', () => {
    expect(applyChanges(page, [change('elsewhere', { status: 'running', attempt: 1 })], {}, true)).toBe(page);
  });

  it('applies a burst of 20,000 changes in one pass', () => {
    const burst: TaskChange[] = [];
    for (let i = 0; i < 20_000; i++)
      burst.push(
        i % 2 === 0
          ? change(`old-${i % 50}`, {
              status: 'running',
              progress: i % 100,
              attempt: 1,
              timestamp: 2_000 + i,
            })
          : change(`fresh-${i}`, { timestamp: 2_000 + i }),
      );
    const started = performance.now();
    const next = applyChanges(page, burst, {}, true);
    const ms = performance.now() - started;
    console.log(`20,000 changes applied to a page of 50 in ${ms.toFixed(1)} ms`);
    expect(next).toHaveLength(50);
    expect(new Set(next.map((r) => r.task_id)).size).toBe(50);
  });

  it('matches filters on every field the URL holds', () => {
    const c = change('x', { status: 'failed', mode: 'm', service: 's', timestamp: 5_000 });
    expect(matches(c, { status: 'failed', mode: 'm', service: 's', user_id: 'u1' })).toBe(true);
    expect(matches(c, { status: 'completed' })).toBe(false);
    expect(matches(c, { since: '6000' })).toBe(false);
    expect(matches(c, { until: new Date(4_000).toISOString() })).toBe(false);
  });
});
