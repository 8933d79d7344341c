// `aiecs retry`, `aiecs pause` and `aiecs resume` (the built CLI) on a Redis store: the same
// engine calls as the dashboard's HTTP actions.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_QUEUE } from '../core/task.js';
import { TestEnv, probe, until } from '../../test/harness.js';

const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function aiecs(
  env: TestEnv,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const store = ['--broker', env.brokerUrl, '--namespace', env.namespace];
  const clean: NodeJS.ProcessEnv = { ...process.env, AIECS_LOG_LEVEL: 'silent' };
  for (const name of ['AIECS_BROKER_URL', 'CELERY_BROKER_URL', 'REDIS_URL', 'AIECS_JWT_SECRET'])
    delete clean[name];
  return new Promise((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args, ...store],
      { env: clean, timeout: 30_000 },
      (error, stdout, stderr) =>
        done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('aiecs retry, pause and resume on redis', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await TestEnv.create('redis');
    await env.worker();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('pauses and resumes queues, refusing an unknown one', async () => {
    const paused = await aiecs(env, ['pause', 'fast_tasks', '--json']);
    expect(paused.code, paused.stderr).toBe(0);
    expect(JSON.parse(paused.stdout)).toEqual({ queues: [{ queue: 'fast_tasks', paused: true }] });
    const app = env.app();
    expect(await (await app.queue(FAST_QUEUE)).isPaused()).toBe(true);
    const resumed = await aiecs(env, ['resume', 'fast_tasks']);
    expect(resumed.stdout.trim()).toBe('fast_tasks: running');
    expect(await (await app.queue(FAST_QUEUE)).isPaused()).toBe(false);
    const unknown = await aiecs(env, ['pause', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('nope');
  });

  it('retries a failed task and refuses a completed one', async () => {
    const app = env.app();
    const failed = await app.executeTask.delay(probe('fail', {}), { attempts: 1 });
    await until(async () => (await app.getTask(failed.id))?.status === 'failed', 20_000, 'the task to fail');
    const run = await aiecs(env, ['retry', failed.id, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ task_id: failed.id, status: 'pending', attempt: 2 });
    const again = await until(
      async () => {
        const record = await app.getTask(failed.id);
        return record?.status === 'failed' && record.runs.length === 1 ? record : undefined;
      },
      20_000,
      'the retried task to fail again',
    );
    expect(again.attempt).toBe(2);
    expect(again.runs[0]).toMatchObject({ attempt: 1, status: 'failed' });

    const ok = await app.executeTask.delay(probe('echo', { x: 1 }));
    await until(
      async () => (await app.getTask(ok.id))?.status === 'completed',
      20_000,
      'the task to complete',
    );
    const refused = await aiecs(env, ['retry', ok.id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is completed');
  });
});
