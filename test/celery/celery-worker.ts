/**
 * `aiecs worker --celery` (built dist) in its own process, as the Celery tests start it: on the
 * test's Redis store and namespace, Celery's lists at `celeryUrl`, the probe services, history off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROBE_SERVICES, TEST_ENV, until } from '../harness.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../dist/cli/main.js');

export interface CeleryWorker {
  proc: ChildProcess;
  output(): string;
  errors(): string;
}

export interface CeleryWorkerOptions {
  brokerUrl: string;
  namespace: string;
  celeryUrl: string;
  /** Flags after the defaults (`--celery-raise-failures`, `-Q heavy_tasks`, …). */
  args?: string[];
  env?: Record<string, string>;
  /** Lines the ready output must hold before it counts as started; default the bridge's. */
  ready?: RegExp[];
  /** The test's process list, for its cleanup. */
  procs: ChildProcess[];
}

/** Resolves once every `ready` pattern is in its stdout; rejects if it exits first. */
export async function startCeleryWorker(options: CeleryWorkerOptions): Promise<CeleryWorker> {
  const proc = spawn(
    process.execPath,
    [
      MAIN,
      '--broker',
      options.brokerUrl,
      '--namespace',
      options.namespace,
      'worker',
      '--celery',
      '--celery-broker',
      options.celeryUrl,
      '--services',
      PROBE_SERVICES,
      ...(options.args ?? []),
    ],
    {
      env: { ...process.env, ...TEST_ENV, AIECS_HISTORY: 'off', AIECS_LOG_LEVEL: 'warn', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  options.procs.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = options.ready ?? [/celery: .*queues/];
  await until(
    async () => {
      if (proc.exitCode !== null) throw new Error(`aiecs worker --celery exited ${proc.exitCode}: ${err}`);
      return ready.every((pattern) => pattern.test(out));
    },
    30_000,
    'aiecs worker --celery to start',
  );
  return { proc, output: () => out, errors: () => err };
}
