import type { TaskErrorInfo } from '../core/errors.js';
import { errorInfo, isRetryable } from '../core/errors.js';
import type { FileTouch, ModelUsage, TaskJobData, StoredResources } from '../core/task.js';
import { toJsonSafe } from '../engine/json-safe.js';
import { registry } from '../registry/registry.js';
import type { ResourceTracker, SharedLimits, TaskContext, TaskLogger } from '../registry/task-context.js';

/** Where a running task's progress and stream go: the job in-process, or the parent over IPC. */
export interface TaskSink {
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
  const retryAfter = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  if (typeof retryAfter === 'number') info.retryAfterMs = retryAfter;
  return info;
}

class Resources implements ResourceTracker {
  private readonly files: FileTouch[] = [];
  private readonly usage: ModelUsage[] = [];
  private readonly timings: Record<string, number> = {};

  file(path: string, operation: FileTouch['operation'], bytes?: number): void {
    const touch: FileTouch = { path: String(path), operation, at: Date.now() };
    if (bytes !== undefined) touch.bytes = bytes;
    this.files.push(touch);
  }

  modelUsage(usage: Parameters<ResourceTracker['modelUsage']>[0]): void {
    this.usage.push({
      provider: String(usage.provider),
      model: String(usage.model),
      input_tokens: Number(usage.input_tokens) || 0,
      output_tokens: Number(usage.output_tokens) || 0,
      cost_usd: Number(usage.cost_usd) || 0,
      latency_ms: Number(usage.latency_ms) || 0,
    });
  }

  timing(name: string, ms: number): void {
    this.timings[name] = (this.timings[name] ?? 0) + ms;
  }

  async time<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.timing(name, Math.round((performance.now() - start) * 1000) / 1000);
    }
  }

  /** What gets stored: empty parts are left out (toTaskRecord puts them back). */
  snapshot(): StoredResources {
    const stored: StoredResources = { timings: { ...this.timings } };
    if (this.files.length) stored.files = [...this.files];
    if (this.usage.length === 0) return stored;
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

export interface ServiceRun {
  outcome: Promise<ExecOutcome>;
  /** After this, progress and stream calls of a task left running are ignored. */
  detach(): void;
  resources(): StoredResources;
}

/**
 * An AbortController made on first need: most tasks never look at their signal, and a
 * controller per task is measurable garbage at thousands of tasks a second.
 */
export class LazyAbort {
  private controller: AbortController | undefined;
  private reason: unknown;
  private aborted = false;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/**
 * Runs one task's service method in this process. The caller owns the abort (time limits and
 * cancel decide when it fires); errors come back as data, never as a crash.
 */
export function runService(
  data: TaskJobData,
  attempt: number,
  abort: { readonly signal: AbortSignal },
  sink: TaskSink,
  log: TaskLogger,
  limits: SharedLimits,
): ServiceRun {
  const resources = new Resources();
  let attached = true;
  const task: TaskContext = {
    taskId: data.task_id,
    taskName: data.task_name,
    userId: data.user_id,
    step: data.step,
    mode: data.mode,
    service: data.service,
    attempt,
    get signal() {
      return abort.signal;
    },
    progress(percent, message = '') {
      if (!attached) return;
      const p = Number(percent);
      sink.progress(Number.isFinite(p) ? Math.min(100, Math.max(0, p)) : 0, String(message));
    },
    stream(delta) {
      if (attached && delta !== undefined && delta !== null && String(delta) !== '')
        sink.stream(String(delta));
    },
    log,
    resources,
    limits,
  };
  const start = performance.now();
  const outcome = (async (): Promise<ExecOutcome> => {
    try {
      const method = registry.resolve(data.mode, data.service, data.task_name);
      const result = toJsonSafe(await method(data.input_data, data.context, task));
      resources.timing('service_ms', Math.round(performance.now() - start));
      return { ok: true, result, resources: resources.snapshot() };
    } catch (error) {
      resources.timing('service_ms', Math.round(performance.now() - start));
      return { ok: false, error: failureInfo(error), resources: resources.snapshot() };
    }
  })();
  return {
    outcome,
    detach: () => {
      attached = false;
    },
    resources: () => resources.snapshot(),
  };
}
