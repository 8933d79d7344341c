import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { LoopWatch } from './loop-watch.js';

describe('AIECS_BLOCKED_LOOP_EXIT_S', () => {
  it('is off (0) by default, takes seconds, and refuses a negative value naming the variable', () => {
    expect(loadConfig({}).worker.blockedLoopExitS).toBe(0);
    expect(loadConfig({ AIECS_BLOCKED_LOOP_EXIT_S: '90' }).worker.blockedLoopExitS).toBe(90);
    expect(() => loadConfig({ AIECS_BLOCKED_LOOP_EXIT_S: '-1' })).toThrow(
      /AIECS_BLOCKED_LOOP_EXIT_S="-1": Too small: expected number to be >=0/,
    );
  });
});

describe('the loop watch without a watchdog thread', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  function watch() {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const error = vi.fn();
    const logger = { error } as unknown as Logger;
    const loop = new LoopWatch({ reportMs: 1_000, exitS: 0, logger, workerId: 'w' });
    loop.start();
    return { loop, error };
  }

  it('has no timer while no task is in the loop (an idle worker is not woken)', () => {
    const { loop } = watch();
    expect(vi.getTimerCount()).toBe(0);
    const run = { taskId: 't1', liveSlot: -1 };
    loop.enter(run);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(2_000);
    expect(vi.getTimerCount()).toBe(1);
    loop.leave(run);
    // The tick after the last task leaves checks for a block, then stops.
    vi.advanceTimersByTime(500);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('still names a task that blocked the loop and left before the tick, then stops', () => {
    let now = performance.now();
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const { loop, error } = watch();
    const run = { taskId: 'busy', liveSlot: -1 };
    loop.enter(run);
    loop.leave(run);
    // The task held the loop for 3 s: the tick, due after 250 ms, comes 3 s late.
    now += 3_250;
    vi.advanceTimersByTime(250);
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0]![0]).toMatchObject({ tasks: ['busy'] });
    expect(vi.getTimerCount()).toBe(0);
  });
});
