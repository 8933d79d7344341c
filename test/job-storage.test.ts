// How a task's job is stored (issue 18, Redis memory per waiting task): its data without the task
// name (the job's name) and its options without the job id (the job's key), on every store; read
// back whole by the app, the worker and the history's summaries; and a job the previous version
// stored in full still runs, under the same id and fingerprint.
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PRIORITY, FAST_QUEUE, toBullPriority } from '../src/core/task.js';
import { Job } from '../src/engine/bullmq.js';
import type { Store } from '../src/engine/store.js';
import { STORE_KINDS, TestEnv, probe } from './harness.js';

interface StoredJob {
  data: Record<string, unknown>;
  opts: Record<string, unknown>;
  /** Redis only: the job hash's encoding. */
  encoding?: string;
}

/** The job as the store holds it: the Redis hash, or the row of BullMQ's PostgreSQL `job` table. */
async function storedJob(env: TestEnv, store: Store, id: string): Promise<StoredJob> {
  if (env.kind === 'redis') {
    const redis = new Redis(env.brokerUrl);
    try {
      const key = `${env.namespace}:${FAST_QUEUE}:${id}`;
      const [hash, encoding] = await Promise.all([redis.hgetall(key), redis.object('ENCODING', key)]);
      return {
        data: JSON.parse(hash.data!) as Record<string, unknown>,
        opts: JSON.parse(hash.opts!) as Record<string, unknown>,
        encoding: String(encoding),
      };
    } finally {
      redis.disconnect();
    }
  }
  const db = store.database!;
  const sql = `SELECT data, opts FROM "${db.schema}".job WHERE queue = $1 AND id = $2`;
  if ('pool' in db) return (await db.pool.query(sql, [FAST_QUEUE, id])).rows[0] as unknown as StoredJob;
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query(sql, [FAST_QUEUE, id])).rows[0] as StoredJob;
  } finally {
    await client.end();
  }
}

const OPTS = { priority: toBullPriority(DEFAULT_PRIORITY[FAST_QUEUE]), attempts: 3 };

describe.each(STORE_KINDS)('a task job as stored on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('leaves out the task name and the job id, and is read back whole', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const handle = await app.executeTask.delay(probe('echo'));
    const stored = await storedJob(env, await app.store(), handle.id);
    expect(stored.data).toEqual({ user_id: 'user-1', mode: 'test', service: 'probe' });
    expect(stored.opts).toEqual(OPTS);
    // Every field at most 64 bytes: Redis keeps the hash in its compact encoding.
    if (kind === 'redis') expect(stored.encoding).toBe('listpack');
    // Read by another process (no submit of its own to remember): the name is the job's.
    const pending = await env.app().getTask(handle.id);
    expect(pending).toMatchObject({ status: 'pending', task_name: 'echo', mode: 'test', service: 'probe' });
    // The worker calls the service method by the task name it reads back.
    await env.worker();
    expect(await handle.get({ timeout: 20 })).toMatchObject({ status: 'completed', task_name: 'echo' });
    expect(await env.app().getTask(handle.id)).toMatchObject({ status: 'completed', task_name: 'echo' });
  });

  it('runs a task the previous version stored in full, and knows it by its fingerprint', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const queue = await app.queue(FAST_QUEUE);
    // BullMQ's own Job, as the previous version's queue made every task's job.
    const data = {
      task_name: 'echo',
      user_id: 'user-1',
      mode: 'test',
      service: 'probe',
      input_data: { a: 1 },
    };
    await Job.create(queue, 'echo', data, { ...OPTS, jobId: 'full-1' });
    const stored = await storedJob(env, await app.store(), 'full-1');
    expect(stored.data).toEqual(data);
    expect(stored.opts).toEqual({ ...OPTS, jobId: 'full-1' });
    // The same request under its id is that task; another request under it is a conflict.
    const again = await app.executeTask.delay(probe('echo', { a: 1 }, { taskId: 'full-1' }));
    expect(again.created).toBe(false);
    await expect(app.executeTask.delay(probe('echo', { a: 2 }, { taskId: 'full-1' }))).rejects.toThrow(
      /full-1/,
    );
    await env.worker();
    const record = await app.waitFor('full-1', FAST_QUEUE, { timeout: 20 });
    expect(record).toMatchObject({ status: 'completed', task_name: 'echo', result: { echo: { a: 1 } } });
  });
});

describe('the task history reads job summaries whole on redis', () => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('names a task stored lean and one stored in full', async () => {
    env = await TestEnv.create('redis');
    const app = env.app();
    const store = await app.store();
    const lean = await app.executeTask.delay(probe('echo'));
    const data = { task_name: 'echo', user_id: 'user-1', mode: 'test', service: 'probe' };
    await Job.create(await app.queue(FAST_QUEUE), 'echo', data, { ...OPTS, jobId: 'full-1' });
    const [a, b] = await store.readJobSummaries!(FAST_QUEUE, [lean.id, 'full-1']);
    expect(a?.data).toEqual(data);
    expect(b?.data).toEqual(data);
  });
});
