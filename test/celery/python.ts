/**
 * The Python interpreter the Celery tests drive: Debian's `/usr/bin/python3` (where
 * `python3-celery` and `python3-redis` are installed by .ci/run) first, then `python3` on PATH
 * (often a pyenv one without them). The first where `import celery, redis` works wins; none is a
 * clear error rather than a test that passes for nothing. The search itself is shared with the
 * bench (bench/celery-python.ts).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CELERY_PYTHON_CANDIDATES, findCeleryPython } from '../../bench/celery-python.js';

/** The path (or name) of a Python 3 with Celery 5 and redis-py importable. */
export function celeryPython(): string {
  const found = findCeleryPython();
  if (found) return found;
  throw new Error(
    `no Python with Celery found (tried ${CELERY_PYTHON_CANDIDATES.join(', ')}: "import celery, redis" failed); ` +
      "install Debian's python3-celery and python3-redis (apt-get install python3-celery python3-redis), as .ci/run does",
  );
}

/** The path of a script of test/celery/py/. */
export function celeryScript(name: string): string {
  return fileURLToPath(new URL(`./py/${name}`, import.meta.url));
}

/**
 * Runs a script of test/celery/py/ with arguments; resolves with its stdout, rejects with its
 * stderr when it exits non-zero. `env` adds to the process's environment.
 */
export function runPython(
  script: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      celeryPython(),
      [celeryScript(script), ...args],
      {
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${script} failed: ${error.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}
