/**
 * Finds the Python interpreter that can drive Celery: Debian's `/usr/bin/python3` (where
 * `python3-celery` and `python3-redis` are installed by .ci/run) first, then `python3` on PATH
 * (often a pyenv one without them). Shared by the Celery tests (test/celery/python.ts, which
 * throws when none is found) and the bench's celery section (which is skipped then).
 */
import { execFileSync } from 'node:child_process';

/** Tried in this order; the first where `import celery, redis` works wins. */
export const CELERY_PYTHON_CANDIDATES: readonly string[] = ['/usr/bin/python3', 'python3'];

let cached: { python: string | undefined } | undefined;

/** The path (or name) of a Python 3 with Celery and redis-py importable, or undefined. */
export function findCeleryPython(): string | undefined {
  if (cached) return cached.python;
  let python: string | undefined;
  for (const candidate of CELERY_PYTHON_CANDIDATES) {
    try {
      execFileSync(candidate, ['-c', 'import celery, redis'], { stdio: 'ignore', timeout: 30_000 });
      python = candidate;
      break;
    } catch {
      // Not there, or without Celery: try the next.
    }
  }
  cached = { python };
  return python;
}
