import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';

describe('AIECS_BLOCKED_LOOP_EXIT_S', () => {
  it('is off (0) by default, takes seconds, and refuses a negative value naming the variable', () => {
    expect(loadConfig({}).worker.blockedLoopExitS).toBe(0);
    expect(loadConfig({ AIECS_BLOCKED_LOOP_EXIT_S: '90' }).worker.blockedLoopExitS).toBe(90);
    expect(() => loadConfig({ AIECS_BLOCKED_LOOP_EXIT_S: '-1' })).toThrow(
      /AIECS_BLOCKED_LOOP_EXIT_S="-1": Too small: expected number to be >=0/,
    );
  });
});
