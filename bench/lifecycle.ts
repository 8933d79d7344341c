/**
 * What the benchmark owns outside its own heap: child processes and temp dirs. Everything is
 * registered here so that a normal end, an error, a watchdog and Ctrl-C all leave nothing behind.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** A fresh directory under the OS temp dir, removed by `removeTempDir` or at exit. */
export function makeTempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `aiecs-bench-${label}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** AIECS_BENCH_NODE_ARGS: flags for the node of the aiecs processes a bench starts, e.g. `--cpu-prof`. */
export function benchNodeArgs(): string[] {
  return (process.env.AIECS_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

/** Spawns a child that is killed at exit if it is still running then. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  // A spawn failure (ENOENT) arrives as 'error'; callers see it as an exit without a ready line.
  child.once('error', () => children.delete(child));
  return child;
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}

/** Synchronous last resort: only SIGKILL is certain when we are about to exit ourselves. */
export function killEverything(): void {
  for (const child of children) {
    if (running(child)) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * SIGKILLs every child and waits (at most `ms`) until they have exited, so that they are reaped
 * here rather than left as zombies for an init that may not reap them; then removes the temp dirs.
 */
export async function killEverythingAndWait(ms = 3_000): Promise<void> {
  const exits = [...children].filter(running).map(
    (child) =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(exits), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
  killEverything();
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. Resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
  if ((await Promise.race([exited, late])) === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}

/**
 * Resolves with the time (performance.now) at which a stdout line matched `pattern`; rejects if
 * the child exits or `timeoutMs` passes first, with the tail of its stderr to say why.
 */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (lines.some((line) => pattern.test(line))) finish(() => resolve(performance.now()));
    };
    const onErr = (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2_000));
    const onExit = (code: number | null, signal: string | null) =>
      finish(() => reject(new Error(`child exited (${code ?? signal}) before ${pattern}: ${stderr.trim()}`)));
    const onError = (error: Error) => finish(() => reject(error));
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${stderr.trim()}`))),
      timeoutMs,
    );
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      child.off('error', onError);
      // Keep draining the pipes so a chatty child never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
      settle();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** Resident set size of a process, from /proc (Linux), in MiB. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}

/** Rejects with a clear message if `promise` takes longer than `ms`: no loop may run unbounded. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
