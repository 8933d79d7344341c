/**
 * The scaleout section (issue 18): no-op tasks on Redis through 1, 2 and 4 worker processes,
 * `aiecs worker` (the built CLI, fast queue only, concurrency 100) against as many raw BullMQ
 * worker processes (bench/bullmq-worker.ts, concurrency 100). This process only submits (bulk
 * chunks) and polls the completed count, the same for both sides. Per worker count and side: the
 * processes start on a fresh namespace, one unmeasured batch warms them, then `rounds` measured
 * batches; the best counts. The machine's cores are reported beside the figures: past them, more
 * processes only share the same CPUs with each other and with redis-server.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAST_QUEUE } from '../src/core/task.js';
import { cliEnv, startCli } from './cli-child.js';
import { makeTempDir, removeTempDir, spawnTracked, stopChild, waitForLine, within } from './lifecycle.js';
import { dropNamespace } from './redis-server.js';
import { best, perSecond } from './stats.js';
import { aiecsTarget, bullmqTarget, type StoreChoice, type Target } from './targets.js';
import { timedBatch, type Side } from './workloads.js';

export const SCALEOUT_WORKERS = [1, 2, 4] as const;
const CONCURRENCY = 100;
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 20_000;
const CALL_TIMEOUT_MS = 60_000;

/** The raw BullMQ worker child, compiled beside this file. */
const BULLMQ_CHILD = fileURLToPath(new URL('./bullmq-worker.js', import.meta.url));
/** The package's entry point, imported by absolute URL from the services module in a temp dir. */
const INDEX_URL = new URL('../src/index.js', import.meta.url).href;

export interface ScaleoutPoint {
  workers: number;
  /** Best tasks/s per side. */
  aiecs: number;
  bullmq: number;
  /** tasks/s of every measured round, in order. */
  runs: Record<Side, number[]>;
}

export interface ScaleoutResult {
  count: number;
  rounds: number;
  /** os.availableParallelism() of the machine that ran it. */
  cores: number;
  points: ScaleoutPoint[];
}

/** The no-op the bench submits (service "noop", mode "bench", task "noop"), for `aiecs worker`. */
function servicesModule(): string {
  return `import { registerService } from ${JSON.stringify(INDEX_URL)};
registerService('bench', 'noop', { noop() { return { ok: true }; } });
`;
}

/** Starts one worker process of `side` on `namespace`; resolves with its stop. */
async function startWorker(
  side: Side,
  url: string,
  namespace: string,
  services: string,
): Promise<() => Promise<void>> {
  if (side === 'aiecs') {
    const child = await startCli(
      [
        ...['--broker', url, '--namespace', namespace, 'worker'],
        ...['-Q', FAST_QUEUE, '-c', String(CONCURRENCY), '--services', services],
      ],
      // Raw BullMQ keeps no history: neither does this side.
      cliEnv({ AIECS_HISTORY: 'off' }),
      /^aiecs worker:/,
    );
    return () => stopChild(child.process, STOP_GRACE_MS);
  }
  const child = spawnTracked(
    process.execPath,
    [BULLMQ_CHILD, url, namespace, FAST_QUEUE, String(CONCURRENCY)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    await waitForLine(child, /^bullmq worker ready$/, READY_TIMEOUT_MS);
  } catch (error) {
    await stopChild(child, 1_000);
    throw error;
  }
  return () => stopChild(child, STOP_GRACE_MS);
}

/** `workers` processes of `side`: one warm-up batch, then `rounds` measured batches; tasks/s of each. */
async function runSide(
  side: Side,
  url: string,
  workers: number,
  count: number,
  rounds: number,
  services: string,
  log: (line: string) => void,
): Promise<number[]> {
  const store: StoreChoice = {
    kind: 'redis',
    url,
    namespace: `bench_scale_${side}_${process.pid}_${workers}`,
  };
  await dropNamespace(url, store.namespace);
  // The producer: no worker of its own in this process.
  const target: Target = await within(
    side === 'aiecs'
      ? aiecsTarget(store, CONCURRENCY, { noWorker: true })
      : bullmqTarget(store, CONCURRENCY, { withTaskOptions: false }, { noWorker: true }),
    CALL_TIMEOUT_MS,
    `starting ${side}'s producer`,
  );
  const stops: Array<() => Promise<void>> = [];
  try {
    const started = await Promise.allSettled(
      Array.from({ length: workers }, () => startWorker(side, url, store.namespace, services)),
    );
    for (const s of started) if (s.status === 'fulfilled') stops.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const budgetMs = 30_000 + count * 30;
    const batch = async () => {
      const base = (await target.counts()).completed;
      return timedBatch(target, count, { kind: 'noop' }, budgetMs, base);
    };
    await batch();
    const rates: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const ms = await batch();
      rates.push(perSecond(count, ms));
      log(
        `  ${workers} x ${side}, round ${round}: ${count} tasks in ${(ms / 1000).toFixed(2)} s = ` +
          `${rates[rates.length - 1]?.toFixed(0)} tasks/s`,
      );
    }
    return rates;
  } finally {
    await Promise.all(stops.map((stop) => stop()));
    await within(target.close(), CALL_TIMEOUT_MS, `closing ${side}'s producer`);
    await within(dropNamespace(url, store.namespace), CALL_TIMEOUT_MS, `removing ${side}'s keys`);
  }
}

/** The section: for 1, 2 and 4 processes, both sides, the first side alternating by worker count. */
export async function scaleout(
  url: string,
  count: number,
  rounds: number,
  log: (line: string) => void,
): Promise<ScaleoutResult> {
  const cores = availableParallelism();
  log(`  ${cores} cores on this machine`);
  const dir = makeTempDir('scaleout');
  const services = join(dir, 'scaleout-services.mjs');
  writeFileSync(services, servicesModule());
  const points: ScaleoutPoint[] = [];
  try {
    for (const [i, workers] of SCALEOUT_WORKERS.entries()) {
      const order: Side[] = i % 2 === 0 ? ['aiecs', 'bullmq'] : ['bullmq', 'aiecs'];
      const runs: Record<Side, number[]> = { aiecs: [], bullmq: [] };
      for (const side of order) runs[side] = await runSide(side, url, workers, count, rounds, services, log);
      points.push({ workers, aiecs: best(runs.aiecs), bullmq: best(runs.bullmq), runs });
    }
  } finally {
    removeTempDir(dir);
  }
  return { count, rounds, cores, points };
}
