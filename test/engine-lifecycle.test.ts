import { afterEach, describe, expect, it } from 'vitest';
import {
  PayloadTooLargeError,
  ServiceNotFoundError,
  TaskConflictError,
  TaskFailedError,
  ValidationError,
} from '../src/core/errors.js';
import type { TaskRequest } from '../src/core/task.js';
import { STORE_KINDS, TestEnv, sleep, until, probe } from './harness.js';

describe.each(STORE_KINDS)('task lifecycle on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('goes pending → running → completed, in that order, with progress in between', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const store = await app.store();
    const events = store.createQueueEvents('fast_tasks');
    const seen: string[] = [];
    events.on('waiting', () => seen.push('pending'));
    events.on('active', () => seen.push('running'));
    events.on('progress', ({ data }) => seen.push(`progress:${(data as { progress: number }).progress}`));
    events.on('completed', () => seen.push('completed'));
    await events.waitUntilReady();
    await sleep(200);

    const handle = await app.executeTask.delay(probe('progress_steps', { steps: 4, ms: 20 }));
    const pending = await handle.status();
    expect(pending.status).toBe('pending');
    expect(pending.attempt).toBe(0);
    await env.worker();
    const record = await handle.get({ timeout: 20 });
    await until(async () => seen.includes('completed'), 5_000, 'completed event');
    await events.close();

    expect(record).toMatchObject({
      status: 'completed',
      progress: 100,
      attempt: 1,
      task_name: 'progress_steps',
      user_id: 'user-1',
      queue: 'fast_tasks',
    });
    expect(record.result).toEqual({ steps: 4 });
    expect(record.started_at).not.toBeNull();
    expect(Date.parse(record.finished_at!)).toBeGreaterThanOrEqual(Date.parse(record.started_at!));
    expect(record.duration_ms).toBeGreaterThanOrEqual(60);
    expect(record.resources?.timings.service_ms).toBeGreaterThan(0);
    expect(seen).toEqual([
      'pending',
      'running',
      'progress:25',
      'progress:50',
      'progress:75',
      'progress:100',
      'completed',
    ]);
  });

  it('refuses invalid requests at submit, naming each bad field', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const bad = { taskName: '', userId: 'u', mode: 'test', service: 'probe', step: -1 } as TaskRequest;
    const error = await app.executeTask.delay(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    const fields = (error as ValidationError).issues.map((i) => i.field).sort();
    // Named as the caller spelled them (camelCase here).
    expect(fields).toEqual(['step', 'taskName']);

    const wire = await app
      .submitWire({
        queue: 'fast_tasks',
        request: {
          task_name: 'echo',
          user_id: 'u',
          mode: 'test',
          service: 'probe',
          extra: 1,
          task_id: '123',
        },
      })
      .catch((e: unknown) => e);
    expect((wire as ValidationError).issues.map((i) => i.field).sort()).toEqual(['(root)', 'task_id']);
    expect((wire as ValidationError).message).toMatch(/unknown field\(s\): extra/);

    const opts = await app.executeTask
      .delay(probe('echo'), { timeLimit: -1, priority: 500 })
      .catch((e: unknown) => e);
    expect((opts as ValidationError).issues.map((i) => i.field).sort()).toEqual([
      'options.priority',
      'options.timeLimit',
    ]);
  });

  it('refuses input over 1 MiB with PayloadTooLargeError', async () => {
    env = await TestEnv.create(kind);
    const error = await env
      .app()
      .executeTask.delay(probe('echo', { blob: 'x'.repeat(1024 * 1024 + 10) }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect((error as PayloadTooLargeError).limit).toBe(1024 * 1024);
  });

  it('treats a re-submitted task_id as the same task, and a different request under it as a conflict', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const request = probe('echo', { n: 1 }, { taskId: 'same-task-1' });
    const first = await app.executeTask.delay(request);
    const second = await app.executeTask.delay(request);
    expect(second.id).toBe(first.id);
    await expect(app.executeTask.delay({ ...request, inputData: { n: 2 } })).rejects.toBeInstanceOf(
      TaskConflictError,
    );
    await env.worker();
    const record = await second.get({ timeout: 20 });
    expect(record.result).toMatchObject({ echo: { n: 1 } });
    const again = await app.executeTask.delay(request);
    expect((await again.status()).status).toBe('completed');
  });

  it("keeps a task out of another user's list when a conflicting submit of its id races the first", async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const store = await app.store();
    // Both submits check the id before either adds it: the loser learns of the conflict only
    // after its add, and must not have indexed the winner's task under its own user.
    const request = (userId: string) => probe('echo', { by: userId }, { taskId: 'raced-1', userId });
    const outcomes = await Promise.allSettled([
      app.executeTask.delay(request('user-a')),
      app.executeTask.delay(request('user-b')),
    ]);
    const won = outcomes.findIndex((o) => o.status === 'fulfilled');
    expect(won).toBeGreaterThanOrEqual(0);
    const lost = outcomes[1 - won]!;
    expect(lost.status === 'rejected' && lost.reason).toBeInstanceOf(TaskConflictError);
    const [owner, other] = won === 0 ? ['user-a', 'user-b'] : ['user-b', 'user-a'];

    expect((await store.listTasks(other, 10)).items).toEqual([]);
    expect((await store.listTasks(owner, 10)).items.map((i) => i.task_id)).toEqual(['raced-1']);
    expect((await app.listTasks(other)).tasks).toEqual([]);
    expect((await app.listTasks(owner)).tasks.map((t) => t.user_id)).toEqual([owner]);
    expect((await app.listTasks(undefined)).tasks.map((t) => t.task_id)).toEqual(['raced-1']);
  });

  it('lists every task a batch made under its owner, also when another of its ids lost a race', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const store = await app.store();
    const item = (taskId: string, userId: string) => ({
      queue: 'fast_tasks' as const,
      request: { task_name: 'echo', user_id: userId, mode: 'test', service: 'probe', task_id: taskId },
    });
    const outcomes = await Promise.allSettled([
      app.submitWire([item('batch-new-1', 'user-a'), item('batch-raced-1', 'user-a')]),
      app.submitWire([item('batch-raced-1', 'user-b')]),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const owner = outcomes[0].status === 'fulfilled' ? 'user-a' : 'user-b';

    const listed = async (userId: string) =>
      (await store.listTasks(userId, 10)).items.map((i) => i.task_id).sort();
    // The batch's other task exists whichever submit won the raced id, and is listed as its user's.
    expect((await app.getTask('batch-new-1'))?.user_id).toBe('user-a');
    expect(await listed('user-a')).toEqual(
      owner === 'user-a' ? ['batch-new-1', 'batch-raced-1'] : ['batch-new-1'],
    );
    expect(await listed('user-b')).toEqual(owner === 'user-b' ? ['batch-raced-1'] : []);
  });

  it('fails an unknown service or method at once with ServiceNotFoundError listing the registered services', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const unknownService = await app.executeTask.delay({ ...probe('echo'), service: 'nope' });
    const e1 = await unknownService.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(TaskFailedError);
    expect((e1 as TaskFailedError).remote).toMatchObject({ type: 'ServiceNotFoundError', code: 'E007' });
    expect((e1 as TaskFailedError).remote.message).toContain('test/probe');
    const record = await unknownService.status();
    expect(record).toMatchObject({ status: 'failed', attempt: 1 });

    const unknownMethod = await app.executeTask.delay(probe('no_such_method'));
    const e2 = await unknownMethod.get({ timeout: 20 }).catch((e: unknown) => e);
    expect((e2 as TaskFailedError).remote.message).toMatch(
      /has no method no_such_method; its methods: .*echo/,
    );
    expect(ServiceNotFoundError.name).toBe('ServiceNotFoundError');
  });

  it('calls execute_task(task_name, …) on a service without a method of that name', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const handle = await env.app().executeTask.delay({
      taskName: 'anything',
      userId: 'u',
      mode: 'test',
      service: 'fallback',
      inputData: { q: 1 },
    });
    expect((await handle.get({ timeout: 20 })).result).toEqual({
      via: 'execute_task',
      taskName: 'anything',
      input: { q: 1 },
    });
  });

  it('keeps results that are not plain JSON, and fails a result that refers to itself', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const odd = await (
      await app.executeTask.delay(probe('odd_result', { kind: 'map' }))
    ).get({ timeout: 20 });
    expect(odd.result).toEqual({ m: { k: 1 }, s: [1, 2], d: '1970-01-01T00:00:00.000Z' });
    const big = await (
      await app.executeTask.delay(probe('odd_result', { kind: 'bigint' }))
    ).get({ timeout: 20 });
    expect(big.result).toEqual({ big: '100000000000000000000' });
    const none = await (
      await app.executeTask.delay(probe('odd_result', { kind: 'none' }))
    ).get({ timeout: 20 });
    expect(none.result).toBeNull();
    const circular = await (
      await app.executeTask.delay(probe('odd_result', { kind: 'circular' }))
    )
      .get({ timeout: 20 })
      .catch((e: unknown) => e);
    expect((circular as TaskFailedError).remote).toMatchObject({
      type: 'ResultNotSerializableError',
      code: 'E003',
    });
    // PostgreSQL's JSON cannot hold these: every store fails such a result alike, naming where.
    for (const [kind, where] of [
      ['nul', 'result.deep[0].text'],
      ['surrogate', 'result.text'],
    ] as const) {
      const refused = await (
        await app.executeTask.delay(probe('odd_result', { kind }))
      )
        .get({ timeout: 20 })
        .catch((e: unknown) => e);
      expect((refused as TaskFailedError).remote).toMatchObject({
        type: 'ResultNotSerializableError',
        code: 'E003',
      });
      expect((refused as TaskFailedError).message).toContain(where);
    }
  });

  it('runs higher priorities first and honours countdown', async () => {
    env = await TestEnv.create(kind, { CELERY_WORKER_CONCURRENCY: 'fast_tasks=1,heavy_tasks=1' });
    const app = env.app();
    const low = await app.executeTask.delay(probe('ordered', { p: 'low' }), { priority: 1 });
    const high = await app.executeTask.delay(probe('ordered', { p: 'high' }), { priority: 90 });
    const normal = await app.executeTask.delay(probe('ordered', { p: 'default' }));
    const later = await app.executeTask.delay(probe('ordered', { p: 'later' }), {
      countdown: 1,
      priority: 100,
    });
    await env.worker();
    const records = await Promise.all([low, high, normal, later].map((h) => h.get({ timeout: 20 })));
    // The order they ran in, from the worker's own counter (timestamps can tie within a millisecond).
    const order = records
      .map((r) => r.result as { n: number; p: string })
      .sort((a, b) => a.n - b.n)
      .map((r) => r.p);
    expect(order).toEqual(['high', 'default', 'low', 'later']);
    expect(records[1]!.priority).toBe(90);
    expect(records[2]!.priority).toBe(10);
    expect(Date.parse(records[3]!.started_at!) - Date.parse(records[3]!.created_at)).toBeGreaterThanOrEqual(
      900,
    );
  });

  it('stores tracked resources and streams output in order through the event stream', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const store = await app.store();
    const events = store.createQueueEvents('fast_tasks');
    const deltas: Array<{ seq: number; delta: string }> = [];
    events.on('stream' as 'progress', (e: unknown) => deltas.push(e as { seq: number; delta: string }));
    await events.waitUntilReady();
    await sleep(200);
    const handle = await app.executeTask.delay(probe('stream_tokens', { tokens: 30, ms: 3 }));
    const record = await handle.get({ timeout: 20 });
    await until(
      async () =>
        deltas
          .map((d) => d.delta)
          .join('')
          .split(' ').length > 30,
      5_000,
      'stream deltas',
    );
    await events.close();
    const seqs = deltas.map((d) => Number(d.seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(deltas.map((d) => d.delta).join('')).toBe(Array.from({ length: 30 }, (_, i) => `t${i} `).join(''));
    expect(deltas.length).toBeLessThan(30); // coalesced
    expect(record.resources).toMatchObject({
      model_usage: [
        { provider: 'fake', model: 'probe-1', input_tokens: 10, output_tokens: 30, cost_usd: 0.001 },
      ],
      totals: { input_tokens: 10, output_tokens: 30, cost_usd: 0.001 },
      files: [{ path: '/tmp/probe.txt', operation: 'read', bytes: 12 }],
    });
  });

  it('delivers progress messages and streamed text with a NUL or a lone surrogate as U+FFFD, on every store', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const store = await app.store();
    const events = store.createQueueEvents('fast_tasks');
    const deltas: string[] = [];
    const messages: string[] = [];
    events.on('stream' as 'progress', (e: unknown) => deltas.push((e as { delta: string }).delta));
    events.on('progress', ({ data }) => messages.push(String((data as { message?: unknown }).message)));
    await events.waitUntilReady();
    await sleep(200);
    const record = await (await app.executeTask.delay(probe('odd_text', {}))).get({ timeout: 20 });
    expect(record.status).toBe('completed');
    await until(
      async () => deltas.join('').length >= 6 && messages.includes('half\ufffdway'),
      5_000,
      'events',
    );
    await events.close();
    expect(deltas.join('')).toBe('x\ufffdy 😀');
  });

  it('lists live workers through heartbeats and forgets them when they stop', async () => {
    env = await TestEnv.create(kind);
    const worker = await env.worker();
    const app = env.app();
    const listed = await app.listWorkers();
    expect(listed.map((w) => w.id)).toContain(worker.id);
    expect(listed.find((w) => w.id === worker.id)).toMatchObject({
      pid: process.pid,
      queues: ['fast_tasks', 'heavy_tasks'],
      concurrency: { fast_tasks: 20, heavy_tasks: 2 },
    });
    await worker.close(1);
    expect((await app.listWorkers()).map((w) => w.id)).not.toContain(worker.id);
  });
});
