import type { TaskErrorInfo } from '../core/errors.js';
import { errorInfo, isRetryable } from '../core/errors.js';
import type { FileTouch, ModelUsage, TaskJobData, StoredResources } from '../core/task.js';
import { storableJson, storableText } from '../core/storable-text.js';
import { toJsonSafe } from '../engine/json-safe.js';
import type { ProviderSettings } from '../providers/types.js';
import type { ServiceRegistry } from '../registry/registry.js';
import type { ResourceTracker, SharedLimits, TaskContext, TaskLogger } from '../core/task-context.js';

/** What a worker gives every task it runs: its services, and its provider settings. */
export interface WorkerServices {
  registry: ServiceRegistry;
  /** Absent: llm() reads the process's environment (a child whose parent handed none). */
  providers?: ProviderSettings;
}

/** Where a TaskRun's progress and stream go: the job in-process, or the parent over IPC. */
export interface ProgressSink {
  progress(percent: number, message: string): void;
  stream(delta: string): void;
}

/** A failure as it crosses a process boundary: the stored info plus what retry needs. */
export interface FailureInfo extends TaskErrorInfo {
  retryable: boolean;
  retryAfterMs?: number;
}

export type ExecOutcome =
  | { ok: true; result: unknown; resources: StoredResources }
  | { ok: false; error: FailureInfo; resources: StoredResources };

export function failureInfo(error: unknown): FailureInfo {
  const info: FailureInfo = { ...errorInfo(error), retryable: isRetryable(error) };
  // A service's own text, never checked at submit: made storable as progress messages are, so a
  // NUL in it cannot fail the task's end on PostgreSQL nor stop the history.
  info.type = storableText(info.type);
  info.message = storableText(info.message);
  if (info.stack !== undefined) info.stack = storableText(info.stack);
  if (info.details !== undefined) info.details = storableJson(info.details) as Record<string, unknown>;
  const retryAfter = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  if (typeof retryAfter === 'number') info.retryAfterMs = retryAfter;
  return info;
}

/** What a task records about itself; the lists are made on first use, most tasks record none. */
class Resources implements ResourceTracker {
  private files: FileTouch[] | undefined;
  private usage: ModelUsage[] | undefined;
  /** Every task's own timing, kept apart from the rare ones a service records by name. */
  private serviceMs: number | undefined;
  private named: Record<string, number> | undefined;

  file(path: string, operation: FileTouch['operation'], bytes?: number): void {
    const touch: FileTouch = { path: String(path), operation, at: Date.now() };
    if (bytes !== undefined) touch.bytes = bytes;
    (this.files ??= []).push(touch);
  }

  modelUsage(usage: Parameters<ResourceTracker['modelUsage']>[0]): void {
    const entry: ModelUsage = {
      provider: String(usage.provider),
      model: String(usage.model),
      input_tokens: Number(usage.input_tokens) || 0,
      output_tokens: Number(usage.output_tokens) || 0,
      cost_usd: Number(usage.cost_usd) || 0,
      latency_ms: Number(usage.latency_ms) || 0,
    };
    if (usage.estimated === true) entry.estimated = true;
    (this.usage ??= []).push(entry);
  }

  timing(name: string, ms: number): void {
    if (name === 'service_ms') this.serviceMs = (this.serviceMs ?? 0) + ms;
    else {
      const named = (this.named ??= {});
      named[name] = (named[name] ?? 0) + ms;
    }
  }

  async time<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.timing(name, Math.round((performance.now() - start) * 1000) / 1000);
    }
  }

  /**
   * What gets stored: empty parts are left out (toTaskRecord puts them back). `total_ms` is a
   * place the task runner fills in. The timings are built as literals of one shape: BullMQ
   * stringifies a completed task's envelope twice, and a spread copy that gained a key later took
   * about three times as long to stringify as the same object built whole.
   */
  snapshot(): StoredResources {
    const own: Record<string, number> =
      this.serviceMs === undefined ? { total_ms: 0 } : { service_ms: this.serviceMs, total_ms: 0 };
    const stored: StoredResources = { timings: this.named ? { ...this.named, ...own } : own };
    if (this.files) stored.files = [...this.files];
    if (!this.usage) return stored;
    const totals = { input_tokens: 0, output_tokens: 0, cost_usd: 0 };
    for (const u of this.usage) {
      totals.input_tokens += u.input_tokens;
      totals.output_tokens += u.output_tokens;
      totals.cost_usd += u.cost_usd;
    }
    totals.cost_usd = Math.round(totals.cost_usd * 1e8) / 1e8;
    return { ...stored, model_usage: [...this.usage], totals };
  }
}

/** A ServiceCall in this process's event loop (a child's, or the async pool's). */
export interface InProcessCall {
  /** Settles once: with the service's outcome, or with the failure given to `kill`. */
  readonly outcome: Promise<ExecOutcome>;
  /** Aborts the task's signal so it can clean up (soft limit, cancel, shutdown). */
  abort(reason: unknown): void;
  /** After this, progress and stream calls of a task left running are ignored. */
  detach(): void;
  /** Ends the run now with `error`; a service still running is detached and its result ignored. */
  kill(error: FailureInfo): void;
  /**
   * Undefined once the service's own code has returned (or thrown, or its promise settled); else
   * a promise of that moment. After `kill` the code may still run: nothing in-process can stop it.
   */
  whenReturned(): Promise<void> | undefined;
}

/** Where the event loop's runs are known while their code runs (the loop watch; see loop-watch.ts). */
export interface LiveRuns {
  enter(run: LiveRun): void;
  leave(run: LiveRun): void;
}

export interface LiveRun {
  readonly taskId: string;
  /** Kept by the LiveRuns the run is in; -1 when none. */
  liveSlot: number;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';

/**
 * One task's run of its service method, and the context the method sees. One object per task,
 * its methods on the prototype: at thousands of tasks a second, per-task closures are the
 * worker's largest garbage.
 */
class InProcessServiceCall implements TaskContext, InProcessCall {
  readonly outcome: Promise<ExecOutcome>;
  readonly resources = new Resources();
  private settle!: (outcome: ExecOutcome) => void;
  private settled = false;
  private attached = true;
  private readonly startedAt = performance.now();
  // The AbortController is made on first need: most tasks never look at their signal, and a
  // controller per task is measurable garbage at thousands of tasks a second.
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;
  private returned = false;
  private returnedWaiter: { promise: Promise<void>; resolve: () => void } | undefined;
  liveSlot = -1;

  constructor(
    private readonly data: TaskJobData,
    readonly attempt: number,
    private readonly sink: ProgressSink,
    readonly log: TaskLogger,
    readonly limits: SharedLimits,
    private readonly services: WorkerServices,
    private readonly live: LiveRuns | undefined,
  ) {
    this.outcome = new Promise<ExecOutcome>((resolve) => (this.settle = resolve));
  }

  get taskId(): string {
    return this.data.task_id;
  }
  get taskName(): string {
    return this.data.task_name;
  }
  get userId(): string {
    return this.data.user_id;
  }
  get step(): number {
    return this.data.step;
  }
  get mode(): string {
    return this.data.mode;
  }
  get service(): string {
    return this.data.service;
  }
  get providers(): ProviderSettings | undefined {
    return this.services.providers;
  }
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  progress(percent: number, message = ''): void {
    if (!this.attached) return;
    const p = Number(percent);
    // Rounded once, here, to one decimal: `75 * 0.6` is 44.99999999999999, not a number to show.
    const shown = Number.isFinite(p) ? Math.round(Math.min(100, Math.max(0, p)) * 10) / 10 : 0;
    this.sink.progress(shown, storableText(String(message)));
  }

  stream(delta: string): void {
    if (this.attached && delta !== undefined && delta !== null && String(delta) !== '')
      this.sink.stream(storableText(String(delta)));
  }

  start(): void {
    const data = this.data;
    let returned: unknown;
    this.live?.enter(this);
    try {
      returned = this.services.registry.call(
        data.mode,
        data.service,
        data.task_name,
        data.input_data,
        data.context,
        this,
      );
    } catch (error) {
      this.codeReturned();
      this.failed(error);
      return;
    }
    // A method that returns a plain value (no promise) finishes without a trip through the microtask queue.
    if (isThenable(returned))
      returned.then(
        (value) => {
          this.codeReturned();
          this.succeeded(value);
        },
        (error: unknown) => {
          this.codeReturned();
          this.failed(error);
        },
      );
    else {
      this.codeReturned();
      this.succeeded(returned);
    }
  }

  private codeReturned(): void {
    this.returned = true;
    this.live?.leave(this);
    this.returnedWaiter?.resolve();
  }

  whenReturned(): Promise<void> | undefined {
    if (this.returned) return undefined;
    if (!this.returnedWaiter) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.returnedWaiter = { promise, resolve };
    }
    return this.returnedWaiter.promise;
  }

  private succeeded(value: unknown): void {
    let result: unknown;
    try {
      result = toJsonSafe(value);
    } catch (error) {
      this.failed(error);
      return;
    }
    this.resources.timing('service_ms', Math.round(performance.now() - this.startedAt));
    this.end({ ok: true, result, resources: this.resources.snapshot() });
  }

  private failed(error: unknown): void {
    this.resources.timing('service_ms', Math.round(performance.now() - this.startedAt));
    this.end({ ok: false, error: failureInfo(error), resources: this.resources.snapshot() });
  }

  private end(outcome: ExecOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(outcome);
  }

  detach(): void {
    this.attached = false;
  }

  kill(error: FailureInfo): void {
    this.abort(new Error(error.message));
    this.detach();
    this.end({ ok: false, error, resources: this.resources.snapshot() });
  }
}

/**
 * Runs one task's service method, from `services`, in this process. The caller decides when to
 * abort (time limits and cancel); errors come back as data, never as a crash.
 */
export function runService(
  services: WorkerServices,
  data: TaskJobData,
  attempt: number,
  sink: ProgressSink,
  log: TaskLogger,
  limits: SharedLimits,
  live?: LiveRuns,
): InProcessCall {
  const task = new InProcessServiceCall(data, attempt, sink, log, limits, services, live);
  task.start();
  return task;
}
