/**
 * The in-process workloads. Each builds fresh targets (own Redis prefix or own embedded dir), runs
 * one loop on them and closes them again, so no run sees another's leftovers.
 */
import { sleep, within } from './lifecycle.js';
import { takeTurns } from './turns.js';
import { dropSchema } from './postgres-server.js';
import { dropNamespace } from './redis-server.js';
import { best, percentile, perSecond, summarize, type Summary } from './stats.js';
import { countingMetrics, disableMetrics, enableMetrics } from '../src/core/metrics.js';
import {
  BENCH_SCRAPE_MS,
  aiecsTarget,
  bullmqTarget,
  type BenchHistory,
  type BenchTask,
  type BullmqShape,
  type StoreChoice,
  type Target,
} from './targets.js';

/** How often completion is polled: both sides are polled the same way, so both carry the same error. */
const POLL_MS = 20;
const CHUNK = 1_000;
/** Any single store call taking this long means something is broken, not slow. */
const CALL_TIMEOUT_MS = 60_000;
/** Unmeasured rounds per side before the throughput rounds (see `throughput`). */
const WARMUP_ROUNDS = 3;

export type Side = 'aiecs' | 'bullmq';
/**
 * The throughput workload's optional sides: raw BullMQ with aiecs's job options (or, for the
 * option-costs section, with its priority or its job id alone), aiecs with its metrics counted and
 * scraped, and aiecs with the task history kept in PostgreSQL.
 */
export type ThroughputSide =
  Side | 'bullmq_opts' | 'bullmq_priority' | 'bullmq_job_id' | 'aiecs_metrics' | 'aiecs_history';

/** Raw BullMQ's shape per side: plain, with aiecs's job options, or with one of them (option-costs.ts). */
const BULLMQ_SHAPES: Partial<Record<ThroughputSide, BullmqShape>> = {
  bullmq: { withTaskOptions: false },
  bullmq_opts: { withTaskOptions: true },
  bullmq_priority: { withTaskOptions: true, only: 'priority' },
  bullmq_job_id: { withTaskOptions: true, only: 'jobId' },
};

let serial = 0;
/** A Redis key prefix no earlier run used (namespaces must match /^[a-z_][a-z0-9_]{0,40}$/). */
function prefix(side: ThroughputSide): string {
  serial += 1;
  return `bench_${side}_${process.pid}_${serial}`;
}

/** Redis or PostgreSQL at `storeUrl` (a prefix or schema of the side's own), else embedded. */
function storeFor(side: ThroughputSide, storeUrl: string | undefined): StoreChoice {
  if (!storeUrl) return { kind: 'embedded' };
  return /^postgres(ql)?:/.test(storeUrl)
    ? { kind: 'postgres', url: storeUrl, schema: prefix(side) }
    : { kind: 'redis', url: storeUrl, namespace: prefix(side) };
}

export async function withTarget<T>(
  side: ThroughputSide,
  storeUrl: string | undefined,
  concurrency: number,
  run: (target: Target) => Promise<T>,
  history?: BenchHistory,
): Promise<T> {
  const store = storeFor(side, storeUrl);
  const target = await within(
    side === 'aiecs' || side === 'aiecs_metrics' || side === 'aiecs_history'
      ? aiecsTarget(store, concurrency, {
          metrics: side === 'aiecs_metrics',
          ...(side === 'aiecs_history' && history ? { history } : {}),
        })
      : bullmqTarget(store, concurrency, BULLMQ_SHAPES[side]),
    CALL_TIMEOUT_MS,
    `starting ${side}`,
  );
  try {
    return await run(target);
  } finally {
    await within(target.close(), CALL_TIMEOUT_MS, `closing ${side}`);
    if (store.kind === 'redis')
      await within(dropNamespace(store.url, store.namespace), CALL_TIMEOUT_MS, `removing ${side}'s keys`);
    if (store.kind === 'postgres')
      await within(dropSchema(store.url, store.schema), CALL_TIMEOUT_MS, `removing ${side}'s schema`);
  }
}

/** Polls until `count` tasks beyond `base` have completed; the time is the poll's that saw them. */
async function untilCompleted(target: Target, count: number, deadline: number, base = 0): Promise<number> {
  for (;;) {
    const { completed, failed } = await within(target.counts(), CALL_TIMEOUT_MS, 'counting jobs');
    const now = performance.now();
    if (failed > 0) throw new Error(`${failed} task(s) failed during the benchmark`);
    if (completed - base >= count) return now;
    if (now > deadline) throw new Error(`only ${completed - base} of ${count} tasks completed in time`);
    await sleep(POLL_MS);
  }
}

/** Adds `count` tasks in chunks of CHUNK, one bulk call each, as every workload does. */
export async function addInChunks(target: Target, count: number, task: BenchTask): Promise<void> {
  for (let added = 0; added < count; added += CHUNK) {
    await within(target.addBulk(Math.min(CHUNK, count - added), task), CALL_TIMEOUT_MS, 'adding tasks');
  }
}

/** Milliseconds from the first add until `count` tasks have completed (beyond `base` before). */
export async function timedBatch(target: Target, count: number, task: BenchTask, budgetMs: number, base = 0) {
  const start = performance.now();
  await addInChunks(target, count, task);
  return (await untilCompleted(target, count, start + budgetMs, base)) - start;
}

export interface ThroughputResult {
  count: number;
  /** Unmeasured rounds per side before the measured ones. */
  warmupRounds: number;
  /** jobs/s of every run, in the order they ran. */
  runs: Record<Side, number[]> & {
    bullmqTaskOptions?: number[];
    aiecsMetrics?: number[];
    aiecsHistory?: number[];
  };
  aiecs: number;
  bullmq: number;
  /** Raw BullMQ given aiecs's job options (see BullmqShape); measured on request, no goal. */
  bullmqTaskOptions?: number;
  /** aiecs with metrics on (counted, and scraped every BENCH_SCRAPE_MS); measured on request. */
  aiecsMetrics?: number;
  /** aiecs with the task history on (its consumer in the worker's process); measured on request. */
  aiecsHistory?: number;
  /**
   * CPU time of this process (producer, worker and polling) per task, lowest run. On Redis, whose
   * server has its own process, this tells a gap in our CPU from a gap in the store (PGlite, in
   * process, counts here too).
   */
  cpuUsPerTask: Record<Side, number> & {
    bullmqTaskOptions?: number;
    aiecsMetrics?: number;
    aiecsHistory?: number;
  };
  /** CPU us/task of every run per side, in the order they ran (rounds pair up by index). */
  cpuRuns: Record<Side, number[]> & { aiecsMetrics?: number[]; aiecsHistory?: number[] };
  /** What metrics cost a task, measured apart from the rounds (see `metricsCost`). */
  metricsCost?: MetricsCost;
  /** What the history held after each measured round with it on (see `untilRecorded`). */
  history?: HistoryRound[];
}

/** The history after a round: its entries, the tasks it saw complete, and when it had them all. */
export interface HistoryRound {
  entries: number;
  recorded: number;
  /** From the round's last completion until the history held every task (unmeasured time). */
  catchUpMs: number;
}

/** Longest wait for the history to hold a round's tasks after they completed. */
const HISTORY_CATCH_UP_MS = 60_000;

/**
 * Waits, outside the measured time, until the history holds every task of the round (a
 * `completed` entry each), or gives up after HISTORY_CATCH_UP_MS with what it holds.
 */
async function untilRecorded(target: Target, count: number): Promise<HistoryRound> {
  const start = performance.now();
  for (;;) {
    const held = await within(target.history!(), CALL_TIMEOUT_MS, 'counting history entries');
    const now = performance.now();
    if (held.completed >= count || now - start > HISTORY_CATCH_UP_MS)
      return { entries: held.entries, recorded: held.completed, catchUpMs: now - start };
    await sleep(POLL_MS);
  }
}

export interface MetricsCost {
  /** CPU of the counting a no-op task's end does (the worker's hooks), per task. */
  hookUs: number;
  /** CPU of one scrape (the text exposition). */
  scrapeUs: number;
  /** The interval the scrape's share is reckoned at. */
  scrapeMs: number;
}

/**
 * What metrics cost per task, measured on their own: a whole round's CPU moves by more than that
 * from one round to the next on a shared machine, so the rounds on and off alone cannot tell a
 * 3 % cost. The worker's hooks for a no-op task's end are run many times over (as the worker
 * calls them), and a scrape is timed over a process that has counted tasks of many names.
 */
export async function metricsCost(): Promise<MetricsCost> {
  const metrics = enableMetrics();
  try {
    // A scrape's size grows with task names: twenty, as a deployment with several services has.
    for (let i = 0; i < 20; i++) metrics.taskEnded(`bench_task_${i}`, 'completed', 0.01 * i);
    const cpuUs = (run: () => void | Promise<void>, n: number) => async () => {
      const before = process.cpuUsage();
      for (let i = 0; i < n; i++) await run();
      const used = process.cpuUsage(before);
      return (used.user + used.system) / n;
    };
    const hooks = 200_000;
    const hook = cpuUs(() => {
      // Exactly what TaskRun.counted does for a completed no-op task.
      for (let i = 0; i < hooks; i++) countingMetrics()?.taskEnded('noop', 'completed', 0.001);
    }, 1);
    const scrape = cpuUs(async () => void (await metrics.exposition()), 50);
    // Warm first, then the lowest of three (the same rule as the rounds: noise only adds).
    await hook();
    await scrape();
    const hookUs = Math.min(await hook(), await hook(), await hook()) / hooks;
    const scrapeUs = Math.min(await scrape(), await scrape(), await scrape());
    return { hookUs, scrapeUs, scrapeMs: BENCH_SCRAPE_MS };
  } finally {
    disableMetrics();
  }
}

/**
 * `count` no-op tasks end to end, `rounds` times per side after a warm-up, alternating aiecs and
 * BullMQ so that a noisy neighbour hurts both alike; the best run of each side counts.
 */
export async function throughput(
  storeUrl: string | undefined,
  count: number,
  rounds: number,
  log: (line: string) => void,
  options: { withTaskOptions?: boolean; withMetrics?: boolean; withHistory?: BenchHistory } = {},
): Promise<ThroughputResult> {
  const sides: ThroughputSide[] = [
    ...(options.withMetrics ? ['aiecs_metrics' as const] : []),
    ...(options.withHistory ? ['aiecs_history' as const] : []),
    'aiecs',
    'bullmq',
    ...(options.withTaskOptions ? ['bullmq_opts' as const] : []),
  ];
  // Metrics (or history) on and off run back to back, each first in turn, so that whatever running
  // first after raw BullMQ costs is shared (with on always first, two runs read +5 % and +26 % for
  // metrics, which cost about 1 % measured apart).
  const order = (round: number): ThroughputSide[] =>
    (options.withMetrics || options.withHistory) && round % 2 === 0
      ? ['aiecs', ...sides.filter((side) => side !== 'aiecs')]
      : sides;
  const empty = (): Record<ThroughputSide, number[]> => ({
    aiecs: [],
    bullmq: [],
    bullmq_opts: [],
    bullmq_priority: [],
    bullmq_job_id: [],
    aiecs_metrics: [],
    aiecs_history: [],
  });
  const runs = empty();
  const cpu = empty();
  const recorded: HistoryRound[] = [];
  // Every round with the history on, warm-up or not, is followed by what the history holds.
  const checkHistory = (t: Target, side: ThroughputSide) =>
    side === 'aiecs_history' ? untilRecorded(t, count) : Promise.resolve(undefined);
  const describe = (held: HistoryRound | undefined) =>
    held
      ? `; history: ${held.recorded} of ${count} tasks, ${held.entries} entries, ` +
        `${(held.catchUpMs / 1000).toFixed(2)} s after the last completion`
      : '';
  const budgetMs = 30_000 + count * 30;
  // Unmeasured rounds of the same size per side first: the figure is a warm worker's. One round
  // was not enough: measured alone, aiecs's CPU per task fell round over round for four to six
  // rounds of 10,000 (about 210 -> 160 -> 127 -> 115 us) while raw BullMQ, with less code to
  // compile, settled after one; the measured rounds then compared a cold aiecs with a warm BullMQ.
  for (let round = 1; round <= WARMUP_ROUNDS; round++) {
    for (const side of order(round)) {
      await withTarget(
        side,
        storeUrl,
        100,
        async (t) => {
          await timedBatch(t, count, { kind: 'noop' }, budgetMs);
          const held = await checkHistory(t, side);
          if (held) log(`  warm-up ${round}, ${side}${describe(held)}`);
        },
        options.withHistory,
      );
    }
  }
  for (let round = 1; round <= rounds; round++) {
    for (const side of order(round)) {
      const { ms, cpuUs, held } = await withTarget(
        side,
        storeUrl,
        100,
        async (t) => {
          const before = process.cpuUsage();
          const elapsed = await timedBatch(t, count, { kind: 'noop' }, budgetMs);
          const used = process.cpuUsage(before);
          return { ms: elapsed, cpuUs: used.user + used.system, held: await checkHistory(t, side) };
        },
        options.withHistory,
      );
      if (held) recorded.push(held);
      const rate = perSecond(count, ms);
      runs[side].push(rate);
      cpu[side].push(cpuUs / count);
      log(
        `  round ${round}, ${side}: ${count} tasks in ${(ms / 1000).toFixed(2)} s = ${rate.toFixed(0)} jobs/s` +
          `, ${(cpuUs / count).toFixed(0)} us CPU/task${describe(held)}`,
      );
    }
  }
  const result: ThroughputResult = {
    count,
    warmupRounds: WARMUP_ROUNDS,
    runs: { aiecs: runs.aiecs, bullmq: runs.bullmq },
    aiecs: best(runs.aiecs),
    bullmq: best(runs.bullmq),
    cpuUsPerTask: { aiecs: Math.min(...cpu.aiecs), bullmq: Math.min(...cpu.bullmq) },
    cpuRuns: { aiecs: cpu.aiecs, bullmq: cpu.bullmq },
  };
  if (options.withTaskOptions) {
    result.runs.bullmqTaskOptions = runs.bullmq_opts;
    result.bullmqTaskOptions = best(runs.bullmq_opts);
    result.cpuUsPerTask.bullmqTaskOptions = Math.min(...cpu.bullmq_opts);
  }
  if (options.withMetrics) {
    result.runs.aiecsMetrics = runs.aiecs_metrics;
    result.aiecsMetrics = best(runs.aiecs_metrics);
    result.cpuUsPerTask.aiecsMetrics = Math.min(...cpu.aiecs_metrics);
    result.cpuRuns.aiecsMetrics = cpu.aiecs_metrics;
    result.metricsCost = await metricsCost();
  }
  if (options.withHistory) {
    result.runs.aiecsHistory = runs.aiecs_history;
    result.aiecsHistory = best(runs.aiecs_history);
    result.cpuUsPerTask.aiecsHistory = Math.min(...cpu.aiecs_history);
    result.cpuRuns.aiecsHistory = cpu.aiecs_history;
    result.history = recorded;
  }
  return result;
}

export interface LatencyResult {
  count: number;
  /** Unmeasured tasks each side ran first (LATENCY_WARMUP). */
  warmup: number;
  aiecs: Summary;
  bullmq: Summary;
  /** Raw BullMQ given the job options aiecs sets (see BullmqShape): what they cost BullMQ itself. */
  bullmqTaskOptions: Summary;
}

/**
 * Unmeasured tasks per side before the latency samples. Each side starts cold, and V8 compiles its
 * hot paths over the first thousand-odd tasks: on the 2-core machine, loaded, aiecs's p50 per 100
 * tasks fell from 1.7 to about 0.75 ms over its first 1,500 tasks, raw BullMQ's from 0.9 to about
 * 0.65 over 900. With 10, as before, the section measured mostly that compilation, more of aiecs's
 * (more code runs per task), and raw BullMQ, run second, found BullMQ's and ioredis's code
 * compiled already by aiecs's run.
 */
export const LATENCY_WARMUP = 2_000;
/** Tasks a side runs in one turn (see takeTurns). */
const LATENCY_BLOCK = 50;

/**
 * One task at a time, submit to result, on aiecs, raw BullMQ and raw BullMQ with aiecs's job
 * options, all started at once and taking turns (bench/turns.ts), after LATENCY_WARMUP tasks each.
 */
export async function latency(
  redisUrl: string,
  count: number,
  log: (line: string) => void,
): Promise<LatencyResult> {
  const budgetMs = 60_000 + 3 * (LATENCY_WARMUP + count) * 20;
  const timeoutMs = 30_000;
  const noop = (t: Target) => () => t.runOne({ kind: 'noop' }, timeoutMs);
  const samples = await withTarget('aiecs', redisUrl, 100, (aiecs) =>
    withTarget('bullmq', redisUrl, 100, (bullmq) =>
      withTarget('bullmq_opts', redisUrl, 100, (bullmqOpts) =>
        within(
          takeTurns(
            { aiecs: noop(aiecs), bullmq: noop(bullmq), bullmqTaskOptions: noop(bullmqOpts) },
            { count, warmup: LATENCY_WARMUP, block: LATENCY_BLOCK },
          ),
          budgetMs,
          'latency',
        ),
      ),
    ),
  );
  const result = {
    count,
    warmup: LATENCY_WARMUP,
    aiecs: summarize(samples.aiecs),
    bullmq: summarize(samples.bullmq),
    bullmqTaskOptions: summarize(samples.bullmqTaskOptions),
  };
  const line = (name: string, s: Summary) =>
    log(`  ${name}: p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms over ${count} tasks`);
  line('aiecs', result.aiecs);
  line('bullmq', result.bullmq);
  line("bullmq with aiecs's job options", result.bullmqTaskOptions);
  return result;
}

export interface IoResult {
  count: number;
  waitMs: number;
  /** Unmeasured batches per side before the measured ones. */
  warmupRounds: number;
  /** Median wall seconds of the measured batches. */
  aiecsS: number;
  bullmqS: number;
  /** Every measured batch's wall seconds, per side, in the order they ran. */
  runs: { aiecs: number[]; bullmq: number[] };
}

/** Batches per side before the measured ones, and measured: see `ioWall`. */
export const IO_WARMUP_ROUNDS = 1;
export const IO_ROUNDS = 3;

/**
 * `count` tasks that each await `waitMs`, all at once on one worker: measures I/O concurrency.
 * Both sides start together and take turns, one batch each, after a warm-up batch each: run one
 * after the other from cold, the first side's batch was mostly V8 compiling the code both share
 * (BullMQ, ioredis), which the second then found compiled (as in `latency`).
 */
export async function ioWall(
  redisUrl: string,
  count: number,
  waitMs: number,
  log: (line: string) => void,
  rounds = IO_ROUNDS,
): Promise<IoResult> {
  const task: BenchTask = { kind: 'wait', ms: waitMs };
  const budgetMs = 60_000 + count * 10;
  const completed = { aiecs: 0, bullmq: 0 };
  const batch = (side: keyof typeof completed, target: Target) => async () => {
    await timedBatch(target, count, task, budgetMs, completed[side]);
    completed[side] += count;
  };
  const samples = await withTarget('aiecs', redisUrl, count, (aiecs) =>
    withTarget('bullmq', redisUrl, count, (bullmq) =>
      within(
        takeTurns(
          { aiecs: batch('aiecs', aiecs), bullmq: batch('bullmq', bullmq) },
          { count: rounds, warmup: IO_WARMUP_ROUNDS, block: 1 },
        ),
        (rounds + IO_WARMUP_ROUNDS) * 2 * budgetMs,
        'io',
      ),
    ),
  );
  const runs = { aiecs: samples.aiecs.map((ms) => ms / 1000), bullmq: samples.bullmq.map((ms) => ms / 1000) };
  for (const side of ['aiecs', 'bullmq'] as const) {
    log(`  ${side}: ${count} x ${waitMs} ms in ${runs[side].map((s) => s.toFixed(2)).join(', ')} s`);
  }
  return {
    count,
    waitMs,
    warmupRounds: IO_WARMUP_ROUNDS,
    aiecsS: percentile(runs.aiecs, 50),
    bullmqS: percentile(runs.bullmq, 50),
    runs,
  };
}
