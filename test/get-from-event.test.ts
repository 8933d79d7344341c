/**
 * A handle from this process's submit resolves get() from the task's completed event alone
 * (engine/task-record.ts completedFromEvent): the record must be the one a read of the store gives,
 * field for field, on every store, and a task whose record needs more than the event (retried by
 * hand: its earlier runs) is read instead.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TaskFailedError, TaskNotFoundError } from '../src/core/errors.js';
import type { TaskRecord } from '../src/core/task.js';
import type { TaskHandle } from '../src/engine/task-handle.js';
import { STORE_KINDS, TestEnv, probe, until } from './harness.js';

describe.each(STORE_KINDS)('get() from the completed event on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('gives the record a read gives, and reads nothing after the event', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const reads = vi.spyOn(app, 'getTask');
    const handles: TaskHandle[] = [
      await app.executeTask.delay(probe('echo', { text: 'plain' })),
      await app.executeTask.delay(
        probe('echo', { text: 'chosen' }, { taskId: `chosen-${kind}`, step: 3, context: { language: 'de' } }),
        { priority: 42, timeLimit: 30, softTimeLimit: 20, attempts: 2 },
      ),
      await app.executeHeavyTask.delay(probe('echo', { text: 'heavy' })),
      // A retry on the way: the record's attempt comes from the envelope.
      await app.executeTask.delay(probe('flaky', { fail_times: 1 })),
      // One bulk add.
      ...(await app.submitWire([1, 2, 3].map((n) => ({ queue: 'fast_tasks' as const, request: wire(n) })))),
    ];
    await env.worker();
    const got = await Promise.all(handles.map((h) => h.get({ timeout: 20 })));
    const readsDuringGet = new Map<string, number>();
    for (const [id] of reads.mock.calls) readsDuringGet.set(id, (readsDuringGet.get(id) ?? 0) + 1);

    const stored = await Promise.all(handles.map((h) => h.status()));
    expect(got).toEqual(stored);
    expect(got.map((r) => r.status)).toEqual(handles.map(() => 'completed'));
    expect(got[1]).toMatchObject({ task_id: `chosen-${kind}`, step: 3, priority: 42, max_attempts: 2 });
    expect(got[3]).toMatchObject({ attempt: 2, result: { attempt: 2 } });
    expect(got.every((r) => r.worker && r.started_at && r.finished_at)).toBe(true);
    // Each get() read its task once, when it began waiting (the task might have ended before),
    // and never after the completed event; the retried task may also be read on its failed try.
    for (const [i, h] of handles.entries()) {
      if (i === 3) continue;
      expect({ id: h.id, reads: readsDuringGet.get(h.id) }).toEqual({ id: h.id, reads: 1 });
    }

    // Added while this process listens for results: its end cannot pass unheard, so get() reads
    // nothing at all.
    reads.mockClear();
    const later = await app.executeTask.delay(probe('echo', { text: 'later' }));
    const record = await later.get({ timeout: 20 });
    expect(reads).not.toHaveBeenCalled();
    expect(record).toEqual(await later.status());
  });

  it('reads the record of a task whose end its listener heard before get() began', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    await env.worker();
    // A wait for a task that does not exist subscribes the listener before the task is added.
    await expect(app.waitFor('no-such-task', 'fast_tasks')).rejects.toThrow(TaskNotFoundError);
    const handle = await app.executeTask.delay(probe('echo', { text: 'ended' }));
    await until(async () => (await handle.status()).status === 'completed', 20_000, 'the task ended');
    // A later task's end follows on the event stream: once it is heard, so was this one's.
    await (await app.executeTask.delay(probe('echo', { text: 'next' }))).get({ timeout: 20 });
    const reads = vi.spyOn(app, 'getTask');
    // Only its first read can settle it: the periodic re-read, the safety net, never comes.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let record: TaskRecord;
    try {
      record = await handle.get({ timeout: 20 });
    } finally {
      vi.useRealTimers();
    }
    expect(reads.mock.calls.map(([id]) => id)).toEqual([handle.id]);
    expect(record).toEqual(await handle.status());
    expect(record.status).toBe('completed');
  });

  it('reads the record of a task retried by hand, which holds its earlier run', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    // One attempt: the first run fails for good; the hand-made retry is its second, which succeeds.
    const handle = await app.executeTask.delay(probe('flaky', { fail_times: 1 }), { attempts: 1 });
    await env.worker();
    await expect(handle.get({ timeout: 20 })).rejects.toBeInstanceOf(TaskFailedError);
    await app.retry(handle.id);
    const record: TaskRecord = await handle.get({ timeout: 20 });
    expect(record.status).toBe('completed');
    expect(record.runs).toHaveLength(1);
    expect(record).toEqual(await handle.status());
  });
});

describe('a submit on Redis', () => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it("sends the task's add before its index entry, which is off the task's path", async () => {
    env = await TestEnv.create('redis');
    const app = env.app();
    // The first submit makes the queue and loads the scripts; the second is the one watched.
    await app.executeTask.delay(probe('echo', { text: 'first' }));
    const monitor = await new Redis(env.brokerUrl).monitor();
    const scripts: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (/^eval/i.test(args[0] ?? '') && args.some((a) => a.startsWith(`${env.namespace}:`)))
        scripts.push(args);
    });
    try {
      const handle = await app.executeTask.delay(probe('echo', { text: 'watched' }));
      const isAdd = (args: string[]) => args.includes(`${env.namespace}:fast_tasks:marker`);
      const isIndex = (args: string[]) => args.includes(`${env.namespace}:aiecs:tasks:all`);
      await until(async () => scripts.some(isAdd) && scripts.some(isIndex));
      expect(scripts.findIndex(isAdd)).toBeLessThan(scripts.findIndex(isIndex));
      expect(scripts.find(isIndex)?.join(' ')).toContain(handle.id);
    } finally {
      monitor.disconnect();
    }
  });
});

function wire(n: number) {
  return { task_name: 'echo', user_id: 'user-2', mode: 'test', service: 'probe', input_data: { n } };
}
