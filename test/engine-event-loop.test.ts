import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskTimeoutError } from '../src/core/errors.js';
import type { TaskRecord } from '../src/core/task.js';
import { STORE_KINDS, TEST_ENV, TestEnv, killAll, until, probe } from './harness.js';

const EMBEDDED_PROCESS = fileURLToPath(new URL('./fixtures/embedded-process.mjs', import.meta.url));

/** Lines the probes wrote to `log`: `start <task> <pid>` / `finish <task> <pid>`. */
function lines(log: string): string[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').slice(0, 2).join(' '));
}

/** A logger whose JSON lines the test reads. */
function capture(level = 'info'): { logger: Logger; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => entries.push(JSON.parse(line)) });
  return { logger, entries };
}

/** The exit of a process that should end by itself; a bounded wait, so a process that never does fails the test. */
function exitOf(proc: ChildProcess, what: string): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    if (proc.exitCode !== null || proc.signalCode !== null)
      return resolve({ code: proc.exitCode, signal: proc.signalCode });
    const timer = setTimeout(() => reject(new Error(`${what} did not exit`)), 60_000);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

// Embedded runs open PGlite, which takes tens of seconds on a busy 2-core machine: 120 s per test.
describe.each(STORE_KINDS)('fast tasks and the event loop on %s', (kind) => {
  let env: TestEnv | undefined;
  let dir: string | undefined;
  const procs: ChildProcess[] = [];
  afterEach(async () => {
    await killAll(procs);
    await env?.cleanup();
    env = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('holds the slot of a fast task past its hard limit until its code returns, and counts it abandoned', async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-abandon-'));
    const log = join(dir, 'runs.log');
    env = await TestEnv.create(kind, { CELERY_WORKER_CONCURRENCY: 'fast_tasks=1,heavy_tasks=1' });
    const { logger, entries } = capture();
    const worker = await env.worker({ logger });
    const app = env.app();
    // Ignores its signal: the hard limit ends the task, but its code sleeps on.
    const first = await app.executeTask.delay(probe('ignore_signal', { ms: 2_000, log }), { timeLimit: 0.3 });
    const error = await first.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskTimeoutError);
    expect((await first.status()).status).toBe('timed_out');
    expect(worker.abandonedTasks).toEqual({ total: 1, running: 1 });
    const warned = entries.filter((e) => e.task_id === first.id && e.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toMatch(/abandoned/);

    // Concurrency 1: the next task starts only once the first one's code has returned.
    const second = await app.executeTask.delay(probe('sleep', { ms: 10, log }));
    expect((await second.get({ timeout: 20 })).status).toBe('completed');
    expect(lines(log)).toEqual([
      `start ${first.id}`,
      `finish ${first.id}`,
      `start ${second.id}`,
      `finish ${second.id}`,
    ]);
    expect(worker.heartbeat()).toMatchObject({ abandoned: 1, abandoned_running: 0 });
    // The slot is back: the worker takes tasks again as before.
    expect((await (await app.executeTask.delay(probe('echo'))).get({ timeout: 20 })).status).toBe(
      'completed',
    );
  }, 120_000);

  it('reports a fast task that blocked the event loop, naming it', async () => {
    env = await TestEnv.create(kind);
    const { logger, entries } = capture();
    await env.worker({ logger });
    const app = env.app();
    // Test locks last 2 s: a loop blocked for a quarter of that (0.5 s) is reported.
    const handle = await app.executeTask.delay(probe('spin', { ms: 1_500 }));
    expect((await handle.get({ timeout: 20 })).status).toBe('completed');
    const report = await until(
      async () => entries.find((e) => e.level === 50 && /event loop was blocked/.test(String(e.msg))),
      5_000,
      'the blocked-loop report',
    );
    expect(report.tasks).toContain(handle.id);
    expect(report.blocked_ms).toBeGreaterThanOrEqual(500);
  }, 120_000);

  it('with AIECS_BLOCKED_LOOP_EXIT_S, a worker whose loop stays blocked exits and its task runs again elsewhere', async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-blocked-'));
    const log = join(dir, 'runs.log');
    // Blocks the loop for two minutes in its first run; succeeds when run again.
    const request = {
      task_name: 'crash_once',
      user_id: 'u',
      mode: 'test',
      service: 'probe',
      task_id: `blocked-${kind}`,
      input_data: { log, spin: true, ms: 120_000 },
    };
    const exitEnv = { AIECS_BLOCKED_LOOP_EXIT_S: '1', AIECS_LOG_LEVEL: 'error' };
    let record: TaskRecord;
    if (kind === 'embedded') {
      const broker = `embedded:${join(dir, 'store')}`;
      const first = spawn(process.execPath, [EMBEDDED_PROCESS], {
        env: { ...process.env, ...TEST_ENV, ...exitEnv, BROKER: broker, SUBMIT: JSON.stringify(request) },
        stdio: 'ignore',
      });
      procs.push(first);
      expect(await exitOf(first, 'the blocked process')).toMatchObject({ signal: 'SIGKILL' });
      const second = spawn(process.execPath, [EMBEDDED_PROCESS], {
        env: { ...process.env, ...TEST_ENV, BROKER: broker, WAIT_ID: request.task_id },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      procs.push(second);
      let out = '';
      second.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await exitOf(second, 'the second process');
      const line = out.split('\n').find((l) => l.startsWith('record '));
      expect(line, out).toBeDefined();
      record = JSON.parse(line!.slice('record '.length)) as TaskRecord;
    } else {
      const shared = (env = await TestEnv.create(kind));
      const app = shared.app();
      const victim = await shared.workerProcess(exitEnv);
      const handle = await app.submitWire({ queue: 'fast_tasks', request });
      expect(await exitOf(victim.proc, 'the blocked worker')).toMatchObject({ signal: 'SIGKILL' });
      // Its watchdog said why, naming the task, while the loop was blocked.
      const said = victim
        .errors()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; tasks: string[] });
      expect(said.find((l) => l.level === 50)?.tasks).toContain(handle.id);
      expect(said.find((l) => l.level === 60)?.msg).toMatch(/AIECS_BLOCKED_LOOP_EXIT_S/);
      await shared.worker();
      record = await handle.get({ timeout: 30 });
    }
    expect(record).toMatchObject({ status: 'completed', attempt: 1, redeliveries: 1 });
    expect(lines(log)).toEqual([`start ${request.task_id}`, `start ${request.task_id}`]);
  }, 120_000);
});

describe('CELERY_WORKER_PREFETCH_MULTIPLIER', () => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('says once at start that a multiplier other than 1 has no effect, and why', async () => {
    env = await TestEnv.create('redis', { CELERY_WORKER_PREFETCH_MULTIPLIER: '4' });
    const { logger, entries } = capture();
    await env.worker({ logger });
    const said = entries.filter((e) => /PREFETCH_MULTIPLIER/.test(String(e.msg)));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ level: 30, prefetch_multiplier: 4 });
    expect(said[0]!.msg).toMatch(
      /CELERY_WORKER_PREFETCH_MULTIPLIER=4 has no effect: BullMQ fetches one task per free slot/,
    );

    await env.cleanup();
    env = await TestEnv.create('redis');
    const quiet = capture();
    await env.worker({ logger: quiet.logger });
    expect(quiet.entries.filter((e) => /PREFETCH_MULTIPLIER/.test(String(e.msg)))).toHaveLength(0);
  });
});
