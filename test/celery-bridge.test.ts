// The Celery bridge (issue 17) driven by the real Python client (Debian's python3-celery):
// `aiecs worker --celery` (built dist) on a Redis store, Celery's lists in Redis db 11 of the
// test run's server (flushed before each test; no other test file uses it).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../src/core/task.js';
import type { AiecsApp } from '../src/engine/app.js';
import { silentLogger } from '../src/core/logger.js';
import { KombuIntake } from '../src/worker/celery/kombu-intake.js';
import { TEST_ENV, TestEnv, killNow, until } from './harness.js';
import { celeryPython, runPython } from './celery/python.js';
import { startCeleryWorker, type CeleryWorker } from './celery/celery-worker.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../dist/cli/main.js');
const FAST = 'aiecs.tasks.worker.execute_task';
const HEAVY = 'aiecs.tasks.worker.execute_heavy_task';
const CELERY_DB = 11;

let env: TestEnv;
let app: AiecsApp;
let celeryUrl: string;
let redis: Redis;
let dir: string;
const procs: ChildProcess[] = [];

/** `aiecs worker --celery` in its own process; resolves once its ready line is out. */
function startBridge(args: string[] = [], extraEnv: Record<string, string> = {}): Promise<CeleryWorker> {
  return startCeleryWorker({
    brokerUrl: env.brokerUrl,
    namespace: env.namespace,
    celeryUrl,
    args,
    env: extraEnv,
    procs,
  });
}

async function produce(calls: unknown[]): Promise<string[]> {
  return JSON.parse(await runPython('produce.py', [celeryUrl, JSON.stringify(calls)])) as string[];
}

interface PyResult {
  id: string;
  state: string;
  ready: boolean;
  exc_type?: string;
  exc_message?: string;
  result?: unknown;
}

async function results(ids: string[]): Promise<PyResult[]> {
  return JSON.parse(await runPython('result.py', [celeryUrl, ...ids])) as PyResult[];
}

/** The task's record once `check` holds. */
async function record(
  taskId: string,
  check: (r: TaskRecord) => boolean = (r) =>
    ['completed', 'failed', 'timed_out', 'cancelled'].includes(r.status),
  timeoutMs = 30_000,
): Promise<TaskRecord> {
  return until(
    async () => {
      const r = await app.getTask(taskId);
      return r && check(r) ? r : undefined;
    },
    timeoutMs,
    `task ${taskId}`,
  );
}

const seedArgs = (taskName: string, input: Record<string, unknown>, taskId: string | null = null) => [
  taskName,
  'user-1',
  taskId,
  0,
  'test',
  'probe',
  input,
  {},
];

beforeAll(() => {
  celeryPython(); // a clear error now when Python's Celery is missing
  dir = mkdtempSync(join(tmpdir(), 'aiecs-celery-'));
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
  redis.disconnect();
  await env.cleanup();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Celery bridge', () => {
  it('runs both task names from delay() and send_task, positional and keyword, routed fast and heavy', async () => {
    const bridge = await startBridge();
    expect(bridge.output()).toMatch(/celery: redis:\/\/.*\/11 queues fast_tasks,heavy_tasks,celery/);
    const chosen = `chosen-${randomBytes(4).toString('hex')}`;
    const ids = await produce([
      { name: FAST, via: 'delay', args: seedArgs('echo', { n: 1 }) },
      {
        name: HEAVY,
        via: 'send_task',
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
      {
        name: FAST,
        via: 'apply_async',
        args: ['echo', 'user-3'],
        kwargs: { mode: 'test', service: 'probe' },
      },
    ]);
    expect(ids).toHaveLength(3);

    const fast = await record(ids[0]!);
    expect(fast).toMatchObject({
      status: 'completed',
      queue: 'fast_tasks',
      celery_id: ids[0],
      input_data: { n: 1 },
      priority: 10, // the seed's route priority, as aiecs's own default
    });
    // The seed's task_id argument is the aiecs task id; the Celery id is kept beside it.
    const heavy = await record(chosen);
    expect(heavy).toMatchObject({
      status: 'completed',
      queue: 'heavy_tasks',
      celery_id: ids[1],
      user_id: 'user-2',
      step: 2,
      context: { language: 'en' },
      priority: 5,
    });
    expect(await app.getTask(ids[1]!)).toBeUndefined();
    const mixed = await record(ids[2]!);
    expect(mixed).toMatchObject({ status: 'completed', user_id: 'user-3', queue: 'fast_tasks' });
    // Everything taken was acked.
    expect(await redis.hlen('unacked')).toBe(0);
    expect(await redis.zcard('unacked_index')).toBe(0);
  });

  it('refuses --celery without a Redis broker in one line with the flag to pass', async () => {
    const bare: Record<string, string | undefined> = { ...process.env, ...TEST_ENV };
    for (const name of ['CELERY_BROKER_URL', 'AIECS_BROKER_URL', 'REDIS_URL']) delete bare[name];
    const proc = spawn(
      process.execPath,
      [MAIN, '--broker', `embedded:${join(dir, 'none')}`, 'worker', '--celery'],
      {
        env: bare,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    procs.push(proc);
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => proc.once('exit', r));
    expect(code).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/--celery-broker redis:\/\//);
  });

  it('honours countdown, expires, timelimit, retries and priority', async () => {
    await startBridge();
    const before = Date.now();
    const [counted, expired, limited, retried, urgent] = await produce([
      { name: FAST, args: seedArgs('echo', {}), countdown: 2 },
      // Expires before its countdown lets it start: never runs.
      { name: FAST, args: seedArgs('echo', {}), countdown: 3, expires: 1 },
      { name: FAST, args: seedArgs('sleep', { ms: 30_000 }), time_limit: 2, soft_time_limit: 1 },
      { name: FAST, args: seedArgs('echo', {}), retries: 2 },
      { name: FAST, args: seedArgs('echo', {}), priority: 3 },
    ]);
    const late = await record(counted!);
    expect(late.status).toBe('completed');
    expect(Date.parse(late.started_at!)).toBeGreaterThanOrEqual(before + 2_000);

    const gone = await record(expired!);
    expect(gone.status).toBe('cancelled');
    expect(gone.started_at).toBeNull();
    expect(gone.error?.details?.reason).toBe('expired');

    const timed = await record(limited!);
    expect(timed.status).toBe('timed_out');

    // Two retries already made of AIECS_TASK_MAX_ATTEMPTS (3): one attempt left.
    expect((await record(retried!)).max_attempts).toBe(1);
    expect((await record(urgent!)).priority).toBe(3);
  });

  it('refuses malformed messages without crashing: logged, dead-lettered, a FAILURE for an id', async () => {
    const bridge = await startBridge();
    const envelope = (id: string, body: unknown, headers: Record<string, unknown> = {}) =>
      JSON.stringify({
        body: Buffer.from(JSON.stringify(body)).toString('base64'),
        'content-encoding': 'utf-8',
        'content-type': 'application/json',
        headers: { lang: 'py', task: FAST, id, retries: 0, timelimit: [null, null], ...headers },
        properties: {
          delivery_info: { exchange: '', routing_key: 'fast_tasks' },
          priority: 0,
          body_encoding: 'base64',
          delivery_tag: randomBytes(8).toString('hex'),
        },
      });
    const badArgs = `bad-args-${randomBytes(3).toString('hex')}`;
    const unknown = `unknown-${randomBytes(3).toString('hex')}`;
    const pickled = `pickled-${randomBytes(3).toString('hex')}`;
    await redis.lpush('fast_tasks', 'this is not json');
    await redis.lpush('fast_tasks', envelope(badArgs, ['not a list', {}, {}]));
    await redis.lpush('fast_tasks', envelope(unknown, [[], {}, {}], { task: 'proj.tasks.other' }));
    await redis.lpush(
      'fast_tasks',
      JSON.stringify({
        ...JSON.parse(envelope(pickled, [[], {}, {}])),
        'content-type': 'application/x-python-serialize',
      }),
    );
    // A good message after them still runs: the bridge lives on.
    const [good] = await produce([{ name: FAST, args: seedArgs('echo', { ok: true }) }]);
    expect((await record(good!)).status).toBe('completed');

    await until(async () => (await redis.llen('aiecs:celery:rejected')) === 4, 10_000, 'four rejected');
    const states = await until(async () => {
      const found = await results([badArgs, unknown, pickled]);
      return found.every((r) => r.ready) ? found : undefined;
    });
    expect(states.map((r) => [r.state, r.exc_type])).toEqual([
      ['FAILURE', 'ValidationError'],
      ['FAILURE', 'ValidationError'],
      ['FAILURE', 'CeleryMessageError'],
    ]);
    expect(states[0]!.exc_message).toContain('args');
    expect(states[1]!.exc_message).toContain('unknown task "proj.tasks.other"');
    expect(bridge.proc.exitCode).toBeNull();
    expect(await redis.hlen('unacked')).toBe(0);
    expect(bridge.errors()).toMatch(/Celery message refused/);
  });

  it('revoke(terminate=True) cancels a running task (also one under a seed task_id); revoke() a queued one and one still in the list', async () => {
    await startBridge();
    const seeded = `seeded-${randomBytes(4).toString('hex')}`;
    const [running, waiting, seededCelery] = await produce([
      { name: FAST, args: seedArgs('sleep', { ms: 60_000 }) },
      { name: FAST, args: seedArgs('echo', {}), countdown: 60 },
      { name: FAST, args: seedArgs('sleep', { ms: 60_000 }, seeded) },
    ]);
    await record(running!, (r) => r.status === 'running');
    await record(waiting!, (r) => r.status === 'pending');
    await record(seeded, (r) => r.status === 'running' && r.celery_id === seededCelery);
    await runPython('revoke.py', [celeryUrl, '--terminate', running!]);
    expect((await record(running!)).status).toBe('cancelled');
    // Python knows only the Celery id (AsyncResult.id): the bridge finds the seed's task id by it.
    await runPython('revoke.py', [celeryUrl, '--terminate', seededCelery!]);
    expect((await record(seeded)).status).toBe('cancelled');
    // Without terminate: a task that has not started is dropped.
    await runPython('revoke.py', [celeryUrl, waiting!]);
    const dropped = await record(waiting!);
    expect(dropped.status).toBe('cancelled');
    expect(dropped.started_at).toBeNull();

    // Revoked before its message is taken: the message is acked and never becomes a task.
    const early = `early-${randomBytes(4).toString('hex')}`;
    await runPython('revoke.py', [celeryUrl, early]);
    await until(
      async () => (await redis.zscore('aiecs:celery:revoked', early)) !== null,
      10_000,
      'the revoke',
    );
    await produce([{ name: FAST, args: seedArgs('echo', {}), task_id: early }]);
    const [state] = await until(async () => {
      const found = await results([early]);
      return found[0]!.ready ? found : undefined;
    });
    expect(state!.state).toBe('REVOKED');
    expect(await app.getTask(early)).toBeUndefined();
  });

  it('restores messages left unacked past the visibility timeout, as kombu does', async () => {
    const ids = await produce([{ repeat: 5, call: { name: FAST, args: seedArgs('echo', {}) } }]);
    // A bridge that took them and died before submitting: they sit in unacked only.
    const dead = new KombuIntake({
      url: celeryUrl,
      queues: ['fast_tasks'],
      visibilityTimeoutS: 1,
      logger: silentLogger,
    });
    await dead.connect();
    expect((await dead.take(10)).map((m) => JSON.parse(m.raw).headers.id)).toEqual(ids);
    dead.close();
    expect(await redis.hlen('unacked')).toBe(5);
    expect(await redis.llen(`fast_tasks\x06\x169`)).toBe(0);

    await startBridge(['--celery-visibility-timeout', '1']);
    for (const id of ids) expect((await record(id)).status).toBe('completed');
    expect(await redis.hlen('unacked')).toBe(0);
    expect(await redis.zcard('unacked_index')).toBe(0);
  });

  it('loses no message and runs none twice when a bridge is SIGKILLed under load', async () => {
    const log = join(dir, `runs-${randomBytes(4).toString('hex')}.log`);
    const total = 2_000;
    const ids = await produce([
      { repeat: total, call: { name: FAST, args: seedArgs('sleep', { ms: 0, log }) } },
    ]);
    expect(new Set(ids).size).toBe(total);
    // The victim bridges only: its worker consumes heavy_tasks, where none of these go, so any
    // second run would be the bridge's doing, not a worker's redelivery.
    const victim = await startBridge(['-Q', 'heavy_tasks', '--celery-visibility-timeout', '3']);
    await until(
      async () => (await redis.llen(`fast_tasks\x06\x169`)) < total * 0.6,
      60_000,
      'the bridge to take',
    );
    await killNow(victim.proc);
    const left = await redis.llen(`fast_tasks\x06\x169`);
    expect(left).toBeGreaterThan(0); // killed mid-way, not after the end

    await startBridge(['--celery-visibility-timeout', '3']);
    const starts = await until(
      async () => {
        if (!existsSync(log)) return undefined;
        const lines = readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('finish '));
        return lines.length >= total ? lines : undefined;
      },
      120_000,
      `${total} runs`,
    );
    // Settle: nothing more may run.
    await until(async () => (await redis.zcard('unacked_index')) === 0, 30_000, 'unacked to drain');
    const runs = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('start '))
      .map((l) => l.split(' ')[1]!);
    expect(starts.length).toBe(total);
    expect(runs.length).toBe(total);
    expect(new Set(runs)).toEqual(new Set(ids));
    expect(await redis.llen(`fast_tasks\x06\x169`)).toBe(0);
  });
});
