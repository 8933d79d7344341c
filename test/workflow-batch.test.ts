// executeTask.batch([...]) (issue 15): many tasks accepted whole or refused whole, as one group
// with a group_id, progress (n done of m), records in order with partial failure visible, and a
// group read through the same tree read as any workflow.
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../src/core/errors.js';
import type { TaskRecord } from '../src/core/task.js';
import { GATEWAY_KINDS } from './gateway-harness.js';
import { TestEnv, probe } from './harness.js';

describe.each(GATEWAY_KINDS)('executeTask.batch on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('returns a group handle: group_id, progress, records in order with the failure visible', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    await env.worker();
    const h = await app.executeTask.batch([
      probe('echo', { i: 0 }),
      probe('fail', { message: 'on purpose' }),
      probe('echo', { i: 2 }),
    ]);
    const ids = (h.children as { group: Array<{ task: string }> }).group.map((m) => m.task);
    expect(h.group_id).toBe(ids[0]);
    const records = (await h.get({ timeout: 60 })) as TaskRecord[];
    expect(records.map((r) => [r.task_id, r.status])).toEqual([
      [ids[0], 'completed'],
      [ids[1], 'failed'],
      [ids[2], 'completed'],
    ]);
    const progress = await h.progress();
    expect(progress).toMatchObject({ group_id: ids[0], done: 3, total: 3 });
    expect(progress.counts).toMatchObject({ completed: 2, failed: 1 });
    // Each member names the group's root, as a workflow member does.
    expect(records.map((r) => r.root_id)).toEqual([ids[0], ids[0], ids[0]]);
    expect((await app.readWorkflow(ids[2]!))?.root_id).toBe(ids[0]);
  });

  it('refuses the whole batch naming the bad item, and queues none of it', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const error = await app.executeTask
      .batch([probe('echo', { i: 0 }, { taskId: 'batch-good-1' }), probe('echo', {}, { step: -1 })])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual(['[1].step']);
    expect(await app.getTask('batch-good-1')).toBeUndefined();
    await expect(app.executeTask.batch([])).rejects.toThrow(/at least one task/);
  });
});
