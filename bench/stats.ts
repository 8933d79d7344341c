/**
 * Pure arithmetic for the benchmark: percentiles, ratios, rates and rounding. Kept apart from the
 * workloads so it can be tested without clocks, stores or processes.
 */

/**
 * The p-th percentile (0–100) by linear interpolation between the two nearest ranks (the common
 * "type 7" definition), so p50 of an even-sized sample is the mean of the middle two.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of an empty sample');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  const low = sorted[lower] as number;
  const high = sorted[upper] as number;
  return low + (high - low) * (rank - lower);
}

/** `a / b`, or undefined when either side is missing or b is not a positive number. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) {
    return undefined;
  }
  return a / b;
}

/** Tasks per second for `count` tasks in `ms` milliseconds. */
export function perSecond(count: number, ms: number): number {
  if (!(ms > 0)) throw new RangeError(`elapsed time must be positive, got ${ms}`);
  return (count * 1000) / ms;
}

/**
 * The median of the per-round ratios a[i] / b[i], where round i of each side ran back to back:
 * a neighbour that slows the machine for a while slows both rounds of a pair, so their ratio
 * moves less than either side's best run does.
 */
export function pairedRatioMedian(a: readonly number[], b: readonly number[]): number {
  if (a.length === 0 || a.length !== b.length)
    throw new RangeError('paired ratio needs rounds of both sides');
  return percentile(
    a.map((x, i) => x / (b[i] as number)),
    50,
  );
}

/** The highest value: the best of several runs damps a noisy, shared machine. */
export function best(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('best of no runs');
  return Math.max(...values);
}

/** Rounds to `digits` decimals; undefined stays undefined so absent figures stay absent. */
export function round(value: number | undefined, digits = 0): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  const total = samples.reduce((sum, x) => sum + x, 0);
  return {
    n: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    mean: samples.length ? total / samples.length : NaN,
  };
}

/** Whether a figure meets its goal; undefined (no verdict) when the figure is missing. */
export function meets(
  value: number | undefined,
  goal: { atLeast?: number; below?: number; atMost?: number },
): boolean | undefined {
  if (value === undefined) return undefined;
  if (goal.atLeast !== undefined && !(value >= goal.atLeast)) return false;
  if (goal.below !== undefined && !(value < goal.below)) return false;
  if (goal.atMost !== undefined && !(value <= goal.atMost)) return false;
  return true;
}

/** A poll of a draining queue: milliseconds since the worker started, and the tasks completed by then. */
export interface DrainSample {
  ms: number;
  completed: number;
}

/**
 * When `level` completions were reached: linearly interpolated between the last sample below it
 * and the first at or above it (the polls are some milliseconds apart).
 */
export function timeAt(samples: readonly DrainSample[], level: number): number {
  const i = samples.findIndex((s) => s.completed >= level);
  if (i < 0) throw new RangeError(`the samples never reach ${level} completions`);
  const cur = samples[i] as DrainSample;
  const prev = samples[i - 1];
  if (!prev) return cur.ms;
  return prev.ms + ((level - prev.completed) / (cur.completed - prev.completed)) * (cur.ms - prev.ms);
}

export interface DrainProfile {
  /** All `count` tasks over the drain, which starts at the last poll that saw none completed. */
  perS: number;
  /** The first tenth of the tasks, from the drain's start. */
  firstTenthPerS: number;
  /** The last tenth, from the 90 % mark to the last. */
  lastTenthPerS: number;
  /** lastTenthPerS / firstTenthPerS: 1 is a flat drain, below 1 a drain that slows as it goes. */
  flatness: number;
}

/**
 * The rates of a backlog's drain from polls of its completed count. The drain starts at the last
 * poll with nothing completed, so that the worker's own start-up is not counted against the
 * first tenth (which would read as a drain speeding up).
 */
export function drainProfile(samples: readonly DrainSample[], count: number): DrainProfile {
  if (!(count >= 10)) throw new RangeError(`a drain profile needs at least 10 tasks, got ${count}`);
  const idle = samples.filter((s) => s.completed === 0);
  const start = idle.length ? (idle[idle.length - 1] as DrainSample).ms : (samples[0]?.ms ?? 0);
  const end = timeAt(samples, count);
  const tenth = count / 10;
  const first = timeAt(samples, tenth) - start;
  const last = end - timeAt(samples, count - tenth);
  const firstTenthPerS = perSecond(tenth, first);
  const lastTenthPerS = perSecond(tenth, last);
  return {
    perS: perSecond(count, end - start),
    firstTenthPerS,
    lastTenthPerS,
    flatness: lastTenthPerS / firstTenthPerS,
  };
}
