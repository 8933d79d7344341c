import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { AbandonedTasks, type SlotsOf } from './abandoned-tasks.js';

/** A BullMQ worker's concurrency, pause and resume, recorded. */
function fakeWorker(concurrency: number) {
  const calls: string[] = [];
  const worker: SlotsOf = {
    concurrency,
    pause: async () => void calls.push('pause'),
    resume: () => void calls.push('resume'),
  };
  return { worker, calls };
}

function returning() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('AbandonedTasks', () => {
  it('takes one slot per task whose code still runs, pausing when none is left, and gives them back as each returns', async () => {
    const { worker, calls } = fakeWorker(2);
    const tasks = new AbandonedTasks(worker, 2, 'fast_tasks', silentLogger);
    const a = returning();
    const b = returning();
    tasks.hold('a', a.promise);
    expect(worker.concurrency).toBe(1);
    expect(calls).toEqual([]);
    tasks.hold('b', b.promise);
    // BullMQ's concurrency cannot go below 1: the worker pauses instead.
    expect(worker.concurrency).toBe(1);
    expect(calls).toEqual(['pause']);
    expect({ total: tasks.total, running: tasks.size, ids: tasks.ids() }).toEqual({
      total: 2,
      running: 2,
      ids: ['a', 'b'],
    });

    a.resolve();
    await settled();
    expect(calls).toEqual(['pause', 'resume']);
    expect(worker.concurrency).toBe(1);
    b.resolve();
    await settled();
    expect(worker.concurrency).toBe(2);
    expect(calls).toEqual(['pause', 'resume']);
    expect({ total: tasks.total, running: tasks.size }).toEqual({ total: 2, running: 0 });
  });

  it('leaves a closing worker alone', async () => {
    const { worker, calls } = fakeWorker(1);
    const tasks = new AbandonedTasks(worker, 1, 'fast_tasks', silentLogger);
    tasks.close();
    const a = returning();
    tasks.hold('a', a.promise);
    a.resolve();
    await settled();
    expect(calls).toEqual([]);
    expect(tasks.total).toBe(1);
  });
});
