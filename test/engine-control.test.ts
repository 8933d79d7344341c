import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TaskCancelledError,
  TaskFailedError,
  TaskTimeoutError,
  WaitTimeoutError,
} from '../src/core/errors.js';
import type { QueueKind, TaskRequest } from '../src/core/task.js';
import type { AiecsApp } from '../src/engine/app.js';
import { STORE_KINDS, TestEnv, until, probe } from './harness.js';

const submit = (app: AiecsApp, queue: QueueKind, request: TaskRequest, options = {}) =>
  queue === 'fast_tasks'
    ? app.executeTask.delay(request, options)
    : app.executeHeavyTask.delay(request, options);

const running = (app: AiecsApp, id: string) =>
  until(async () => (await app.getTask(id))?.status === 'running', 20_000, `task ${id} running`);

describe.each(STORE_KINDS)('time limits, cancel and retries on %s', (kind) => {
  let env: TestEnv;
  let dir: string | undefined;
  afterEach(async () => {
    await env?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it.each(['fast_tasks', 'heavy_tasks'] as const)(
    'soft limit aborts the signal and lets the task clean up (%s)',
    async (queue) => {
      env = await TestEnv.create(kind);
      await env.worker();
      const app = env.app();
      const handle = await submit(app, queue, probe('soft_cleanup', { ms: 10_000 }), {
        softTimeLimit: 0.3,
        timeLimit: 5,
      });
      const error = await handle.get({ timeout: 20 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskTimeoutError);
      expect(error).toMatchObject({ limit: 'soft', seconds: 0.3 });
      const record = await handle.status();
      expect(record).toMatchObject({ status: 'timed_out', attempt: 1, progress: 99 });
      expect(record.error).toMatchObject({ type: 'TaskTimeoutError', code: 'E002' });
      // Ended by the limit, not by running its 10 s course.
      expect(record.duration_ms).toBeLessThan(10_000);
    },
  );

  it('hard limit ends a fast task that ignores its signal', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const handle = await app.executeTask.delay(probe('ignore_signal', { ms: 8_000 }), {
      softTimeLimit: 0.2,
      timeLimit: 0.6,
    });
    const error = await handle.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TASK_TIMEOUT', limit: 'hard', seconds: 0.6 });
    const loose = await app.executeTask.delay(probe('ignore_signal', { ms: 8_000 }), { timeLimit: 0.5 });
    const hard = await loose.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(hard).toMatchObject({ code: 'TASK_TIMEOUT', limit: 'hard', seconds: 0.5 });
    // Ended by the hard limit, not by running its 8 s course.
    expect((await loose.status()).duration_ms).toBeLessThan(8_000);
  });

  it('hard limit kills a heavy task stuck in CPU work, and the pool carries on', async () => {
    env = await TestEnv.create(kind);
    const worker = await env.worker();
    const app = env.app();
    const first = await (await app.executeHeavyTask.delay(probe('echo'))).get({ timeout: 20 });
    const childPid = (first.result as { pid: number }).pid;
    const stuck = await app.executeHeavyTask.delay(probe('spin', { ms: 20_000 }), {
      softTimeLimit: 0.3,
      timeLimit: 0.8,
    });
    const error = await stuck.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskTimeoutError);
    expect(error).toMatchObject({ limit: 'hard', seconds: 0.8 });
    const after = await (await app.executeHeavyTask.delay(probe('echo'))).get({ timeout: 20 });
    expect((after.result as { pid: number }).pid).not.toBe(process.pid);
    // The spin ran on the one idle child, which the hard limit killed; a fresh child took over.
    expect(worker.childPids()).not.toContain(childPid);
    expect(() => process.kill(childPid, 0)).toThrow();
    expect(worker.childPids().length).toBeGreaterThan(0);
  });

  it('cancels a pending task so that it never runs, delayed or not', async () => {
    env = await TestEnv.create(kind);
    dir = mkdtempSync(join(tmpdir(), 'aiecs-log-'));
    const log = join(dir, 'runs.log');
    const app = env.app();
    const waiting = await app.executeTask.delay(probe('sleep', { ms: 10, log }));
    const delayed = await app.executeTask.delay(probe('sleep', { ms: 10, log }), { countdown: 60 });
    const getting = waiting.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(await waiting.cancel()).toEqual({ task_id: waiting.id, status: 'cancelled', cancelled: true });
    expect((await delayed.cancel()).status).toBe('cancelled');
    expect(await getting).toBeInstanceOf(TaskCancelledError);
    expect((await waiting.status()).status).toBe('cancelled');
    await env.worker();
    await expect(delayed.get({ timeout: 20 })).rejects.toBeInstanceOf(TaskCancelledError);
    await expect(waiting.get({ timeout: 20 })).rejects.toBeInstanceOf(TaskCancelledError);
    const record = await delayed.status();
    expect(record).toMatchObject({
      status: 'cancelled',
      error: { type: 'TaskCancelledError', code: 'E004' },
    });
    expect(existsSync(log)).toBe(false);
    // Terminal states never change.
    expect(await waiting.cancel()).toEqual({ task_id: waiting.id, status: 'cancelled', cancelled: false });
  });

  it.each(['fast_tasks', 'heavy_tasks'] as const)('cancels a running task (%s)', async (queue) => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const handle = await submit(app, queue, probe('sleep', { ms: 15_000 }));
    await running(app, handle.id);
    expect((await handle.cancel()).status).toBe('running');
    await expect(handle.get({ timeout: 10 })).rejects.toBeInstanceOf(TaskCancelledError);
    expect(await handle.status()).toMatchObject({ status: 'cancelled', attempt: 1 });
  });

  it('kills a heavy task that ignores cancel once the grace period is over', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const handle = await app.executeHeavyTask.delay(probe('spin', { ms: 20_000 }));
    await running(app, handle.id);
    await handle.cancel();
    await expect(handle.get({ timeout: 10 })).rejects.toBeInstanceOf(TaskCancelledError);
  });

  it('cancels a running task from another process', async () => {
    env = await TestEnv.create(kind);
    if (!env.shared) {
      // One process owns the embedded store; a second app object in it stands in for another caller.
      await env.worker();
    } else {
      await env.workerProcess();
    }
    const submitter = env.app();
    const canceller = env.app();
    for (const queue of ['fast_tasks', 'heavy_tasks'] as const) {
      const handle = await submit(submitter, queue, probe('sleep', { ms: 15_000 }));
      await running(canceller, handle.id);
      expect((await canceller.cancel(handle.id)).cancelled).toBe(true);
      await expect(handle.get({ timeout: 10 })).rejects.toBeInstanceOf(TaskCancelledError);
    }
  });

  it('cancels a running task whose worker missed the control message, on its next heartbeat', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    for (const queue of ['fast_tasks', 'heavy_tasks'] as const) {
      const handle = await submit(app, queue, probe('sleep', { ms: 15_000 }));
      await running(app, handle.id);
      // Only the stored request, no message: as if the worker had been reconnecting when it went out.
      await (await app.store()).requestCancel(handle.id, 60_000);
      await expect(handle.get({ timeout: 10 })).rejects.toBeInstanceOf(TaskCancelledError);
      expect(await handle.status()).toMatchObject({ status: 'cancelled' });
    }
  });

  it('retries retryable errors with backoff and succeeds', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    // A retry with a backoff waits as a delayed job; one without would go straight back to waiting.
    const events = (await app.store()).createQueueEvents('fast_tasks');
    const delayed: string[] = [];
    events.on('delayed', ({ jobId }) => delayed.push(jobId));
    try {
      await events.waitUntilReady();
      const handle = await app.executeTask.delay(probe('flaky', { fail_times: 2 }), { attempts: 3 });
      const record = await handle.get({ timeout: 20 });
      expect(record).toMatchObject({ status: 'completed', attempt: 3, result: { attempt: 3 } });
      await until(async () => delayed.length >= 2, 5_000, 'two delayed events');
      expect(delayed).toEqual([handle.id, handle.id]);
    } finally {
      await events.close();
    }
    const http = await app.executeTask.delay(probe('fail', { status: 503 }), { attempts: 2 });
    const e = await http.get({ timeout: 20 }).catch((x: unknown) => x);
    expect((e as TaskFailedError).remote).toMatchObject({ type: 'RetriesExhaustedError', code: 'E005' });
    expect(await http.status()).toMatchObject({ status: 'failed', attempt: 2, max_attempts: 2 });
  });

  it('does not retry errors that are not retryable', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const handle = await app.executeTask.delay(probe('fail', { message: 'bad input' }), { attempts: 5 });
    const error = await handle.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as TaskFailedError).remote).toMatchObject({
      type: 'TypeError',
      code: 'E003',
      message: 'bad input',
    });
    expect((error as TaskFailedError).remote.stack).toContain('probe-services.mjs');
    const record = await handle.status();
    expect(record).toMatchObject({ status: 'failed', attempt: 1 });
    const validation = await app.executeTask.delay(probe('fail', { validation: true }), { attempts: 5 });
    const v = await validation.get({ timeout: 20 }).catch((e: unknown) => e);
    expect((v as TaskFailedError).remote).toMatchObject({ type: 'ValidationError', code: 'E001' });
    // The worker is still serving after every failure.
    expect((await (await app.executeTask.delay(probe('echo'))).get({ timeout: 20 })).status).toBe(
      'completed',
    );
  });

  it('rejects get() with WaitTimeoutError while the task goes on', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const handle = await app.executeTask.delay(probe('sleep', { ms: 1_500 }));
    await expect(handle.get({ timeout: 0.2 })).rejects.toBeInstanceOf(WaitTimeoutError);
    expect((await handle.get({ timeout: 20 })).status).toBe('completed');
  });
});
