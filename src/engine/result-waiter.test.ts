/**
 * A task added while the listener was subscribed is read by get() only when its end may have
 * passed before get() began: its id is among the ends remembered, or more ends than that were
 * heard since its add. Otherwise its end is still to come as an event, and nothing is read.
 */
import { EventEmitter } from 'node:events';
import type { QueueEvents } from 'bullmq';
import { describe, expect, it, vi } from 'vitest';
import type { TaskRecord } from '../core/task.js';
import { REMEMBERED_ENDS, ResultWaiter } from './result-waiter.js';
import type { SubmittedTask } from './task-record.js';

const record = (id: string) => ({ task_id: id, status: 'completed' }) as TaskRecord;

function listener() {
  const events = new EventEmitter();
  const load = vi.fn(async (id: string) => record(id));
  const waiter = new ResultWaiter(events as unknown as QueueEvents, load, 3_600_000);
  const end = (id: string) => events.emit('failed', { jobId: id });
  return { waiter, load, end };
}

/** The task as its submit knows it, added when the listener had heard `endsHeard` ends. */
const added = (id: string, endsHeard: number) => ({ id, endsHeard }) as unknown as SubmittedTask;

describe('ResultWaiter and a task added while it listened', () => {
  it('reads it when its end was heard before the wait', async () => {
    const { waiter, load, end } = listener();
    const task = added('t1', waiter.endsHeard);
    end('t1');
    load.mockClear();
    await expect(waiter.wait('t1', Infinity, () => new Error('timeout'), task)).resolves.toEqual(
      record('t1'),
    );
    expect(load.mock.calls).toEqual([['t1']]);
  });

  it('reads nothing while its end is still to come, however many others ended', async () => {
    const { waiter, load, end } = listener();
    const task = added('t1', waiter.endsHeard);
    for (let i = 0; i < REMEMBERED_ENDS; i++) end(`other-${i}`);
    load.mockClear();
    const got = waiter.wait('t1', Infinity, () => new Error('timeout'), task);
    expect(load).not.toHaveBeenCalled();
    end('t1');
    await expect(got).resolves.toEqual(record('t1'));
  });

  it('reads it when more ends than it remembers were heard since its add', async () => {
    const { waiter, load, end } = listener();
    const task = added('t1', waiter.endsHeard);
    end('t1');
    // Its own end is forgotten among the later ones.
    for (let i = 0; i < REMEMBERED_ENDS; i++) end(`other-${i}`);
    load.mockClear();
    await expect(waiter.wait('t1', Infinity, () => new Error('timeout'), task)).resolves.toEqual(
      record('t1'),
    );
    expect(load.mock.calls).toEqual([['t1']]);
  });
});
