/**
 * The celery_direct section (issue 18, "Celery beside us"): the no-op throughput, latency and I/O
 * workloads of aiecs's redis, latency and io rows through a real Celery 5 worker on the same
 * redis-server, in the same run, so that aiecs's figures and Celery's can be set side by side.
 * - no-op: bench_producer.py sends the redis row's count of tasks (after a warm-up) to a prefork -c 2
 *   worker and waits for every result; best of `rounds`, each with a fresh worker and db;
 * - latency: one task at a time, send to `AsyncResult.get()`, prefork -c 2 (bench_direct.py);
 * - I/O: the io row's tasks of 500 ms each, sent at once to a gevent -c 1000 worker, until every
 *   result is ready (bench_direct.py).
 * The Python side is a Celery producer, aiecs's side its own in-process producer: each as its
 * users would drive it. Skipped, not failed, without a Python with Celery; the I/O row alone is
 * skipped without gevent.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { findCeleryPython } from './celery-python.js';
import {
  CELERY_SKIPPED,
  dbUrl,
  flushDb,
  produce,
  pyDir,
  pyEnv,
  startCelery,
  type CeleryPool,
} from './celery.js';
import { best, summarize, type Summary } from './stats.js';

/** The Redis db of this section's Celery broker and results (the celery section uses 1 and 2). */
const DB = 3;
const PREFORK: CeleryPool = { kind: 'prefork', concurrency: 2 };
const GEVENT: CeleryPool = { kind: 'gevent', concurrency: 1_000 };
const SCRIPT_TIMEOUT_MS = 6 * 60_000;
export const GEVENT_SKIPPED = 'python3 without gevent (Debian: apt-get install python3-gevent)';

export interface CeleryDirectSizes {
  /** No-op tasks per round (the redis row's count), after `warmup` unmeasured ones. */
  count: number;
  warmup: number;
  rounds: number;
  /** Sequential tasks of the latency workload (the latency row's count). */
  latency: number;
  /** Tasks of the I/O workload and how long each waits (the io row's). */
  io: number;
  ioWaitMs: number;
}

export interface CeleryDirectMeasured {
  /** No-op tasks/s of every round, in order, and the best. */
  throughput: { count: number; runs: number[]; best: number };
  latency: { count: number } & Summary;
  io: { count: number; waitMs: number; wallS: number; submitS: number } | { skipped: string };
  /** Results that were ready but not a completed body, over every workload. */
  notCompleted: number;
}

export type CeleryDirectResult = CeleryDirectMeasured | { skipped: string };

/** Runs bench/py/bench_direct.py with `args`; its last stdout line, parsed. */
function direct<T>(python: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      python,
      [join(pyDir(), 'bench_direct.py'), ...args],
      { cwd: pyDir(), env: pyEnv(), timeout: SCRIPT_TIMEOUT_MS, maxBuffer: 8 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`bench_direct.py ${args[0]}: ${error.message} ${stderr.trim()}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as T);
        } catch (parseError) {
          reject(new Error(`bench_direct.py ${args[0]}: no JSON line (${(parseError as Error).message})`));
        }
      },
    );
    child.once('error', reject);
  });
}

/** Whether `python` can import gevent (Celery's -P gevent needs it). */
function hasGevent(python: string): boolean {
  try {
    execFileSync(python, ['-c', 'import gevent'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** Runs `work` against a fresh Celery worker with `pool` on a flushed db; stops the worker after. */
async function withCelery<T>(
  python: string,
  url: string,
  pool: CeleryPool,
  work: (sideUrl: string) => Promise<T>,
): Promise<T> {
  const sideUrl = dbUrl(url, DB);
  await flushDb(sideUrl);
  const stop = await startCelery(python, url, DB, pool);
  try {
    return await work(sideUrl);
  } finally {
    await stop();
  }
}

/** Results that were not completed bodies fail the section (its figures are kept). */
export function celeryDirectProblems(r: CeleryDirectResult): string[] {
  if ('skipped' in r || r.notCompleted === 0) return [];
  return [`celery_direct: ${r.notCompleted} Celery results not completed`];
}

export async function celeryDirect(
  url: string,
  n: CeleryDirectSizes,
  progress: (line: string) => void,
): Promise<CeleryDirectResult> {
  const python = findCeleryPython();
  if (!python) {
    progress(`bench: celery_direct skipped: ${CELERY_SKIPPED}`);
    return { skipped: CELERY_SKIPPED };
  }
  let notCompleted = 0;
  try {
    const runs: number[] = [];
    for (let round = 1; round <= n.rounds; round++) {
      const run = await withCelery(python, url, PREFORK, (sideUrl) =>
        produce(python, sideUrl, n.count, n.warmup),
      );
      notCompleted += run.notCompleted;
      runs.push(run.tasksPerS);
      progress(
        `  Celery prefork -c 2, round ${round}: ${n.count} no-op tasks at ${run.tasksPerS.toFixed(0)}/s`,
      );
    }
    const lat = await withCelery(python, url, PREFORK, (sideUrl) =>
      direct<{ samples_ms: number[]; not_completed: number }>(python, [
        'latency',
        sideUrl,
        String(n.latency),
        '10',
      ]),
    );
    notCompleted += lat.not_completed;
    const latency = { count: n.latency, ...summarize(lat.samples_ms) };
    progress(`  Celery latency: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms`);
    let io: CeleryDirectMeasured['io'];
    if (!hasGevent(python)) {
      progress(`bench: celery_direct I/O row skipped: ${GEVENT_SKIPPED}`);
      io = { skipped: GEVENT_SKIPPED };
    } else {
      const out = await withCelery(python, url, GEVENT, (sideUrl) =>
        direct<{ wall_s: number; submit_s: number; not_completed: number }>(python, [
          'io',
          sideUrl,
          String(n.io),
          String(n.ioWaitMs),
        ]),
      );
      notCompleted += out.not_completed;
      io = { count: n.io, waitMs: n.ioWaitMs, wallS: out.wall_s, submitS: out.submit_s };
      progress(
        `  Celery gevent -c 1000: ${n.io} x ${n.ioWaitMs} ms in ${out.wall_s.toFixed(2)} s ` +
          `(submit ${out.submit_s.toFixed(2)} s)`,
      );
    }
    return { throughput: { count: n.count, runs, best: best(runs) }, latency, io, notCompleted };
  } finally {
    await flushDb(dbUrl(url, DB));
  }
}
