import { describe, expect, it } from 'vitest';
import {
  best,
  drainProfile,
  meets,
  pairedRatioMedian,
  perSecond,
  percentile,
  ratio,
  round,
  summarize,
  timeAt,
} from './stats.js';

describe('percentile', () => {
  it('interpolates between the nearest ranks', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([10, 20, 30], 50)).toBe(20);
    expect(percentile([0, 100], 99)).toBeCloseTo(99);
  });

  it('does not depend on input order and does not reorder the input', () => {
    const samples = [5, 1, 4, 2, 3];
    expect(percentile(samples, 0)).toBe(1);
    expect(percentile(samples, 100)).toBe(5);
    expect(samples).toEqual([5, 1, 4, 2, 3]);
  });

  it('takes the single value of a one-sample set', () => {
    expect(percentile([7], 99)).toBe(7);
  });

  it('refuses an empty sample and out-of-range p', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it('summarizes p50, p99 and the mean', () => {
    const samples = Array.from({ length: 101 }, (_, i) => i);
    expect(summarize(samples)).toEqual({ n: 101, p50: 50, p99: 99, mean: 50 });
  });
});

describe('ratio and rates', () => {
  it('divides, and gives no ratio without both figures or with a zero base', () => {
    expect(ratio(8, 10)).toBe(0.8);
    expect(ratio(undefined, 10)).toBeUndefined();
    expect(ratio(8, undefined)).toBeUndefined();
    expect(ratio(8, 0)).toBeUndefined();
    expect(ratio(Number.NaN, 1)).toBeUndefined();
  });

  it('turns a count and milliseconds into a rate', () => {
    expect(perSecond(10_000, 2_000)).toBe(5_000);
    expect(() => perSecond(1, 0)).toThrow(RangeError);
  });

  it('takes the median of the ratios of rounds run back to back', () => {
    // The second pair ran on a slow machine: both sides slow, their ratio steady.
    expect(pairedRatioMedian([80, 40, 90], [100, 50, 100])).toBeCloseTo(0.8);
    expect(pairedRatioMedian([9, 10], [10, 10])).toBeCloseTo(0.95);
    expect(() => pairedRatioMedian([], [])).toThrow(RangeError);
    expect(() => pairedRatioMedian([1, 2], [1])).toThrow(RangeError);
  });

  it('picks the best run', () => {
    expect(best([3, 9, 4])).toBe(9);
    expect(() => best([])).toThrow(RangeError);
  });

  it('rounds and keeps missing figures missing', () => {
    expect(round(0.8349, 2)).toBe(0.83);
    expect(round(1234.6)).toBe(1235);
    expect(round(undefined, 2)).toBeUndefined();
    expect(round(Number.POSITIVE_INFINITY)).toBeUndefined();
  });
});

describe('meets', () => {
  it('checks each kind of goal', () => {
    expect(meets(0.8, { atLeast: 0.8 })).toBe(true);
    expect(meets(0.79, { atLeast: 0.8 })).toBe(false);
    expect(meets(2.99, { below: 3 })).toBe(true);
    expect(meets(3, { below: 3 })).toBe(false);
    expect(meets(80, { atMost: 80 })).toBe(true);
    expect(meets(80.1, { atMost: 80 })).toBe(false);
    expect(meets(undefined, { atMost: 80 })).toBeUndefined();
  });
});

describe('the drain profile of a backlog', () => {
  /** Polls 10 ms apart of a drain that completes `perPoll[i]` tasks between polls i and i + 1. */
  function polls(perPoll: number[], idlePolls = 2) {
    const samples = Array.from({ length: idlePolls }, (_, i) => ({ ms: i * 10, completed: 0 }));
    let completed = 0;
    for (const [i, n] of perPoll.entries()) {
      completed += n;
      samples.push({ ms: (idlePolls + i) * 10, completed });
    }
    return samples;
  }

  it('interpolates when a level was reached between two polls', () => {
    const samples = [
      { ms: 0, completed: 0 },
      { ms: 10, completed: 100 },
      { ms: 20, completed: 300 },
    ];
    expect(timeAt(samples, 100)).toBe(10);
    expect(timeAt(samples, 200)).toBe(15);
    expect(timeAt(samples, 50)).toBe(5);
    expect(() => timeAt(samples, 301)).toThrow(RangeError);
  });

  it('reads a steady drain as flat, from the last poll that saw nothing completed', () => {
    // 100 tasks per 10 ms after 10 ms of start-up: 10,000 tasks/s throughout.
    const p = drainProfile(polls(Array<number>(100).fill(100)), 10_000);
    expect(p.perS).toBeCloseTo(10_000, 6);
    expect(p.firstTenthPerS).toBeCloseTo(10_000, 6);
    expect(p.lastTenthPerS).toBeCloseTo(10_000, 6);
    expect(p.flatness).toBeCloseTo(1, 10);
  });

  it('reads a drain that halves its rate for the last tenth as flatness 0.5', () => {
    // 9,000 tasks at 100 per poll, then 1,000 at 50 per poll.
    const p = drainProfile(polls([...Array<number>(90).fill(100), ...Array<number>(20).fill(50)]), 10_000);
    expect(p.firstTenthPerS).toBeCloseTo(10_000, 6);
    expect(p.lastTenthPerS).toBeCloseTo(5_000, 6);
    expect(p.flatness).toBeCloseTo(0.5, 10);
    expect(p.perS).toBeCloseTo(10_000 / 1.1, 6);
  });

  it('refuses a drain that never completed, and one too small for tenths', () => {
    expect(() => drainProfile(polls([100, 100]), 1_000)).toThrow(RangeError);
    expect(() => drainProfile(polls([5]), 5)).toThrow(RangeError);
  });
});
