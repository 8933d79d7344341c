// Task logs an operator can grep (issue 12, Logs): one line per task end, `"msg":"Task completed"`
// (Task failed / Task timed out / Task cancelled; failures at error level, 50) with the fields
// that say which task, whose, where and how long; and a worker's periodic "Memory usage" line.
import type { DestinationStream } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/core/config.js';
import { createLogger, type Logger } from '../src/core/logger.js';
import type { AiecsApp } from '../src/engine/app.js';
import { STORE_KINDS, TestEnv, probe, sleep, until } from './harness.js';

interface Line {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A logger writing JSON lines into memory, as the worker's logger writes them to stderr or a file. */
function capturingLogger(level = 'info'): { logger: Logger; raw: string[]; lines: () => Line[] } {
  const raw: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void raw.push(line) };
  return {
    logger: createLogger(level, 'aiecs', destination),
    raw,
    lines: () => raw.map((line) => JSON.parse(line) as Line),
  };
}

const END_MESSAGES = ['Task completed', 'Task failed', 'Task timed out', 'Task cancelled'];

async function running(app: AiecsApp, id: string): Promise<void> {
  await until(async () => (await app.getTask(id))?.status === 'running', 20_000, `task ${id} running`);
}

describe.each(STORE_KINDS)('task end log lines on %s', (kind) => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('writes one JSON line per task end with its fields, failures at level 50', async () => {
    env = await TestEnv.create(kind);
    const { logger, raw, lines } = capturingLogger();
    const worker = await env.worker({ logger });
    const app = env.app();

    const completed = await app.executeTask.delay(probe('echo', { n: 1 }));
    const heavy = await app.executeHeavyTask.delay(probe('echo', { n: 2 }));
    const failed = await app.executeTask.delay(probe('fail', { message: 'boom' }));
    const timedOut = await app.executeTask.delay(probe('soft_cleanup', { ms: 10_000 }), {
      softTimeLimit: 0.3,
      timeLimit: 5,
    });
    const retried = await app.executeTask.delay(probe('flaky', { fail_times: 1 }), { attempts: 2 });
    const cancelled = await app.executeTask.delay(probe('sleep', { ms: 15_000 }));
    await running(app, cancelled.id);
    await cancelled.cancel();

    const ids = [completed, heavy, failed, timedOut, retried, cancelled].map((h) => h.id);
    const ends = () => lines().filter((l) => END_MESSAGES.includes(l.msg));
    await until(async () => ends().length >= ids.length, 30_000, 'a task end line for every task');
    const byId = new Map(ends().map((l) => [l.task_id, l]));
    expect(ends()).toHaveLength(ids.length);
    expect([...byId.keys()].sort()).toEqual([...ids].sort());

    const common = {
      task_name: expect.any(String),
      user_id: 'user-1',
      worker: worker.id,
      duration_ms: expect.any(Number),
    };
    expect(byId.get(completed.id)).toMatchObject({
      ...common,
      level: 30,
      msg: 'Task completed',
      task_name: 'echo',
      status: 'completed',
      queue: 'fast_tasks',
      attempt: 1,
    });
    expect(byId.get(heavy.id)).toMatchObject({
      ...common,
      level: 30,
      msg: 'Task completed',
      queue: 'heavy_tasks',
      attempt: 1,
    });
    expect(byId.get(failed.id)).toMatchObject({
      ...common,
      level: 50,
      msg: 'Task failed',
      task_name: 'fail',
      status: 'failed',
      queue: 'fast_tasks',
      attempt: 1,
      code: 'E003',
      err: expect.stringContaining('boom'),
    });
    expect(byId.get(timedOut.id)).toMatchObject({
      ...common,
      level: 50,
      msg: 'Task timed out',
      status: 'timed_out',
      code: 'E002',
    });
    expect(byId.get(timedOut.id)?.duration_ms).toBeGreaterThanOrEqual(300);
    expect(byId.get(cancelled.id)).toMatchObject({
      ...common,
      level: 30,
      msg: 'Task cancelled',
      status: 'cancelled',
      code: 'E004',
    });
    // The retried task: a warning for the first attempt, then its one end line.
    expect(byId.get(retried.id)).toMatchObject({ ...common, msg: 'Task completed', attempt: 2 });
    expect(lines().filter((l) => l.msg === 'Task will retry')).toEqual([
      expect.objectContaining({ ...common, level: 40, task_id: retried.id, attempt: 1, status: 'retry' }),
    ]);

    // What the README's recipes find: grep "Task completed" and grep '"level":50'.
    const grep = (needle: string) => raw.filter((l) => l.includes(needle));
    expect(grep('"msg":"Task completed"')).toHaveLength(3);
    expect(grep('"level":50').filter((l) => l.includes('"msg":"Task '))).toHaveLength(2);
    // Each line names its worker once (the worker's logger binds it; the task's must not again).
    for (const line of grep('"msg":"Task ')) expect(line.match(/"worker":/g)).toHaveLength(1);
    // Embedded runs open PGlite slowly on a loaded machine.
  }, 150_000);
});

describe('task end log lines and the log level', () => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('at warn, completed tasks write nothing and failed ones still do', async () => {
    env = await TestEnv.create('redis');
    const { logger, lines } = capturingLogger('warn');
    await env.worker({ logger });
    const app = env.app();
    const ok = await app.executeTask.delay(probe('echo'));
    const bad = await app.executeTask.delay(probe('fail'));
    await ok.get({ timeout: 20 });
    await until(async () => lines().some((l) => l.msg === 'Task failed'), 20_000, 'Task failed');
    expect(lines().filter((l) => l.msg === 'Task failed')).toEqual([
      expect.objectContaining({ task_id: bad.id, level: 50 }),
    ]);
    expect(lines().filter((l) => l.level < 40)).toEqual([]);
  }, 60_000);
});

describe('task lines at debug', () => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it("a task's own lines (task started) name the task and, once, the worker", async () => {
    env = await TestEnv.create('redis');
    const { logger, raw, lines } = capturingLogger('debug');
    const worker = await env.worker({ logger });
    const handle = await env.app().executeTask.delay(probe('echo'));
    await handle.get({ timeout: 20 });
    await until(async () => lines().some((l) => l.msg === 'Task completed'), 20_000, 'Task completed');
    const started = raw.filter((l) => l.includes('"msg":"task started"'));
    expect(started).toHaveLength(1);
    expect(JSON.parse(started[0] ?? '')).toMatchObject({
      level: 20,
      task_id: handle.id,
      task_name: 'echo',
      worker: worker.id,
    });
    expect(started[0]?.match(/"worker":/g)).toHaveLength(1);
  }, 60_000);
});

describe('Memory usage line', () => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('is on by default, every 60 s', () => {
    expect(loadConfig({}).memoryLogIntervalS).toBe(60);
    expect(loadConfig({ AIECS_MEMORY_LOG_INTERVAL_S: '0' }).memoryLogIntervalS).toBe(0);
  });

  it('is written every AIECS_MEMORY_LOG_INTERVAL_S with RSS, heap and active tasks, and stops at close', async () => {
    env = await TestEnv.create('redis', { AIECS_MEMORY_LOG_INTERVAL_S: '0.05' });
    const { logger, lines } = capturingLogger();
    const worker = await env.worker({ logger });
    const app = env.app();
    const busy = await app.executeTask.delay(probe('sleep', { ms: 15_000 }));
    await running(app, busy.id);
    const memory = () => lines().filter((l) => l.msg === 'Memory usage');
    await until(async () => memory().some((l) => l.active_tasks === 1), 20_000, 'a Memory usage line');
    const line = memory().find((l) => l.active_tasks === 1);
    expect(line).toMatchObject({
      level: 30,
      worker: worker.id,
      rss_mb: expect.any(Number),
      heap_used_mb: expect.any(Number),
      heap_total_mb: expect.any(Number),
    });
    expect(line?.rss_mb).toBeGreaterThan(line?.heap_used_mb as number);
    await busy.cancel();
    await worker.close(1);
    const written = memory().length;
    // Ten intervals after close: a timer left running would have written more.
    await sleep(500);
    expect(memory()).toHaveLength(written);
  }, 60_000);
});
