/**
 * One task at a time on several sides at once, taking turns: each side runs a block of tasks, then
 * the next; who goes first moves on each round. A load that comes and goes on a shared machine then
 * falls on every side alike, and so does the process's own warming up, which sides run one after
 * the other do not share (the second finds the code they share compiled already).
 */

export interface TurnOptions {
  /** Measured runs per side. */
  count: number;
  /** Runs per side before the measured ones, not measured. */
  warmup: number;
  /** Runs a side makes in one turn. */
  block: number;
  /** Milliseconds from some fixed point (tests give their own). */
  now?: () => number;
}

/** Runs each side's `run` warmup + count times in turns; the measured runs' times (ms), per side. */
export async function takeTurns<K extends string>(
  run: Record<K, () => Promise<void>>,
  { count, warmup, block, now = () => performance.now() }: TurnOptions,
): Promise<Record<K, number[]>> {
  const sides = Object.keys(run) as K[];
  const samples = Object.fromEntries(sides.map((side) => [side, [] as number[]])) as Record<K, number[]>;
  const done = Object.fromEntries(sides.map((side) => [side, 0])) as Record<K, number>;
  const total = warmup + count;
  for (let round = 0; sides.some((side) => done[side] < total); round++) {
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(round + i) % sides.length]!;
      for (let n = 0; n < block && done[side] < total; n++) {
        const start = now();
        await run[side]();
        if (done[side] >= warmup) samples[side].push(now() - start);
        done[side] += 1;
      }
    }
  }
  return samples;
}
