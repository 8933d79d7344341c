// Issue 17 end to end: one real `aiecs worker --celery` process (built dist: the bridge and the
// results relay together) and the real Python Celery client (Debian's python3-celery) doing what
// the seed's producers do: `execute_task.delay(...)` then `.get(timeout=30)`, `.state`/`.info`
// while a task runs, and `revoke(terminate=True)`. Celery's lists and results live in Redis db 13
// of the test run's server (flushed before each test; no other test file uses it).
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../src/core/task.js';
import type { AiecsApp } from '../src/engine/app.js';
import { TestEnv, killNow, until } from './harness.js';
import { celeryPython, runPython } from './celery/python.js';
import { startCeleryWorker } from './celery/celery-worker.js';

const FAST = 'aiecs.tasks.worker.execute_task';
const HEAVY = 'aiecs.tasks.worker.execute_heavy_task';
const CELERY_DB = 13;

let env: TestEnv;
let app: AiecsApp;
let celeryUrl: string;
let redis: Redis;
const procs: ChildProcess[] = [];

/** `aiecs worker --celery` (bridge + relay) in its own process; resolves once both are up. */
async function startWorker(args: string[] = []): Promise<ChildProcess> {
  const worker = await startCeleryWorker({
    brokerUrl: env.brokerUrl,
    namespace: env.namespace,
    celeryUrl,
    args,
    ready: [/celery: .*queues/, /celery results: /],
    procs,
  });
  return worker.proc;
}

interface Got {
  id: string;
  state: string;
  result?: Record<string, unknown>;
  raised?: string;
  module?: string;
  args?: string[];
}

/** Python: `.delay()` each call, then `.get(timeout=30)` each, in one producer process. */
async function delayGet(calls: { name: string; args?: unknown[]; kwargs?: Record<string, unknown> }[]) {
  return JSON.parse(await runPython('delay_get.py', [celeryUrl, JSON.stringify(calls)])) as Got[];
}

async function pyState(id: string) {
  return JSON.parse(await runPython('async_result.py', ['state', celeryUrl, id])) as {
    state: string;
    info: Record<string, unknown> | null;
    ready: boolean;
  };
}

async function pyGet(id: string) {
  return JSON.parse(await runPython('async_result.py', ['get', celeryUrl, id, '30'])) as Omit<
    Got,
    'id' | 'state'
  >;
}

async function record(taskId: string, check: (r: TaskRecord) => boolean): Promise<TaskRecord> {
  return until(
    async () => {
      const r = await app.getTask(taskId);
      return r && check(r) ? r : undefined;
    },
    30_000,
    `task ${taskId}`,
  );
}

const seedArgs = (taskName: string, input: Record<string, unknown>) => [
  taskName,
  'user-1',
  null,
  0,
  'test',
  'probe',
  input,
  {},
];

beforeAll(() => {
  celeryPython(); // a clear error now when Python's Celery is missing
});

beforeEach(async () => {
  env = await TestEnv.create('redis');
  app = env.app();
  celeryUrl = `${env.brokerUrl.replace(/\/\d*$/, '')}/${CELERY_DB}`;
  redis = new Redis(celeryUrl);
  await redis.flushdb();
});

afterEach(async () => {
  for (const proc of procs.splice(0))
    if (proc.exitCode === null && proc.signalCode === null) await killNow(proc);
  await redis.flushdb();
  redis.disconnect();
  await env.cleanup();
});

describe('Celery end to end: Python producer -> aiecs worker --celery -> Python AsyncResult', () => {
  it("delay() then .get(timeout=30) of both task names, positional and keyword, returns the original worker's body; each is an aiecs task with its celery_id", async () => {
    await startWorker();
    const chosen = `chosen-${randomBytes(4).toString('hex')}`;
    const got = await delayGet([
      { name: FAST, args: seedArgs('echo', { n: 1 }) },
      {
        name: HEAVY,
        kwargs: {
          task_name: 'echo',
          user_id: 'user-2',
          task_id: chosen,
          step: 2,
          mode: 'test',
          service: 'probe',
          input_data: { n: 2 },
          context: { language: 'en' },
        },
      },
      // Mixed: the first two positionally, the rest by keyword (defaults for the others).
      {
        name: FAST,
        args: ['echo', 'user-3'],
        kwargs: { mode: 'test', service: 'probe', input_data: { n: 3 } },
      },
      // Without --celery-raise-failures a failure is the original worker's body under SUCCESS.
      { name: HEAVY, args: seedArgs('fail', { message: 'went wrong' }) },
    ]);
    expect(got.map((g) => g.raised)).toEqual([undefined, undefined, undefined, undefined]);
    expect(got.map((g) => g.state)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
    expect(got[0]!.result).toMatchObject({ status: 'completed', task: 'echo', result: { echo: { n: 1 } } });
    expect(got[1]!.result).toMatchObject({ status: 'completed', task: 'echo', result: { echo: { n: 2 } } });
    expect(got[2]!.result).toMatchObject({ status: 'completed', task: 'echo', result: { echo: { n: 3 } } });
    expect(got[3]!.result).toEqual({ status: 'failed', task: 'fail', error: 'went wrong' });
    expect(Object.keys(got[0]!.result!).sort()).toEqual(['result', 'status', 'task']);

    // In aiecs: ordinary tasks, keyed by the seed's task_id when given, the Celery id beside it.
    const [a, b, c, d] = await Promise.all([
      record(got[0]!.id, () => true),
      record(chosen, () => true),
      record(got[2]!.id, () => true),
      record(got[3]!.id, () => true),
    ]);
    expect(a).toMatchObject({
      status: 'completed',
      queue: 'fast_tasks',
      celery_id: got[0]!.id,
      user_id: 'user-1',
    });
    expect(b).toMatchObject({
      status: 'completed',
      queue: 'heavy_tasks',
      celery_id: got[1]!.id,
      user_id: 'user-2',
      step: 2,
      context: { language: 'en' },
    });
    expect(c).toMatchObject({ status: 'completed', queue: 'fast_tasks', user_id: 'user-3' });
    expect(d).toMatchObject({ status: 'failed', queue: 'heavy_tasks', celery_id: got[3]!.id });
    expect(await app.getTask(got[1]!.id)).toBeUndefined();
    // The store knows the seed's task_id by its Celery id (what Flower clients ask with); a task
    // whose id is its Celery id needs no alias.
    const store = await app.store();
    expect(await store.taskIdForCelery(got[1]!.id)).toBe(chosen);
    expect(await store.taskIdForCelery(got[0]!.id)).toBeUndefined();
    // Everything taken was acked.
    expect(await redis.hlen('unacked')).toBe(0);
  });

  it("with --celery-raise-failures a failing task's .get() raises the remote error's type name", async () => {
    await startWorker(['--celery-raise-failures']);
    const got = await delayGet([
      { name: FAST, args: seedArgs('fail', { message: 'boom here' }) },
      { name: HEAVY, args: seedArgs('fail', { validation: true }) },
      { name: FAST, args: seedArgs('echo', { ok: true }) },
    ]);
    expect(got[0]).toMatchObject({ state: 'FAILURE', raised: 'TypeError', args: ['boom here'] });
    expect(got[1]).toMatchObject({ state: 'FAILURE', raised: 'ValidationError' });
    expect(got[2]).toMatchObject({
      state: 'SUCCESS',
      result: { status: 'completed', result: { echo: { ok: true } } },
    });
    expect((await app.getTask(got[0]!.id))?.status).toBe('failed');
  });

  it('.state/.info show a running task’s progress; revoke(terminate=True) ends it REVOKED in Python and cancelled in aiecs', async () => {
    await startWorker(['--celery-raise-failures']);
    const [id] = JSON.parse(
      await runPython('produce.py', [
        celeryUrl,
        JSON.stringify([
          {
            name: FAST,
            via: 'delay',
            args: ['progress_steps', 'user-1', null, 4, 'test', 'probe', { steps: 3, ms: 60_000 }, {}],
          },
        ]),
      ]),
    ) as string[];
    await record(id!, (r) => r.status === 'running');
    const progress = await until(
      async () => {
        const s = await pyState(id!);
        return s.state === 'PROGRESS' ? s : undefined;
      },
      20_000,
      'PROGRESS in Python',
    );
    expect(progress.ready).toBe(false);
    // The seed's progress meta: its step argument, and the percentage and message reported.
    expect(progress.info).toMatchObject({
      status: 'running',
      task: 'progress_steps',
      step: 4,
      progress: 33,
      message: 'step 1/3',
      task_id: id,
    });

    await runPython('revoke.py', [celeryUrl, '--terminate', id!]);
    const got = await pyGet(id!);
    expect(got).toMatchObject({ raised: 'TaskRevokedError' });
    expect(await pyState(id!)).toMatchObject({ state: 'REVOKED', ready: true });
    expect((await record(id!, () => true)).status).toBe('cancelled');
  });
});
