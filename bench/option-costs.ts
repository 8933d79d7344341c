/**
 * The option-costs section (issue 18, "find a way for a default-priority task not to pay for
 * BullMQ's prioritized set ... or show with figures why none exists"): raw BullMQ on Redis, no
 * aiecs code, with none of the job options aiecs sets on every task, with its priority alone,
 * with its job id (a UUID) alone, and with both (the attempts and a named worker ride along with
 * either). The `redis` row's gap to plain BullMQ splits by these figures into what each option
 * costs BullMQ itself; aiecs's own layer is the `redis` row's ratio to raw BullMQ with both.
 */
import { Redis } from 'ioredis';
import { best, pairedRatioMedian, percentile, perSecond } from './stats.js';
import { timedBatch, withTarget, type ThroughputSide } from './workloads.js';

export const OPTION_SIDES = ['plain', 'priority', 'job_id', 'both'] as const;
export type OptionSide = (typeof OPTION_SIDES)[number];
type CostedSide = Exclude<OptionSide, 'plain'>;

const TARGET_SIDE: Record<OptionSide, ThroughputSide> = {
  plain: 'bullmq',
  priority: 'bullmq_priority',
  job_id: 'bullmq_job_id',
  both: 'bullmq_opts',
};

const OPTION_WARMUP_ROUNDS = 2;

export interface OptionCostsResult {
  count: number;
  warmupRounds: number;
  /** jobs/s of every measured round per side, in the order they ran (rounds pair up by index). */
  runs: Record<OptionSide, number[]>;
  /** This process's CPU (producer, worker, polling) per task of every measured round. */
  cpuRuns: Record<OptionSide, number[]>;
  /**
   * redis-server's own time per task of every measured round (INFO commandstats, reset before the
   * round): the rounds' rates move by more than the options cost, this far less.
   */
  redisRuns: Record<OptionSide, number[]>;
  /** Best jobs/s per side. */
  best: Record<OptionSide, number>;
  /** Median over rounds of the side's jobs/s over plain BullMQ's of the same round. */
  ratioVsPlain: Record<CostedSide, number>;
  /** Median of redisRuns per side. */
  redisUsPerTask: Record<OptionSide, number>;
}

/** The time redis-server spent in commands since its stats were reset, in microseconds. */
export function commandUsec(info: string): number {
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_[^:]+:calls=\d+,usec=(\d+),/gm)) total += Number(match[1]);
  return total;
}

/**
 * `count` no-op tasks per side and round, every side once a round, the order turned by one place
 * each round so that no side always runs first (or right after another): on a shared machine the
 * figure is the paired median, not the best.
 */
export async function optionCosts(
  redisUrl: string,
  count: number,
  rounds: number,
  log: (line: string) => void,
): Promise<OptionCostsResult> {
  const runs = emptySides();
  const cpuRuns = emptySides();
  const redisRuns = emptySides();
  const budgetMs = 30_000 + count * 30;
  const order = (round: number): OptionSide[] =>
    OPTION_SIDES.map((_, i) => OPTION_SIDES[(i + round) % OPTION_SIDES.length]!);
  const stats = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await stats.connect();
  try {
    for (let round = -OPTION_WARMUP_ROUNDS; round < rounds; round++) {
      for (const side of order(round + OPTION_WARMUP_ROUNDS)) {
        const measured = await withTarget(TARGET_SIDE[side], redisUrl, 100, async (target) => {
          await stats.config('RESETSTAT');
          const before = process.cpuUsage();
          const ms = await timedBatch(target, count, { kind: 'noop' }, budgetMs);
          const used = process.cpuUsage(before);
          const redisUs = commandUsec(await stats.info('commandstats'));
          return { ms, cpuUs: used.user + used.system, redisUs };
        });
        if (round < 0) continue;
        const rate = perSecond(count, measured.ms);
        runs[side].push(rate);
        cpuRuns[side].push(measured.cpuUs / count);
        redisRuns[side].push(measured.redisUs / count);
        log(
          `  round ${round + 1}, ${side}: ${rate.toFixed(0)} jobs/s, ` +
            `${(measured.cpuUs / count).toFixed(0)} us CPU/task, redis ${(measured.redisUs / count).toFixed(1)} us/task`,
        );
      }
    }
  } finally {
    stats.disconnect();
  }
  const vsPlain = (side: CostedSide) => pairedRatioMedian(runs[side], runs.plain);
  const perSide = (of: (side: OptionSide) => number) =>
    Object.fromEntries(OPTION_SIDES.map((side) => [side, of(side)])) as Record<OptionSide, number>;
  return {
    count,
    warmupRounds: OPTION_WARMUP_ROUNDS,
    runs,
    cpuRuns,
    redisRuns,
    best: perSide((side) => best(runs[side])),
    ratioVsPlain: { priority: vsPlain('priority'), job_id: vsPlain('job_id'), both: vsPlain('both') },
    redisUsPerTask: perSide((side) => percentile(redisRuns[side], 50)),
  };
}

function emptySides(): Record<OptionSide, number[]> {
  return { plain: [], priority: [], job_id: [], both: [] };
}
