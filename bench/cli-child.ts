/**
 * The aiecs CLI processes the sections start (`aiecs worker`, `aiecs gateway`, `aiecs up`) and
 * what is read from them: their environment, the start up to a ready line, CPU time and RSS.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { benchNodeArgs, rssMb, spawnTracked, stopChild, waitForLine } from './lifecycle.js';

/** The built CLI beside the bench's build (dist-bench/src). */
export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
export const READY_TIMEOUT_MS = 60_000;
const RSS_SAMPLE_MS = 200;

/**
 * A child's environment: ours, quiet (warn), on loopback, plus `extra`. The broker comes from the
 * flags, never from our environment, and neither do services modules nor the names in `drop`.
 */
export function cliEnv(extra: Record<string, string> = {}, drop: readonly string[] = []): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AIECS_LOG_LEVEL: 'warn',
    AIECS_HOST: '127.0.0.1',
    ...extra,
  };
  for (const name of ['AIECS_BROKER_URL', 'CELERY_BROKER_URL', 'REDIS_URL', 'AIECS_SERVICES', ...drop])
    delete env[name];
  return env;
}

export interface Child {
  process: ChildProcess;
  /** The last few KB of its stderr, for error messages. */
  stderrTail(): string;
  /** Lines of its stderr that matched `count`. */
  counted(): number;
}

/** Spawns the CLI with `args`, keeps the tail of its stderr, waits for its ready line. */
export async function startCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  count?: RegExp,
): Promise<Child> {
  const child = spawnTracked(process.execPath, [...benchNodeArgs(), CLI, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let matched = 0;
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    tail = (tail + text).slice(-4_000);
    if (count) matched += text.split('\n').filter((line) => count.test(line)).length;
  });
  const handle: Child = { process: child, stderrTail: () => tail.trim(), counted: () => matched };
  try {
    await waitForLine(child, ready, READY_TIMEOUT_MS);
  } catch (error) {
    await stopChild(child, 1_000);
    throw error;
  }
  return handle;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux; USER_HZ is 100 there). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface RssSampler {
  /** Stops sampling; the peak MB seen, a last sample included. */
  stop(): number;
}

/** Max of /proc VmRSS, read every RSS_SAMPLE_MS until stopped. */
export function rssSampler(pid: number): RssSampler {
  let peak = rssMb(pid);
  const sample = () => {
    try {
      peak = Math.max(peak, rssMb(pid));
    } catch {
      // The child is gone; the run will say why.
    }
  };
  const timer = setInterval(sample, RSS_SAMPLE_MS);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}
