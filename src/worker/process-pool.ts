/**
 * Why an own pool and not BullMQ's sandboxed processors (issue 14 §2; bullmq 6.7.0, measured
 * 2026-12-04). A sandboxed processor (a processor file, forked or in worker threads) offers the
 * child, cancel (an AbortSignal in the child), progress and log; it lacks what this pool does:
 * - a hard time limit or a cancel that kills the child: the sandbox only signals, and the Worker
 *   gives no handle on the child of a job (`childPool` is private);
 * - recycling by --max-tasks-per-child and --max-memory-per-child: its ChildPool keeps a child
 *   until it dies, and a shrunk pool (pool-resize) leaves its idle children running;
 * - stream deltas, shared provider-limit slots (a request answered from the parent), provider
 *   figures and keys over IPC: it has no messages of one's own; progress and log are a store
 *   write each (job.updateProgress, job.log) where here they go to the task's coalescing sink;
 * - the pids for `inspect stats`.
 * What it would gain is small: heavy no-op tasks on Redis, 2 at a time, 3,000 per round, 6
 * alternating rounds on the shared 2-core machine: 1,200 tasks/s median here (700-2,190) against
 * 1,610 (850-2,180) forked and 1,980 (920-2,810) in threads; 0.44 against 0.41 CPU ms per task
 * (parent and children); children of 57 MB RSS against 55 MB. Tenths of a millisecond per task,
 * for tasks that are heavy because they take seconds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/logger.js';
import { countProvider } from '../core/metrics.js';
import type { TaskJobData } from '../core/task.js';
import type { ProviderSettings } from '../providers/types.js';
import type { SharedLimits, TaskLogger } from '../core/task-context.js';
import type { ChildMessage, ParentMessage } from './child-protocol.js';
import { CHILD_CONDITION, CHILD_SERVICES_ENV } from './child-protocol.js';
import type { ExecOutcome, FailureInfo, ProgressSink } from './execute-service.js';
import { failureInfo } from './execute-service.js';
import type { ServiceCall, Executor } from './executor.js';

export interface ProcessPoolOptions {
  /** Most children alive at once (the queue's concurrency). */
  size: number;
  /** Replace a child after this many tasks; 0 = never. */
  maxTasksPerChild: number;
  /** Replace a child whose resident memory passed this many KiB after a task; 0 = never. */
  maxMemoryPerChildKiB: number;
  /** Where every child gets its services: the worker registry's sources, in order. */
  services: readonly string[];
  /** The worker's provider settings, handed to each child (else children read their environment). */
  providers?: ProviderSettings;
  logger: Logger;
}

interface Run {
  runId: number;
  sink: ProgressSink;
  log: TaskLogger;
  limits: SharedLimits;
  /** Slots the child holds, by request id; freed if the child never gives them back. */
  held: Map<number, () => void>;
  resolve: (outcome: ExecOutcome) => void;
}

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  tasks: number;
  run?: Run;
  retiring: boolean;
  /** Resident memory the child reported after its last task. */
  rssKiB: number;
  /** What the child said before it died of an uncaught error. */
  fatal?: FailureInfo;
}

/** Children run compiled JavaScript: under a TypeScript test runner, point at the build. */
function childEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = here.replace(/process-pool\.(ts|js)$/, 'child-main.js');
  if (here.endsWith('.js')) return sibling;
  const built = sibling.replace(
    /([\\/])src([\\/])worker([\\/])child-main\.js$/,
    '$1dist$2worker$3child-main.js',
  );
  if (!existsSync(built)) throw new Error(`process pool needs the build (${built}); run \`npm run build\``);
  return built;
}

const crashed = (message: string): FailureInfo => ({
  type: 'WorkerProcessError',
  code: 'E003',
  message,
  retryable: true,
});

/**
 * Heavy tasks run in child processes: a CPU-bound task cannot stall the worker's event loop (so
 * its lock keeps being renewed), and a task past its hard limit is killed for good.
 */
export class ProcessExecutor implements Executor {
  readonly kind = 'process' as const;
  private readonly children = new Set<Child>();
  private readonly idle: Child[] = [];
  private readonly waiting: Array<(child: Child) => void> = [];
  private nextRunId = 1;
  private closed = false;
  private readonly entry = childEntry();

  constructor(private readonly options: ProcessPoolOptions) {}

  get size(): number {
    return this.children.size;
  }

  pids(): number[] {
    return [...this.children].map((c) => c.proc.pid ?? -1);
  }

  /** A new pool size (pool-resize): idle children over it exit now, busy ones once their task ends. */
  resize(size: number): void {
    this.options.size = size;
    while (this.children.size > size && this.idle.length > 0) this.retire(this.idle.pop()!);
    // Grown: tasks waiting for a child get new ones.
    while (this.waiting.length > 0 && this.children.size < size) this.handOver();
  }

  private retire(child: Child): void {
    child.retiring = true;
    this.post(child, { type: 'exit' });
    this.children.delete(child);
  }

  async start(
    data: TaskJobData,
    attempt: number,
    sink: ProgressSink,
    log: TaskLogger,
    limits: SharedLimits,
  ): Promise<ServiceCall> {
    const child = await this.acquire();
    const runId = this.nextRunId++;
    let settle!: (outcome: ExecOutcome) => void;
    const outcome = new Promise<ExecOutcome>((resolve) => (settle = resolve));
    const run: Run = { runId, sink, log, limits, held: new Map(), resolve: settle };
    child.run = run;
    this.post(child, { type: 'run', runId, data, attempt });
    return {
      outcome,
      abort: (reason) => {
        if (child.run === run) this.post(child, { type: 'abort', runId, reason: reason.message });
      },
      kill: (reason) => {
        if (child.run !== run) return;
        this.finishRun(child, { ok: false, error: reason, resources: emptyResources() });
        this.destroy(child, 'SIGKILL');
      },
    };
  }

  private post(child: Child, message: ParentMessage): void {
    if (child.proc.connected) child.proc.send(message);
  }

  private async acquire(): Promise<Child> {
    if (this.closed) throw new Error('process pool is closed');
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.children.size < this.options.size) {
      const child = this.spawn();
      try {
        await child.ready;
      } catch (error) {
        this.destroy(child, 'SIGKILL');
        throw error;
      }
      return child;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(child: Child): void {
    const memoryKiB = child.rssKiB;
    const { maxTasksPerChild, maxMemoryPerChildKiB } = this.options;
    if (this.children.size > this.options.size) {
      this.retire(child);
      return;
    }
    if (
      (maxTasksPerChild > 0 && child.tasks >= maxTasksPerChild) ||
      (maxMemoryPerChildKiB > 0 && memoryKiB > maxMemoryPerChildKiB)
    ) {
      this.options.logger.info(
        { pid: child.proc.pid, tasks: child.tasks, rss_kib: memoryKiB },
        'recycling child process',
      );
      child.retiring = true;
      this.post(child, { type: 'exit' });
      this.children.delete(child);
      this.handOver();
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter(child);
    else this.idle.push(child);
  }

  /** A slot freed up without a child to give: start a fresh one for the next waiter. */
  private handOver(): void {
    const waiter = this.waiting.shift();
    if (!waiter || this.closed) return;
    const child = this.spawn();
    child.ready.then(
      () => waiter(child),
      () => {
        this.destroy(child, 'SIGKILL');
        this.waiting.unshift(waiter);
        setTimeout(() => this.handOver(), 1_000).unref();
      },
    );
  }

  private spawn(): Child {
    const proc = fork(this.entry, [], {
      env: {
        ...process.env,
        [CHILD_SERVICES_ENV]: JSON.stringify(this.options.services),
      },
      // 'aiecs' in a services module resolves to its light service API here (package.json exports).
      execArgv: [`--conditions=${CHILD_CONDITION}`],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child: Child = { proc, tasks: 0, retiring: false, rssKiB: 0, ready: Promise.resolve() };
    this.children.add(child);
    // Sending to a child that just died raises EPIPE here; its exit handler does the cleanup.
    proc.on('error', (error) =>
      this.options.logger.debug({ err: error.message, pid: proc.pid }, 'child process error'),
    );
    // The child waits for this before loading services; it carries keys, so it is never logged.
    const { providers } = this.options;
    this.post(child, providers ? { type: 'init', providers } : { type: 'init' });
    child.ready = new Promise<void>((resolve, reject) => {
      proc.on('message', (message: ChildMessage) => {
        switch (message.type) {
          case 'ready':
            resolve();
            break;
          case 'fatal':
            // The child exits right after this; the exit handler fails the run with it.
            child.fatal = message.error;
            reject(new Error(`child process failed: ${message.error.message}`));
            break;
          case 'figures':
            countProvider(message.figures);
            break;
          default:
            this.onRunMessage(child, message);
        }
      });
      proc.on('exit', (code, signal) => {
        reject(new Error(`child process exited (${signal ?? code}) before it was ready`));
        this.children.delete(child);
        const at = this.idle.indexOf(child);
        if (at >= 0) this.idle.splice(at, 1);
        if (child.run) {
          this.finishRun(child, {
            ok: false,
            error: crashed(
              `worker child process ${proc.pid} died (${signal ?? `exit ${code}`}) during the task` +
                (child.fatal ? `: ${child.fatal.type}: ${child.fatal.message}` : ''),
            ),
            resources: emptyResources(),
          });
        }
        if (!child.retiring) this.handOver();
      });
    });
    child.ready.catch(() => undefined);
    return child;
  }

  private onRunMessage(
    child: Child,
    message: Exclude<ChildMessage, { type: 'ready' | 'fatal' | 'figures' }>,
  ): void {
    const run = child.run;
    if (!run || run.runId !== message.runId) return;
    switch (message.type) {
      case 'progress':
        run.sink.progress(message.percent, message.message);
        break;
      case 'stream':
        run.sink.stream(message.delta);
        break;
      case 'log':
        run.log[message.level](message.obj, message.msg);
        break;
      case 'acquire':
        run.limits.acquire(message.key, message.spec).then(
          (release) => {
            if (child.run !== run) return release();
            run.held.set(message.reqId, release);
            this.post(child, { type: 'acquired', runId: run.runId, reqId: message.reqId });
          },
          (error: unknown) => {
            if (child.run === run)
              this.post(child, {
                type: 'acquire_failed',
                runId: run.runId,
                reqId: message.reqId,
                error: failureInfo(error),
              });
          },
        );
        break;
      case 'release':
        run.held.get(message.reqId)?.();
        run.held.delete(message.reqId);
        break;
      case 'done':
        child.tasks++;
        child.rssKiB = Math.round(message.rssBytes / 1024);
        this.finishRun(child, message.outcome);
        this.release(child);
        break;
    }
  }

  private finishRun(child: Child, outcome: ExecOutcome): void {
    const run = child.run;
    child.run = undefined;
    run?.held.forEach((release) => release());
    run?.resolve(outcome);
  }

  private destroy(child: Child, signal: NodeJS.Signals): void {
    child.retiring = true;
    this.children.delete(child);
    const at = this.idle.indexOf(child);
    if (at >= 0) this.idle.splice(at, 1);
    child.proc.kill(signal);
    this.handOver();
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits = [...this.children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.proc.exitCode !== null || child.proc.signalCode !== null) return resolve();
          child.proc.once('exit', () => resolve());
          child.retiring = true;
          this.post(child, { type: 'exit' });
          setTimeout(() => child.proc.kill('SIGKILL'), 2_000).unref();
        }),
    );
    this.children.clear();
    this.idle.length = 0;
    await Promise.all(exits);
  }
}

function emptyResources(): ExecOutcome['resources'] {
  return {
    files: [],
    model_usage: [],
    timings: {},
    totals: { input_tokens: 0, output_tokens: 0, cost_usd: 0 },
  };
}
