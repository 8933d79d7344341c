/**
 * The option-costs section (issue 18, "find a way for a default-priority task not to pay for
 * BullMQ's prioritized set ... or show with figures why none exists"): raw BullMQ on Redis, no
 * aiecs code, with none of the job options aiecs sets on every task, with its priority alone,
 * with its job id (a UUID) alone, and with both (the attempts and a named worker ride along with
 * either). The `redis` row's gap to plain BullMQ splits by these figures into what each option
 * costs BullMQ itself; aiecs's own layer is the `redis` row's ratio to raw BullMQ with both.
 */
import { best, pairedRatioMedian, perSecond } from './stats.js';
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

export const OPTION_WARMUP_ROUNDS = 2;

export interface OptionCostsResult {
  count: number;
  warmupRounds: number;
  /** jobs/s of every measured round per side, in the order they ran (rounds pair up by index). */
  runs: Record<OptionSide, number[]>;
  /** This process's CPU (producer, worker, polling) per task of every measured round. */
  cpuRuns: Record<OptionSide, number[]>;
  /** Best jobs/s per side. */
  best: Record<OptionSide, number>;
  /** Median over rounds of the side's jobs/s over plain BullMQ's of the same round. */
  ratioVsPlain: Record<CostedSide, number>;
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
  const budgetMs = 30_000 + count * 30;
  const order = (round: number): OptionSide[] =>
    OPTION_SIDES.map((_, i) => OPTION_SIDES[(i + round) % OPTION_SIDES.length]!);
  for (let round = -OPTION_WARMUP_ROUNDS; round < rounds; round++) {
    for (const side of order(round + OPTION_WARMUP_ROUNDS)) {
      const { ms, cpuUs } = await withTarget(TARGET_SIDE[side], redisUrl, 100, async (target) => {
        const before = process.cpuUsage();
        const elapsed = await timedBatch(target, count, { kind: 'noop' }, budgetMs);
        const used = process.cpuUsage(before);
        return { ms: elapsed, cpuUs: used.user + used.system };
      });
      if (round < 0) continue;
      const rate = perSecond(count, ms);
      runs[side].push(rate);
      cpuRuns[side].push(cpuUs / count);
      log(
        `  round ${round + 1}, ${side}: ${rate.toFixed(0)} jobs/s, ${(cpuUs / count).toFixed(0)} us CPU/task`,
      );
    }
  }
  const vsPlain = (side: CostedSide) => pairedRatioMedian(runs[side], runs.plain);
  return {
    count,
    warmupRounds: OPTION_WARMUP_ROUNDS,
    runs,
    cpuRuns,
    best: {
      plain: best(runs.plain),
      priority: best(runs.priority),
      job_id: best(runs.job_id),
      both: best(runs.both),
    },
    ratioVsPlain: { priority: vsPlain('priority'), job_id: vsPlain('job_id'), both: vsPlain('both') },
  };
}

function emptySides(): Record<OptionSide, number[]> {
  return { plain: [], priority: [], job_id: [], both: [] };
}
