// The bridge's hold on a task is the task's, not its id's: fed by hand-made event streams and jobs,
// the cases a real deployment makes rare (a node that missed a reused id's `added`, a removal, a
// retention sweep) are made here on purpose.
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { TaskStatus, type QueueKind, type TaskRecord } from '../core/task.js';
import type { AiecsApp } from '../engine/app.js';
import type { Store } from '../engine/store.js';
import { SEQ_PER_ATTEMPT } from '../core/task-events.js';
import { EventBridge, type BridgeEvent } from './event-bridge.js';

class FakeEvents extends EventEmitter {
  waitUntilReady = () => Promise.resolve();
  close = () => Promise.resolve();
}

interface FakeJob {
  data: { user_id: string; task_name: string; step: number };
  timestamp: number;
  attemptsStarted: number;
  progress: unknown;
  returnvalue?: unknown;
}

const job = (user: string, timestamp: number): FakeJob => ({
  data: { user_id: user, task_name: 'echo', step: 0 },
  timestamp,
  attemptsStarted: 1,
  progress: 0,
});

function record(user: string, createdAt: number, status: TaskStatus): TaskRecord {
  return {
    task_id: 'X',
    task_name: 'echo',
    user_id: user,
    step: 0,
    queue: 'fast_tasks',
    status,
    progress: status === TaskStatus.COMPLETED ? 100 : 0,
    message: '',
    attempt: 1,
    result: status === TaskStatus.COMPLETED ? { owner: user } : null,
    error: null,
    created_at: new Date(createdAt).toISOString(),
  } as unknown as TaskRecord;
}

/** A bridge on fake streams and jobs, and every event it publishes. */
async function bridge(retention?: { completedS: number; failedS: number }) {
  const events = { fast_tasks: new FakeEvents(), heavy_tasks: new FakeEvents() };
  const jobs = new Map<string, FakeJob>();
  const store = { createQueueEvents: (name: QueueKind) => events[name] } as unknown as Store;
  const app = {
    queue: () => Promise.resolve({ getJob: (id: string) => Promise.resolve(jobs.get(id)) }),
    getTask: () => Promise.resolve(undefined),
  } as unknown as AiecsApp;
  const b = new EventBridge(app, store, silentLogger, retention ? { retention } : {});
  const published: BridgeEvent[] = [];
  b.on('event', (e) => published.push(e));
  await b.start();
  const fast = events.fast_tasks;
  // Lets the bridge's store reads (promises) finish.
  const settle = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  /** A whole task run: added, active, one progress step, completed. */
  const run = async (user: string, options: { added?: boolean } = {}) => {
    if (options.added ?? true) fast.emit('added', { jobId: 'X' });
    await settle();
    fast.emit('active', { jobId: 'X' });
    await settle();
    const progress = { status: TaskStatus.RUNNING, progress: 50, message: user, attempt: 1, timestamp: 1 };
    fast.emit('progress', { jobId: 'X', data: { ...progress, seq: SEQ_PER_ATTEMPT + 1 } });
    fast.emit('completed', {
      jobId: 'X',
      returnvalue: { result: { owner: user }, resources: {}, attempt: 1, seq: SEQ_PER_ATTEMPT + 2 },
    });
    await settle();
  };
  const packets = async (rec: TaskRecord) => (await b.missed(rec, -1)).map((e) => e.packet).join('\n');
  return { b, fast, jobs, published, run, settle, packets };
}

describe('EventBridge and reused task ids', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('routes a reused id’s events to its new owner even when this node missed its `added`', async () => {
    const { b, jobs, published, run, packets } = await bridge();
    jobs.set('X', job('alice', 1_000));
    await run('alice');
    expect(published.map((e) => e.userId)).toEqual(['alice', 'alice', 'alice', 'alice']);

    // Alice's task is removed and Bob's takes its id; this node never hears of either.
    jobs.set('X', job('bob', 2_000));
    published.length = 0;
    await run('bob', { added: false });
    expect(published.length).toBeGreaterThan(0);
    for (const e of published) expect(e.payload).toMatchObject({ user_id: 'bob' });
    expect(published.at(-1)!.payload).toMatchObject({ status: 'completed', result: { owner: 'bob' } });

    const bobs = await packets(record('bob', 2_000, TaskStatus.COMPLETED));
    expect(bobs).toContain('"owner":"bob"');
    expect(bobs).not.toContain('alice');
    await b.close();
  });

  it('lets go of a removed task’s replay', async () => {
    const { b, fast, jobs, run, settle, packets } = await bridge();
    jobs.set('X', job('alice', 1_000));
    await run('alice');
    const alice = record('alice', 1_000, TaskStatus.COMPLETED);
    expect((await b.missed(alice, -1)).length).toBe(4);
    jobs.delete('X');
    fast.emit('removed', { jobId: 'X' });
    await settle();
    // What is left is the record's own snapshot: one event, not the replay.
    expect((await b.missed(alice, -1)).length).toBe(1);
    expect(await packets(alice)).toContain('"owner":"alice"');
    await b.close();
  });

  it('lets go of a finished task once its retention has passed, but not of a new task under its id', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const { b, jobs, run } = await bridge({ completedS: 5, failedS: 3_600 });
    jobs.set('X', job('alice', 1_000));
    await run('alice');
    const alice = record('alice', 1_000, TaskStatus.COMPLETED);
    expect((await b.missed(alice, -1)).length).toBe(4);
    vi.advanceTimersByTime(2_000);
    expect((await b.missed(alice, -1)).length).toBe(4);
    vi.advanceTimersByTime(5_000);
    expect((await b.missed(alice, -1)).length).toBe(1);

    // Bob's task under the id, begun before Alice's would have expired, keeps its replay.
    jobs.set('X', job('alice', 1_000));
    await run('alice');
    vi.advanceTimersByTime(3_000);
    jobs.set('X', job('bob', 2_000));
    await run('bob');
    vi.advanceTimersByTime(3_000);
    expect((await b.missed(record('bob', 2_000, TaskStatus.COMPLETED), -1)).length).toBe(4);
    await b.close();
  });
});
