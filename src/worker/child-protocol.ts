import type { ProviderFigures } from '../core/metrics.js';
import type { TaskJobData } from '../core/task.js';
import type { ProviderSettings } from '../providers/types.js';
import type { LimitSpec } from '../core/task-context.js';
import type { ExecOutcome, FailureInfo } from './execute-service.js';

/** Messages between a worker and the child processes of its process pool (over IPC). */
export type ParentMessage =
  /**
   * The first message to every child, before it loads anything: the worker's provider settings
   * (they may hold keys only its config has, not the environment the child inherits). Over IPC,
   * so keys stay out of the child's environment and its command line.
   */
  | { type: 'init'; providers?: ProviderSettings }
  | { type: 'run'; runId: number; data: TaskJobData; attempt: number }
  | { type: 'abort'; runId: number; reason: string }
  | { type: 'acquired'; runId: number; reqId: number }
  | { type: 'acquire_failed'; runId: number; reqId: number; error: FailureInfo }
  | { type: 'exit' };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type ChildMessage =
  | { type: 'ready'; pid: number }
  | { type: 'fatal'; error: FailureInfo }
  | { type: 'progress'; runId: number; percent: number; message: string }
  | { type: 'stream'; runId: number; delta: string }
  | { type: 'log'; runId: number; level: LogLevel; obj: unknown; msg?: string }
  | { type: 'acquire'; runId: number; reqId: number; key: string; spec: LimitSpec }
  | { type: 'release'; runId: number; reqId: number }
  | { type: 'done'; runId: number; outcome: ExecOutcome; rssBytes: number }
  /** A provider call's figures: the worker counts them (children load no metrics). */
  | { type: 'figures'; figures: ProviderFigures };

/**
 * Environment variable naming the sources of the worker's services that a child loads in order
 * (JSON array: module paths, and the built-in services' marker).
 */
export const CHILD_SERVICES_ENV = 'AIECS_CHILD_SERVICES';

/**
 * The export condition children run under: with it, `import ... from 'aiecs'` in a services
 * module loads dist/service-api.js, not the whole engine (see package.json `exports`).
 */
export const CHILD_CONDITION = 'aiecs-pool-child';
