import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskFailedError } from '../src/core/errors.js';
import type { TaskRecord } from '../src/core/task.js';
import type { WireSubmitOptions } from '../src/core/submission.js';
import { STORE_KINDS, TestEnv, killAll, killEmbeddedMidRun, sleep, until, probe } from './harness.js';

/** Lines the probe's `sleep` wrote: `start <task> <pid>` / `finish <task> <pid>`. */
function runs(log: string): Array<{ event: string; pid: number }> {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [event, , pid] = line.split(' ');
      return { event: event!, pid: Number(pid) };
    });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.each(STORE_KINDS)('recovery on %s', (kind) => {
  let env: TestEnv | undefined;
  let dir: string;
  /** Store processes a test started (embedded): none may outlive it, nor write to `dir` after. */
  const procs: ChildProcess[] = [];
  afterEach(async () => {
    await killAll(procs);
    await env?.cleanup();
    env = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const track = async (created: Promise<TestEnv>) => (env = await created);

  /**
   * Submits `request`, SIGKILLs the worker (the whole process, on the embedded store) once the
   * task has started (its first line in `log`), and returns the task's record as a fresh worker
   * ends it.
   */
  async function killMidTask(
    queue: 'fast_tasks' | 'heavy_tasks',
    request: Record<string, unknown> & { task_id: string },
    log: string,
    options?: WireSubmitOptions,
  ): Promise<{ record: TaskRecord; victimPid: number }> {
    const heavy = queue === 'heavy_tasks' ? '1' : '0';
    const started = () => runs(log).length > 0;
    if (kind === 'embedded') {
      const { value, victimPid } = await killEmbeddedMidRun<TaskRecord>(
        procs,
        `embedded:${join(dir, 'store')}`,
        {
          SUBMIT: JSON.stringify(request),
          ...(options ? { SUBMIT_OPTIONS: JSON.stringify(options) } : {}),
          HEAVY: heavy,
        },
        started,
        { WAIT_ID: request.task_id, HEAVY: heavy },
        'record',
      );
      return { record: value, victimPid };
    }
    const shared = (env = await TestEnv.create(kind));
    const app = shared.app();
    const { handle, victimPid } = await shared.killWorkerMidRun(
      () => app.submitWire({ queue, request, options }),
      started,
    );
    await handle.get({ timeout: 30 }).catch(() => undefined);
    return { record: (await app.getTask(request.task_id, queue))!, victimPid };
  }

  it.each(['fast_tasks', 'heavy_tasks'] as const)(
    'runs a task again elsewhere when its worker is SIGKILLed mid-task, and never finishes it twice (%s)',
    async (queue) => {
      dir = mkdtempSync(join(tmpdir(), 'aiecs-kill-'));
      const log = join(dir, 'runs.log');
      const request = {
        task_name: 'sleep',
        user_id: 'u',
        mode: 'test',
        service: 'probe',
        task_id: `kill-${queue}`,
        input_data: { ms: 2_500, log },
      };
      const { record, victimPid } = await killMidTask(queue, request, log);

      expect(record.status).toBe('completed');
      // The run the kill cut short was a redelivery, not an attempt of the task's own.
      expect(record).toMatchObject({ attempt: 1, redeliveries: 1 });
      const lines = runs(log);
      const firstRun = lines[0]!;
      if (queue === 'fast_tasks') expect(firstRun.pid).toBe(victimPid);
      // The first run (in the killed worker or its child) never finished; its child died with it.
      expect(lines.filter((l) => l.event === 'finish')).toHaveLength(1);
      expect(lines.filter((l) => l.event === 'finish' && l.pid === firstRun.pid)).toHaveLength(0);
      await sleep(3_000);
      expect(alive(firstRun.pid)).toBe(false);
      expect(runs(log).filter((l) => l.event === 'finish')).toHaveLength(1);
    },
    // On the embedded store: two processes, each opening PGlite, on a busy machine.
    120_000,
  );

  it.each([
    { attempts: 2, status: 'completed', code: undefined },
    { attempts: 1, status: 'failed', code: 'E005' },
  ])(
    'does not spend an attempt on a SIGKILL redelivery, nor go past the attempts (attempts: $attempts)',
    async ({ attempts, status, code }) => {
      dir = mkdtempSync(join(tmpdir(), 'aiecs-budget-'));
      const log = join(dir, 'runs.log');
      // Killed in its first run; its re-run fails retryably once; a further run would succeed.
      const request = {
        task_name: 'crash_once',
        user_id: 'u',
        mode: 'test',
        service: 'probe',
        task_id: `budget-${attempts}`,
        input_data: { log, fail_times: 1 },
      };
      const { record } = await killMidTask('fast_tasks', request, log, { attempts });
      expect(record).toMatchObject({ status, attempt: attempts, max_attempts: attempts, redeliveries: 1 });
      if (code) expect(record.error).toMatchObject({ code, type: 'RetriesExhaustedError' });
      else expect(record.result).toEqual({ attempt: 2, runs: 3 });
      expect(runs(log)).toHaveLength(attempts + 1);
    },
    120_000,
  );

  it('drains on shutdown: running tasks finish, later ones stay queued for another worker', async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-drain-'));
    const env = await track(
      TestEnv.create(kind, { CELERY_WORKER_CONCURRENCY: 'fast_tasks=1,heavy_tasks=1' }),
    );
    const app = env.app();
    const first = await app.executeTask.delay(probe('sleep', { ms: 800 }));
    const second = await app.executeTask.delay(probe('sleep', { ms: 10 }));
    if (env.shared) {
      const worker = await env.workerProcess({ CELERY_WORKER_CONCURRENCY: 'fast_tasks=1,heavy_tasks=1' });
      await until(async () => (await app.getTask(first.id))?.status === 'running', 20_000, 'first running');
      worker.proc.kill('SIGTERM');
      const code = await new Promise((r) => worker.proc.once('exit', r));
      expect(code).toBe(0);
      expect(worker.output()).toContain('stopped');
    } else {
      const worker = await env.worker();
      await until(async () => (await app.getTask(first.id))?.status === 'running', 20_000, 'first running');
      await worker.close();
    }
    expect((await first.status()).status).toBe('completed');
    expect((await second.status()).status).toBe('pending');
    await env.worker();
    expect((await second.get({ timeout: 20 })).status).toBe('completed');
  });

  it('returns tasks still running at the drain deadline to the queue, losing nothing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-deadline-'));
    const log = join(dir, 'runs.log');
    const env = await track(TestEnv.create(kind));
    const app = env.app();
    const handle = await app.executeHeavyTask.delay(probe('sleep', { ms: 3_000, log }));
    const first = await env.worker();
    await until(async () => runs(log).length > 0, 20_000, 'task start');
    await first.close(0.3);
    const back = await handle.status();
    expect(back.status).toBe('pending');
    await env.worker();
    const record = await handle.get({ timeout: 30 });
    expect(record.status).toBe('completed');
    expect(runs(log).map((l) => l.event)).toEqual(['start', 'start', 'finish']);
  });

  it('survives a child process that crashes mid-task: the task is retried, then fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-crash-'));
    const env = await track(TestEnv.create(kind));
    await env.worker();
    const app = env.app();
    const handle = await app.executeHeavyTask.delay(probe('crash_child'), { attempts: 2 });
    const error = await handle.get({ timeout: 30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as TaskFailedError).remote).toMatchObject({ type: 'RetriesExhaustedError', code: 'E005' });
    expect((error as TaskFailedError).remote.message).toMatch(/child process \d+ died/);
    expect((await (await app.executeHeavyTask.delay(probe('echo'))).get({ timeout: 20 })).status).toBe(
      'completed',
    );
  });

  it('recycles child processes after --max-tasks-per-child and past --max-memory-per-child', async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-recycle-'));
    const env = await track(
      TestEnv.create(kind, { CELERY_WORKER_CONCURRENCY: 'fast_tasks=1,heavy_tasks=1' }),
    );
    const pidsOf = async (n: number) => {
      const app = env.app();
      const pids: number[] = [];
      for (let i = 0; i < n; i++)
        pids.push(
          (
            (await (await app.executeHeavyTask.delay(probe('echo'))).get({ timeout: 20 })).result as {
              pid: number;
            }
          ).pid,
        );
      return pids;
    };
    const byCount = await env.worker({ worker: { maxTasksPerChild: 2 } });
    const counted = await pidsOf(4);
    expect(counted[0]).toBe(counted[1]);
    expect(counted[2]).toBe(counted[3]);
    expect(counted[1]).not.toBe(counted[2]);
    await byCount.close(1);
    await env.worker({ worker: { maxMemoryPerChildKiB: 1 } });
    const byMemory = await pidsOf(3);
    expect(new Set(byMemory).size).toBe(3);
  });
});
