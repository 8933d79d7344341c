/**
 * `aiecs demo`: the engine end to end in one process on a throwaway embedded store: a fast task,
 * a heavy task in the process pool, a task stopped by its time limit and one cancelled while it
 * runs. Exits 0 only when each ends as expected, so it doubles as a smoke test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AiecsConfig } from '../core/config.js';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import type { QueueKind, TaskRecord } from '../core/task.js';
import type { WireSubmitOptions } from '../core/submission.js';
import { FAST_QUEUE, HEAVY_QUEUE, TaskStatus, isTerminal } from '../core/task.js';
import { EXIT_INTERRUPTED, clientLogLevel } from './options.js';
import { table } from './output.js';
import type { UpHandle } from './up.js';
import { startUp } from './up.js';

interface DemoTask {
  label: string;
  queue: QueueKind;
  request: Record<string, unknown>;
  options?: WireSubmitOptions;
  expected: TaskStatus;
  /** Cancel the task once it is under way. */
  cancelWhenRunning?: boolean;
}

/** The demo gives up on tasks still unfinished after this long. */
const DEMO_DEADLINE_MS = 60_000;
const POLL_MS = 100;

/** A small CSV with numeric, boolean, date and text columns; deterministic, so runs compare. */
export function demoCsv(rows = 15_000): string {
  let seed = 42;
  const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const cities = ['Berlin', 'Lisbon', 'Oslo', 'Austin', 'Osaka'];
  const lines = ['id,age,income,score,city,active,signup_date'];
  for (let i = 1; i <= rows; i++) {
    const age = 18 + Math.floor(rand() * 60);
    const income = Math.round(20_000 + age * 900 + rand() * 30_000);
    const score = (income / 1000 + rand() * 20).toFixed(2);
    const day = String(1 + Math.floor(rand() * 28)).padStart(2, '0');
    const city = cities[Math.floor(rand() * cities.length)] ?? 'Berlin';
    // Some missing values, so the report has something to say about them.
    lines.push(`${i},${rand() < 0.03 ? '' : age},${income},${score},${city},${rand() < 0.6},2024-03-${day}`);
  }
  return `${lines.join('\n')}\n`;
}

function demoTasks(): DemoTask[] {
  const request = (mode: string, service: string, task: string, input: Record<string, unknown>) => ({
    task_name: task,
    user_id: 'demo',
    mode,
    service,
    input_data: input,
  });
  const text =
    'The new release is fast and reliable. Our team loves the cleaner API, although the docs ' +
    'still need work. Overall a great step forward!';
  // The sleeper goes to the fast (async) queue: it runs in this process, where it is registered,
  // whether or not the process-pool children know it yet.
  return [
    {
      label: 'analyze_text',
      queue: FAST_QUEUE,
      request: request('chat', 'text_analyzer', 'analyze_text', { text }),
      expected: TaskStatus.COMPLETED,
    },
    {
      label: 'analyze_dataset',
      queue: HEAVY_QUEUE,
      request: request('data', 'data_analyzer', 'analyze_dataset', { csv: demoCsv() }),
      expected: TaskStatus.COMPLETED,
    },
    {
      label: 'sleep (time limit 1 s)',
      queue: FAST_QUEUE,
      request: request('util', 'sleeper', 'sleep', { seconds: 30 }),
      options: { time_limit: 1, soft_time_limit: 0.5 },
      expected: TaskStatus.TIMED_OUT,
    },
    {
      label: 'sleep (cancelled)',
      queue: FAST_QUEUE,
      request: request('util', 'sleeper', 'sleep', { seconds: 30 }),
      expected: TaskStatus.CANCELLED,
      cancelWhenRunning: true,
    },
  ];
}

/** Short limits so that nothing in the demo can hang for long. */
function demoConfig(dir: string): AiecsConfig {
  const base = loadConfig(process.env);
  return {
    ...base,
    brokerUrl: `embedded:${dir}`,
    softTimeLimitS: 15,
    timeLimitS: 20,
    cancelGraceMs: 1000,
    shutdownTimeoutS: 5,
    maxAttempts: 1,
    worker: {
      ...base.worker,
      queues: [FAST_QUEUE, HEAVY_QUEUE],
      concurrency: { [FAST_QUEUE]: 10, [HEAVY_QUEUE]: 2 },
      pool: { [FAST_QUEUE]: 'async', [HEAVY_QUEUE]: 'process' },
    },
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`.padStart(6);

async function runDemo(up: UpHandle, started: number, stop: { requested: boolean }): Promise<boolean> {
  const tasks = demoTasks();
  const width = Math.max(...tasks.map((t) => t.label.length));
  const ids: string[] = [];
  for (const task of tasks) {
    const handle = await up.app.submitWire(task);
    ids.push(handle.id);
    console.log(
      `${seconds(Date.now() - started)}  ${task.label.padEnd(width)}  submitted to ${task.queue}  ${handle.id}`,
    );
  }

  const last = new Map<string, string>();
  const finals = new Map<string, TaskRecord>();
  const cancelSent = new Set<string>();
  while (finals.size < tasks.length && Date.now() - started < DEMO_DEADLINE_MS && !stop.requested) {
    for (const [i, task] of tasks.entries()) {
      const id = ids[i] as string;
      if (finals.has(id)) continue;
      const record = await up.app.getTask(id);
      if (!record) continue;
      const line = `${record.status.padEnd(9)} ${String(Math.round(record.progress)).padStart(3)}%  ${record.message}`;
      if (last.get(id) !== line) {
        last.set(id, line);
        console.log(`${seconds(Date.now() - started)}  ${task.label.padEnd(width)}  ${line}`);
      }
      if (isTerminal(record.status)) finals.set(id, record);
      // Cancel once the sleeper reported its start: by then the worker knows the task is its own.
      if (
        task.cancelWhenRunning &&
        !cancelSent.has(id) &&
        record.status === TaskStatus.RUNNING &&
        record.message
      ) {
        cancelSent.add(id);
        const result = await up.app.cancel(id);
        console.log(
          `${seconds(Date.now() - started)}  ${task.label.padEnd(width)}  cancel requested (${result.status})`,
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }

  const rows = tasks.map((task, i) => {
    const record = finals.get(ids[i] as string);
    const actual = record?.status ?? `${last.get(ids[i] as string)?.split(' ')[0] ?? 'unknown'} (unfinished)`;
    const duration = record?.duration_ms != null ? `${record.duration_ms} ms` : '-';
    return [
      task.label,
      task.queue,
      task.expected,
      actual,
      duration,
      record?.status === task.expected ? 'ok' : 'FAIL',
    ];
  });
  console.log('');
  console.log(table(['task', 'queue', 'expected', 'actual', 'duration', ''], rows));
  return tasks.every((task, i) => finals.get(ids[i] as string)?.status === task.expected);
}

/** The `aiecs demo` action. */
export async function demoAction(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'aiecs-demo-'));
  const config = demoConfig(dir);
  const logger = createLogger(clientLogLevel(config));
  const stop = { requested: false };
  const onSignal = () => (stop.requested = true);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let up: UpHandle | undefined;
  try {
    const opening = Date.now();
    // No gateway: the demo talks to the engine in-process, so it needs no port and runs beside `aiecs up`.
    up = await startUp({ config, logger, gateway: false });
    console.log(
      `aiecs demo: store ${up.store.displayUrl}, worker ${up.worker.id} ` +
        `(ready in ${((Date.now() - opening) / 1000).toFixed(1)} s)`,
    );
    const ok = await runDemo(up, Date.now(), stop);
    console.log(ok ? '\nall tasks ended as expected' : '\nsome tasks did not end as expected');
    process.exitCode = stop.requested ? EXIT_INTERRUPTED : ok ? 0 : 1;
  } finally {
    await up?.close(2).catch((error: Error) => logger.warn({ err: error.message }, 'demo shutdown'));
    await rm(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
