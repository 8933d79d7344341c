import { describe, expect, it } from 'vitest';
import { takeTurns } from './turns.js';

describe('takeTurns', () => {
  it('runs every side warmup + count times in blocks, who goes first moving on each round', async () => {
    const order: string[] = [];
    const run = (side: string) => async () => void order.push(side);
    const samples = await takeTurns(
      { a: run('a'), b: run('b'), c: run('c') },
      { count: 4, warmup: 3, block: 2 },
    );
    expect(order.join('')).toBe('aabbcc' + 'bbccaa' + 'ccaabb' + 'abc');
    for (const side of ['a', 'b', 'c']) expect(order.filter((s) => s === side)).toHaveLength(7);
    expect(Object.values(samples).map((xs) => xs.length)).toEqual([4, 4, 4]);
  });

  it('measures only the runs after the warm-up', async () => {
    // Run n takes n ms on the test's clock.
    let clock = 0;
    let calls = 0;
    const run = async () => void (clock += ++calls);
    const { only } = await takeTurns({ only: run }, { count: 3, warmup: 2, block: 10, now: () => clock });
    expect(only).toEqual([3, 4, 5]);
  });
});
