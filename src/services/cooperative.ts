import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Yields to the event loop, then throws if the task was aborted. A synchronous loop never lets the
 * timer or message that aborts the signal run, so checking without yielding would only ever see
 * aborts that happened before the task started.
 */
export async function checkpoint(signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  await nextTurn();
  signal.throwIfAborted();
}

/** Rounds to `digits` decimals; keeps results readable and stable in JSON. */
export function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
