/**
 * The celery section (issue 17): one Python producer (bench/py/bench_producer.py) sends N
 * `aiecs.tasks.worker.execute_task` messages as fast as it can and waits until every result is in
 * Celery's Redis result backend; end-to-end tasks/s with `aiecs worker --celery` (bridge + results
 * relay, one process, default concurrency, a no-op service) against a real Celery 5 worker
 * (prefork, -c 2, a no-op task of the same name and body), on the same redis-server, each side
 * on its own Redis db. Each round starts both workers afresh (a new namespace, a flushed db) and
 * warms them with a few hundred unmeasured tasks; the sides alternate which goes first.
 * Skipped, not failed, when no Python with Celery is found.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { findCeleryPython } from './celery-python.js';
import { cliEnv, startCli } from './cli-child.js';
import { makeTempDir, removeTempDir, spawnTracked, stopChild, waitForLine } from './lifecycle.js';
import { dropNamespace } from './redis-server.js';
import { best } from './stats.js';

export const CELERY_SKIPPED = 'python3 with celery not found';

type Side = 'aiecs' | 'celery';

export interface CeleryRound {
  tasksPerS: number;
  submitS: number;
  /** From the first send until every result was ready (submitS of it is the producer's sending). */
  totalS: number;
  /** Results ready but not a completed body (a FAILURE, or a body whose status is not completed). */
  notCompleted: number;
}

export interface CeleryMeasured {
  count: number;
  warmup: number;
  /** Per side, one entry per measured round, in order (round i of both sides ran back to back). */
  runs: Record<Side, CeleryRound[]>;
  /** Best tasks/s of each side. */
  aiecs: number;
  celery: number;
  /** The producer's send time in each side's best round. */
  submitS: Record<Side, number>;
  /** In each side's best round: from the last send until every result was ready (the worker's lag). */
  drainS: Record<Side, number>;
}

export type CeleryResult = CeleryMeasured | { skipped: string };

/** Redis dbs of the bench's redis-server: the aiecs store stays in 0. */
const DB: Record<Side, number> = { aiecs: 1, celery: 2 };
const STOP_GRACE_MS = 20_000;
const READY_TIMEOUT_MS = 60_000;
const PRODUCER_TIMEOUT_MS = 6 * 60_000;

/** The package's entry point, imported by absolute URL from the services module in a temp dir. */
const INDEX_URL = new URL('../src/index.js', import.meta.url).href;

/**
 * bench/py, found from the compiled bench (dist-bench/bench) or from the sources: the Python files
 * are not copied into dist-bench.
 */
export function pyDir(): string {
  for (const rel of ['./py/', '../../bench/py/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'bench_producer.py'))) return dir;
  }
  throw new Error('bench/py not found beside the bench');
}

/** The no-op service the messages name: service "bench", mode "bench", task "noop". */
function servicesModule(): string {
  return `import { registerService } from ${JSON.stringify(INDEX_URL)};
registerService('bench', 'bench', { noop() { return { ok: true }; } });
`;
}

export const dbUrl = (url: string, db: number) => `${url.replace(/\/\d*$/, '')}/${db}`;

export async function flushDb(url: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await client.flushdb();
  } finally {
    client.disconnect();
  }
}

/** Python's environment: no bytecode written into bench/py. */
export const pyEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  PYTHONDONTWRITEBYTECODE: '1',
  ...extra,
});

/** `aiecs worker --celery` on the store in db 0 (namespace `namespace`), Celery's keys in db 1. */
async function startAiecs(url: string, namespace: string, services: string): Promise<() => Promise<void>> {
  const child = await startCli(
    [
      '--broker',
      dbUrl(url, 0),
      '--namespace',
      namespace,
      'worker',
      '--celery',
      '--celery-broker',
      dbUrl(url, DB.aiecs),
      '--services',
      services,
    ],
    // Celery keeps no history: neither does this side.
    cliEnv({ AIECS_HISTORY: 'off' }),
    /^\s*celery results: /,
  );
  return async () => {
    await stopChild(child.process, STOP_GRACE_MS);
    await dropNamespace(dbUrl(url, 0), namespace);
  };
}

/** A Celery worker pool: prefork processes, or gevent greenlets (for I/O-bound tasks). */
export type CeleryPool = { kind: 'prefork' | 'gevent'; concurrency: number };

/**
 * A Celery 5 worker (by default prefork, two processes: this machine's cores) on `url`'s db
 * `db`, in its own process group, so that stopping it reaches its pool's processes too, even when
 * we are about to exit.
 */
export async function startCelery(
  python: string,
  url: string,
  db = DB.celery,
  pool: CeleryPool = { kind: 'prefork', concurrency: 2 },
): Promise<() => Promise<void>> {
  const child: ChildProcess = spawnTracked(
    python,
    [
      '-m',
      'celery',
      '-A',
      'bench_worker',
      'worker',
      '-P',
      pool.kind,
      '-c',
      String(pool.concurrency),
      '-Q',
      'fast_tasks,heavy_tasks,celery',
      '-l',
      'warning',
      '-n',
      `bench${process.pid}@%h`,
      // Start-up and cluster chatter only, no per-task work: off so that the worker is ready sooner.
      '--without-mingle',
      '--without-gossip',
      '--without-heartbeat',
    ],
    {
      cwd: pyDir(),
      env: pyEnv({ AIECS_BENCH_CELERY_URL: dbUrl(url, db) }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.once('exit', killGroup);
  const stop = async () => {
    // Warm shutdown (Celery's SIGTERM) of the group, then nothing of it may be left.
    try {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    await stopChild(child, STOP_GRACE_MS);
    killGroup();
    process.off('exit', killGroup);
  };
  try {
    await waitForLine(child, /^celery bench worker ready$/, READY_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}

/** Runs the producer against `url`'s db; its JSON line. */
export function produce(python: string, url: string, count: number, warmup: number): Promise<CeleryRound> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      python,
      [join(pyDir(), 'bench_producer.py'), url, String(count), String(warmup)],
      { cwd: pyDir(), env: pyEnv(), timeout: PRODUCER_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`bench_producer.py: ${error.message} ${stderr.trim()}`));
        const line = stdout.trim().split('\n').pop() ?? '';
        const out = JSON.parse(line) as {
          tasks_per_s: number;
          submit_s: number;
          total_s: number;
          not_completed: number;
        };
        resolve({
          tasksPerS: out.tasks_per_s,
          submitS: out.submit_s,
          totalS: out.total_s,
          notCompleted: out.not_completed,
        });
      },
    );
    child.once('error', reject);
  });
}

/** Results that were not completed bodies: each fails the section (its figures are kept). */
export function celeryProblems(r: CeleryResult): string[] {
  if ('skipped' in r) return [];
  return (['aiecs', 'celery'] as const).flatMap((side) =>
    r.runs[side]
      .filter((run) => run.notCompleted > 0)
      .map((run) => `${side}: ${run.notCompleted} results not completed in a round`),
  );
}

/** The section: `rounds` measured rounds of `count` tasks per side, after `warmup` tasks each. */
export async function celery(
  url: string,
  count: number,
  warmup: number,
  rounds: number,
  progress: (line: string) => void,
): Promise<CeleryResult> {
  const python = findCeleryPython();
  if (!python) {
    progress(`bench: celery skipped: ${CELERY_SKIPPED}`);
    return { skipped: CELERY_SKIPPED };
  }
  const dir = makeTempDir('celery');
  const services = join(dir, 'celery-services.mjs');
  writeFileSync(services, servicesModule());
  const runs: Record<Side, CeleryRound[]> = { aiecs: [], celery: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate which side goes first: a neighbour's load then falls on both alike.
      const order: Side[] = round % 2 === 0 ? ['aiecs', 'celery'] : ['celery', 'aiecs'];
      for (const side of order) {
        const sideUrl = dbUrl(url, DB[side]);
        await flushDb(sideUrl);
        const stop =
          side === 'aiecs'
            ? await startAiecs(url, `bench_celery_${process.pid}_${round}`, services)
            : await startCelery(python, url);
        try {
          const run = await produce(python, sideUrl, count, warmup);
          runs[side].push(run);
          progress(
            `bench: celery ${side} round ${round + 1}: ${Math.round(run.tasksPerS)} tasks/s` +
              ` (submit ${run.submitS.toFixed(2)} s)`,
          );
        } finally {
          await stop();
        }
      }
    }
  } finally {
    removeTempDir(dir);
    await Promise.all([flushDb(dbUrl(url, DB.aiecs)), flushDb(dbUrl(url, DB.celery))]);
  }
  const bestOf = (side: Side) => {
    const top = best(runs[side].map((r) => r.tasksPerS));
    const run = runs[side].find((r) => r.tasksPerS === top);
    return { top, submitS: run?.submitS ?? NaN, drainS: run ? run.totalS - run.submitS : NaN };
  };
  const a = bestOf('aiecs');
  const c = bestOf('celery');
  return {
    count,
    warmup,
    runs,
    aiecs: a.top,
    celery: c.top,
    submitS: { aiecs: a.submitS, celery: c.submitS },
    drainS: { aiecs: a.drainS, celery: c.drainS },
  };
}
