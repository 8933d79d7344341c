import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { RedisEventBatch } from '../src/shims/bullmq-redis-event-batch.js';
import { TestEnv, until } from './harness.js';

/**
 * The Redis store's batching writer must be indistinguishable from BullMQ's own writes to every
 * reader (QueueEvents, the job's progress field), and keep the order of its calls.
 */
describe('Redis event batch writer', () => {
  let env: TestEnv | undefined;
  let redis: Redis | undefined;
  afterEach(async () => {
    redis?.disconnect();
    redis = undefined;
    await env?.cleanup();
    env = undefined;
  });

  async function setUp() {
    env = await TestEnv.create('redis');
    const store = await env.app().store();
    const writer = store.createEventWriter?.('fast_tasks');
    if (!writer) throw new Error('the Redis store has no event writer');
    const queue = store.createQueue('fast_tasks');
    const events = store.createQueueEvents('fast_tasks');
    await events.waitUntilReady();
    redis = new Redis(inject('redisUrl'));
    return { store, writer, queue, events };
  }

  it('writes progress and custom events as BullMQ does, in call order, in one script call per turn', async () => {
    const { store, queue, events } = await setUp();
    const jobs = await Promise.all([1, 2, 3].map((i) => queue.add('t', { i }, { jobId: `job-${i}` })));
    const seen: string[] = [];
    events.on('progress', ({ jobId, data }) => seen.push(`progress ${jobId} ${JSON.stringify(data)}`));
    events.on('stream' as 'progress', (raw: unknown) => {
      const e = raw as { task_id: string; seq: string; delta: string };
      seen.push(`stream ${e.task_id} ${e.seq} ${e.delta}`);
    });

    // A writer of our own on a client that counts what it sends: one script call for the lot.
    const counted = new Redis(inject('redisUrl'));
    await counted.ping();
    const sent: string[] = [];
    const send = counted.sendCommand.bind(counted);
    counted.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name);
      return (send as (...args: unknown[]) => unknown)(command, ...rest);
    }) as typeof counted.sendCommand;
    const batch = new RedisEventBatch(counted, `${store.namespace}:fast_tasks:`);
    try {
      // All in one turn of the event loop: one batch.
      const writes = [
        batch.progress('job-1', { step: 1 }),
        batch.publish({ event: 'stream', task_id: 'job-1', seq: 2, delta: 'a' }),
        batch.progress('job-2', { step: 1 }),
        batch.progress('job-1', { step: 3 }),
        batch.publish({ event: 'stream', task_id: 'job-3', seq: 1, delta: 'b c' }),
      ];
      await Promise.all(writes);
      await until(async () => seen.length === 5, 10_000, 'five events');
    } finally {
      counted.disconnect();
    }
    expect(seen).toEqual([
      'progress job-1 {"step":1}',
      'stream job-1 2 a',
      'progress job-2 {"step":1}',
      'progress job-1 {"step":3}',
      'stream job-3 1 b c',
    ]);
    // EVALSHA, and EVAL once more if the script was not loaded yet: one batch either way.
    expect(sent.filter((name) => name === 'evalsha')).toEqual(['evalsha']);
    // The job keeps the last progress, as job.updateProgress leaves it.
    const [one, two, three] = await Promise.all(jobs.map((j) => queue.getJob(j.id!)));
    expect(one?.progress).toEqual({ step: 3 });
    expect(two?.progress).toEqual({ step: 1 });
    expect(three?.progress).toBe(0);
  });

  it('rejects progress of a job that is gone, and only that write', async () => {
    const { writer, queue } = await setUp();
    await queue.add('t', {}, { jobId: 'here' });
    const results = await Promise.allSettled([
      writer.progress('here', { ok: true }),
      writer.progress('gone', { ok: false }),
    ]);
    expect(results[0]?.status).toBe('fulfilled');
    expect(results[1]?.status).toBe('rejected');
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/Missing key for job gone/);
  });

  it('trims the stream to the queue’s maxLenEvents, as BullMQ does, for custom events too', async () => {
    const { store, writer } = await setUp();
    const prefix = `${store.namespace}:fast_tasks`;
    await redis!.hset(`${prefix}:meta`, 'opts.maxLenEvents', 50);
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < 2_000; i++) writes.push(writer.publish({ event: 'marker', n: i }));
    await Promise.all(writes);
    const length = await redis!.xlen(`${prefix}:events`);
    // MAXLEN ~ trims whole radix-tree nodes: near the limit, never the 2,000 written.
    expect(length).toBeGreaterThanOrEqual(50);
    expect(length).toBeLessThan(500);
  });
});
