import type { AiecsConfig } from './config.js';
import type { ModelUsage, FileTouch, RequestContext } from './task.js';

/** The logger a service receives: pino's call shape (`log.info({ obj }, 'msg')` or `log.info('msg')`). */
export interface TaskLogger {
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export interface ResourceTracker {
  /** Records a file the task read or wrote. */
  file(path: string, operation: FileTouch['operation'], bytes?: number): void;
  /** Records one model call; cost is summed into the task's totals. */
  modelUsage(usage: Omit<ModelUsage, 'cost_usd' | 'latency_ms'> & Partial<ModelUsage>): void;
  /** Adds `ms` to a named timing. */
  timing(name: string, ms: number): void;
  /** Runs `fn` and records how long it took under `name`. */
  time<T>(name: string, fn: () => Promise<T> | T): Promise<T>;
}

export interface LimitSpec {
  /** Most requests in flight at once, across every worker on the store. */
  concurrency?: number;
  /** Most requests started per minute, across every worker on the store. */
  perMinute?: number;
}

export interface SharedLimits {
  /**
   * Waits for a slot of `key` (e.g. `provider:openai`) under `spec`; resolves with the function
   * that gives it back. Rejects when the task is cancelled or times out while waiting.
   */
  acquire(key: string, spec: LimitSpec): Promise<() => void>;
}

/**
 * What a service method receives as its third argument (`task`): everything it needs to behave
 * well under time limits and cancel, and to report progress. Not the request's `context`
 * dictionary, its second argument (RequestContext).
 */
export interface TaskContext {
  readonly taskId: string;
  readonly taskName: string;
  readonly userId: string;
  readonly step: number;
  readonly mode: string;
  readonly service: string;
  /** 1 for the first run, raised on each retry. */
  readonly attempt: number;
  /** Aborts at the soft time limit and on cancel; pass it to every fetch/SDK call. */
  readonly signal: AbortSignal;
  /** Reports progress 0–100 with a message; pushed to the user as a `progress` event. */
  progress(percent: number, message?: string): void;
  /** Streams output (LLM tokens) to the user as `stream` events, in order. */
  stream(delta: string): void;
  readonly log: TaskLogger;
  readonly resources: ResourceTracker;
  /** Limits shared by all workers (provider rate limits); slots still held are freed when the task ends. */
  readonly limits: SharedLimits;
  /**
   * The running worker's provider settings (keys included), which `llm(task, context)` uses.
   * Absent from a context made elsewhere (a service's own tests): llm() then reads the environment.
   */
  readonly providers?: AiecsConfig['providers'];
}

export type ServiceMethod = (
  inputData: Record<string, unknown>,
  context: RequestContext,
  task: TaskContext,
) => unknown;

/** The original's fallback: a service without a method of the task's name gets the call here. */
export type ExecuteTaskMethod = (
  taskName: string,
  inputData: Record<string, unknown>,
  context: RequestContext,
  task: TaskContext,
) => unknown;
