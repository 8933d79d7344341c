/**
 * The backlog section (issue 18): `count` no-op tasks submitted in bulk chunks before any worker
 * starts, then drained by one worker (in this process, concurrency 100, as the throughput rows,
 * after an unmeasured warm-up batch of the side on a throwaway namespace).
 * Per side: the submit rate, the Redis memory each waiting task takes (INFO memory's used_memory
 * over the submission, read before the worker starts), the drain rate and how it changes from the
 * first tenth of the tasks to the last. One run per side (a full run is long), aiecs first, each on
 * a namespace of its own that is dropped before the other side starts.
 */
import { Redis } from 'ioredis';
import { sleep, within } from './lifecycle.js';
import { dropNamespace } from './redis-server.js';
import { drainProfile, perSecond, type DrainProfile, type DrainSample } from './stats.js';
import { aiecsTarget, bullmqTarget, type StoreChoice, type Target } from './targets.js';
import { addInChunks, timedBatch, type Side } from './workloads.js';

/** Polls of the completed count while draining: the tenths are read from them. */
const DRAIN_POLL_MS = 10;
const CALL_TIMEOUT_MS = 60_000;
const CONCURRENCY = 100;
/**
 * Tasks run through a throwaway target of the side first: without it, the first tenth of a quick
 * run's drain was mostly the worker's code warming up (3,300 against 10,100 tasks/s in the last
 * tenth), which hides a drain that slows as the backlog goes.
 */
const WARMUP_TASKS = 5_000;

export interface BacklogSide extends DrainProfile {
  submitPerS: number;
  /** used_memory after the submission less before it, in bytes. */
  memoryBytes: number;
  bytesPerTask: number;
  /** From the worker's start call until it was consuming (outside the drain's rates). */
  workerStartMs: number;
  /** Polls taken during the drain. */
  samples: number;
}

export interface BacklogResult {
  count: number;
  aiecs: BacklogSide;
  bullmq: BacklogSide;
}

/** used_memory of INFO memory: what Redis has allocated, in bytes. */
export async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory');
  const match = /^used_memory:(\d+)\r?$/m.exec(info);
  if (!match?.[1]) throw new Error('INFO memory has no used_memory');
  return Number(match[1]);
}

/** Polls the completed count until `count` have completed; every poll, from the worker's start. */
async function drainSamples(
  target: Target,
  count: number,
  started: number,
  budgetMs: number,
): Promise<DrainSample[]> {
  const samples: DrainSample[] = [];
  for (;;) {
    const { completed, failed } = await within(target.counts(), CALL_TIMEOUT_MS, 'counting jobs');
    const now = performance.now();
    samples.push({ ms: now - started, completed });
    if (failed > 0) throw new Error(`${failed} task(s) failed while draining the backlog`);
    if (completed >= count) return samples;
    if (now - started > budgetMs)
      throw new Error(`only ${completed} of ${count} backlog tasks completed in time`);
    await sleep(DRAIN_POLL_MS);
  }
}

/** A target of `side` on a namespace of its own (emptied first), its worker started or deferred. */
async function open(side: Side, url: string, label: string, deferWorker: boolean) {
  const store: StoreChoice = { kind: 'redis', url, namespace: `bench_backlog_${label}_${process.pid}` };
  await dropNamespace(url, store.namespace);
  const target = await within(
    side === 'aiecs'
      ? aiecsTarget(store, CONCURRENCY, { deferWorker })
      : bullmqTarget(store, CONCURRENCY, { withTaskOptions: false }, { deferWorker }),
    CALL_TIMEOUT_MS,
    `starting ${side}`,
  );
  const close = async () => {
    await within(target.close(), CALL_TIMEOUT_MS, `closing ${side}`);
    await within(dropNamespace(url, store.namespace), CALL_TIMEOUT_MS, `removing ${side}'s keys`);
  };
  return { target, close };
}

async function runSide(
  side: Side,
  url: string,
  count: number,
  log: (line: string) => void,
): Promise<BacklogSide> {
  const warm = await open(side, url, `${side}_warmup`, false);
  try {
    await timedBatch(warm.target, WARMUP_TASKS, { kind: 'noop' }, 60_000 + WARMUP_TASKS * 30);
  } finally {
    await warm.close();
  }
  const { target, close } = await open(side, url, side, true);
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const before = await usedMemory(client);
    const submitStart = performance.now();
    await addInChunks(target, count, { kind: 'noop' });
    const submitMs = performance.now() - submitStart;
    const memoryBytes = (await usedMemory(client)) - before;
    log(
      `  ${side}: ${count} tasks submitted in ${(submitMs / 1000).toFixed(2)} s, ` +
        `${(memoryBytes / count).toFixed(0)} bytes of Redis memory each`,
    );
    const started = performance.now();
    await within(target.startWorker!(), CALL_TIMEOUT_MS, `starting ${side}'s worker`);
    const workerStartMs = performance.now() - started;
    const samples = await drainSamples(target, count, started, 60_000 + count * 2);
    const profile = drainProfile(samples, count);
    log(
      `  ${side}: drained at ${profile.perS.toFixed(0)} tasks/s; first tenth ` +
        `${profile.firstTenthPerS.toFixed(0)}/s, last tenth ${profile.lastTenthPerS.toFixed(0)}/s ` +
        `(flatness ${profile.flatness.toFixed(2)}, ${samples.length} polls)`,
    );
    return {
      ...profile,
      submitPerS: perSecond(count, submitMs),
      memoryBytes,
      bytesPerTask: memoryBytes / count,
      workerStartMs,
      samples: samples.length,
    };
  } finally {
    client.disconnect();
    await close();
  }
}

/** The section: aiecs, then raw BullMQ, each with the same backlog of `count` no-op tasks. */
export async function backlog(
  url: string,
  count: number,
  log: (line: string) => void,
): Promise<BacklogResult> {
  const aiecs = await runSide('aiecs', url, count, log);
  const bullmq = await runSide('bullmq', url, count, log);
  return { count, aiecs, bullmq };
}
