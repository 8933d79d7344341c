import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { Job, Queue, Redis, Worker } from '../engine/bullmq.js';
import { LeanJob, LeanQueue, withTaskName, withoutTaskName } from './bullmq-lean-job.js';
import { installedVersion, sourceHash } from './test-pins.js';

const require = createRequire(import.meta.url);
const { QueueBase, QueueGetters } = require('bullmq') as {
  QueueBase: { prototype: object };
  QueueGetters: { prototype: { getJob: unknown } };
};

/** The protected `Job` getter of a class's prototype chain (QueueBase's unless overridden). */
const jobGetter = (proto: object) => Object.getOwnPropertyDescriptor(proto, 'Job')?.get;

/**
 * Pins what bullmq-lean-job.ts relies on in BullMQ. If this fails after an upgrade, read the new
 * classes/job.js and queue-base.js: do Job.create and createBulk still store what asJSON returns
 * (data as a string of this.data, opts as this.opts), and do a queue's getJob (Job.fromId) and a
 * worker's createJob still build jobs through `this.Job.fromJSON`? Then update the pins.
 */
describe('the lean job shim pins BullMQ', () => {
  it('is written against bullmq 6.7.6', () => {
    expect(installedVersion('bullmq')).toBe('6.7.6');
  });

  it('Queue and Worker make their jobs through the Job getter; adds store asJSON; reads go through fromJSON', () => {
    expect(String(jobGetter(QueueBase.prototype))).toMatch(/return (job_1\.)?Job;/);
    expect(String((Queue.prototype as unknown as Record<string, unknown>).addJob)).toContain(
      'this.Job.create(this,',
    );
    expect(String(Queue.prototype.addBulk)).toContain('this.Job.createBulk(this,');
    const statics = Job as unknown as Record<string, unknown>;
    expect(sourceHash(statics.create)).toBe(
      '70edec3d0fd22b43e9cc36f64e8995610aa45536d1dc514ab3af251a290e485b',
    );
    expect(sourceHash(statics.createBulk)).toBe(
      '31467bf494800fc7e3d8034f1cb3bd2f0c249770ff857fb9168e00ecc9a1c99a',
    );
    expect(sourceHash(statics.fromId)).toBe(
      '360a89c1bceb55c17ebadf9533233dd85e17682b9ab52c9d0d6e7088afe9da3b',
    );
    expect(sourceHash(statics.fromJSON)).toBe(
      '9bd7a9dff51bb0169d3e77e65696b444e151187c9d8cd3d4a123eba625d3a922',
    );
    expect(sourceHash(Job.prototype.asJSON)).toBe(
      'cac60e3fda2b01abceacdc1948a7301d31a55f2e97a7012e3fb8e202eb149da7',
    );
    expect(sourceHash(QueueGetters.prototype.getJob)).toBe(
      '496ef740c7bc19d332e365a821acb8bce028998f7bd4b60e22f90f502eb1ba8f',
    );
    expect(sourceHash((Worker.prototype as unknown as Record<string, unknown>).createJob)).toBe(
      'f147c2a66bca5fdd12cd63719ebff76502533e5935a9b61224234c105116ec73',
    );
  });
});

describe('a lean job', () => {
  // Never connects: nothing listens on port 1, and the client does not retry.
  const connection = new Redis({
    port: 1,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  const queue = new LeanQueue('fast_tasks', { connection, prefix: 'pfx' });
  queue.on('error', () => undefined);
  afterAll(async () => {
    await queue.close().catch(() => undefined);
    connection.disconnect();
  });

  const data = { task_name: 'noop', user_id: 'bench', mode: 'bench', service: 'noop' };
  const opts = { jobId: 'task-1', priority: 91, attempts: 3 };

  it('is what a LeanQueue makes', () => {
    expect((queue as unknown as { Job: unknown }).Job).toBe(LeanJob);
  });

  it('is stored without its task name and job id, and keeps both in memory', () => {
    const job = new LeanJob(queue, 'noop', { ...data }, { ...opts }, 'task-1');
    const json = job.asJSON();
    expect(JSON.parse(json.data)).toEqual({ user_id: 'bench', mode: 'bench', service: 'noop' });
    expect(json.opts).toEqual({ priority: 91, attempts: 3 });
    // Every field of the job hash fits Redis's compact encoding (64 bytes a value).
    expect(json.data.length).toBeLessThanOrEqual(64);
    expect(JSON.stringify(json.opts).length).toBeLessThanOrEqual(64);
    expect(job.data).toEqual(data);
    expect(job.opts.jobId).toBe('task-1');
  });

  it('reads back whole: from its lean form, and from the full form earlier versions stored', () => {
    const lean = new LeanJob(queue, 'noop', { ...data }, { ...opts }, 'task-1').asJSON();
    const read = LeanJob.fromJSON(queue, lean, 'task-1');
    expect(read.data).toEqual(data);
    // Key order as submitted: task_name first.
    expect(Object.keys(read.data as object)[0]).toBe('task_name');
    const full = new Job(queue, 'noop', { ...data }, { ...opts }, 'task-1').asJSON();
    expect(JSON.parse(full.data)).toEqual(data);
    expect(LeanJob.fromJSON(queue, full, 'task-1').data).toEqual(data);
  });

  it('leaves data that is not a task, or whose task name is not the job name, as it is', () => {
    const link = { root: 'r', of: { id: 'x', queue: 'fast_tasks' } };
    expect(withoutTaskName(link, 'noop')).toBe(link);
    expect(withTaskName(link, '__await')).toBe(link);
    const other = { ...data, task_name: 'other' };
    expect(withoutTaskName(other, 'noop')).toBe(other);
    expect(withTaskName(other, 'noop')).toBe(other);
    expect(withTaskName(undefined, 'noop')).toBeUndefined();
  });
});
