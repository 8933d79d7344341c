import { ValidationError } from '../core/errors.js';
import type { TaskContext } from '../core/task-context.js';

/** Longest sleep accepted: an hour is plenty for demos and tests of limits and cancel. */
export const MAX_SLEEP_S = 3600;

export interface SleepResult {
  slept_s: number;
}

function requireSeconds(input: Record<string, unknown>): number {
  const seconds = input.seconds;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SLEEP_S) {
    throw new ValidationError([
      { field: 'input_data.seconds', message: `must be a number of seconds from 0 to ${MAX_SLEEP_S}` },
    ]);
  }
  return seconds;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts (no leaked timer). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * util/sleeper: a task that does nothing for a while, reporting progress each second. It exists
 * to show (and test) time limits and cancel: it stops the moment its signal aborts.
 */
export const sleeper = {
  async sleep(
    input: Record<string, unknown>,
    _ctx: Record<string, unknown>,
    task: TaskContext,
  ): Promise<SleepResult> {
    const seconds = requireSeconds(input);
    const started = Date.now();
    const totalMs = seconds * 1000;
    task.progress(0, `sleeping ${seconds} s`);
    for (let elapsed = 0; elapsed < totalMs;) {
      const step = Math.min(1000, totalMs - elapsed);
      await pause(step, task.signal);
      elapsed += step;
      const done = Math.min(seconds, elapsed / 1000);
      task.progress((elapsed / totalMs) * 100, `slept ${done} of ${seconds} s`);
    }
    return { slept_s: Math.round(Date.now() - started) / 1000 };
  },
};
