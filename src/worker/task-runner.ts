import { UnrecoverableError, WaitingError, type QueueEventsProducer } from 'bullmq';
import type { AiecsConfig } from '../core/config.js';
import {
  RetriesExhaustedError,
  TaskCancelledError,
  TaskTimeoutError,
  type TaskErrorInfo,
} from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { TaskLogger } from '../registry/task-context.js';
import { TaskStatus } from '../core/task.js';
import type { ResultEnvelope, TaskJob } from '../engine/task-record.js';
import { progressPayload } from '../engine/task-record.js';
import type { CancelRegistry } from './cancel-registry.js';
import type { FailureInfo } from './execute-service.js';
import type { Execution, Executor } from './executor.js';
import type { LimitGate } from './limit-gate.js';
import { TaskReporter } from './task-reporter.js';

export interface RunnerDeps {
  executor: Executor;
  producer: QueueEventsProducer | undefined;
  workerId: string;
  config: AiecsConfig;
  logger: Logger;
  cancels: CancelRegistry;
  gate: LimitGate;
  onFinished?: (ok: boolean) => void;
}

export type StopReason = 'soft_timeout' | 'hard_timeout' | 'cancel' | 'shutdown';

export interface TaskLimits {
  softS: number;
  hardS: number;
}

export function taskLimits(
  options: { time_limit?: number; soft_time_limit?: number },
  config: AiecsConfig,
): TaskLimits {
  const hardS = options.time_limit ?? config.timeLimitS;
  const softS = options.soft_time_limit ?? Math.min(config.softTimeLimitS, hardS);
  return { softS: Math.min(softS, hardS), hardS };
}

function info(error: { toInfo(): TaskErrorInfo }): FailureInfo {
  const i = error.toInfo();
  delete i.stack;
  return { ...i, retryable: false };
}

/**
 * The BullMQ processor for one queue: runs a task in its pool under its time limits, answers
 * cancel from anywhere, and turns every way a task can end into exactly one terminal state.
 */
export function createTaskProcessor(deps: RunnerDeps) {
  const { config, cancels } = deps;

  return async function processTask(job: TaskJob, token?: string): Promise<ResultEnvelope> {
    const data = job.data;
    const attempt = Math.max(job.attemptsStarted ?? 0, (job.attemptsMade ?? 0) + 1, 1);
    const maxAttempts = job.opts.attempts ?? 1;
    const log = lazyChild(deps.logger, () => ({
      task_id: data.task_id,
      task_name: data.task_name,
      user_id: data.user_id,
      worker: deps.workerId,
    }));
    const reporter = new TaskReporter(job, attempt, deps.workerId, deps.producer, log);

    const finishFailed = async (
      status: TaskStatus,
      error: FailureInfo,
      resources?: ResultEnvelope['resources'],
    ) => {
      const { retryable: _r, retryAfterMs: _a, ...stored } = error;
      const payload = { status, message: error.message, error: stored, ...(resources ? { resources } : {}) };
      await reporter.final(payload);
      deps.onFinished?.(false);
      log.info({ status, code: error.code }, `task ${status}`);
      throw new UnrecoverableError(`${error.code} ${error.type}: ${error.message}`);
    };

    if (progressPayload(job)?.status === TaskStatus.CANCELLED) {
      // The caller's marker is the task's last word: it never ran, so nothing is rewritten.
      reporter.close();
      deps.onFinished?.(false);
      throw new UnrecoverableError('E004 TaskCancelledError: cancelled before it ran');
    }
    if (cancels.wasCancelled(data.task_id)) {
      return finishFailed(
        TaskStatus.CANCELLED,
        info(new TaskCancelledError(data.task_id, 'cancelled before it ran')),
      );
    }

    const limits = taskLimits(data.options, config);
    const startedAt = Date.now();
    log.debug({ attempt, limits }, 'task started');
    let stop: StopReason | undefined;
    let execution: Execution | undefined;
    const timers: NodeJS.Timeout[] = [];
    // Built only when a limit fires: an error captures a stack, and most tasks never time out.
    const timeoutError = (limit: 'soft' | 'hard') =>
      new TaskTimeoutError(limit, limit === 'soft' ? limits.softS : limits.hardS, data.task_id);

    // Waits for shared limits end when the task stops; slots it still holds are freed at its end.
    const shared = deps.gate.forTask();

    // Cancel and shutdown may arrive while a child process is still starting: remember, apply once running.
    const applyStop = (reason: 'cancel' | 'shutdown') => {
      if (!execution) return;
      const running = execution;
      const error =
        reason === 'cancel'
          ? new TaskCancelledError(data.task_id)
          : new Error('worker is shutting down; the task goes back to the queue');
      running.abort(error);
      shared.stop(error);
      const killInfo: FailureInfo =
        reason === 'cancel'
          ? info(error as TaskCancelledError)
          : { type: 'ShutdownError', code: 'E003', message: error.message, retryable: true };
      timers.push(setTimeout(() => running.kill(killInfo), config.cancelGraceMs));
    };
    const unregister = cancels.register(data.task_id, (reason) => {
      if (stop) return;
      stop = reason;
      applyStop(reason);
    });
    if (cancels.wasCancelled(data.task_id)) stop = 'cancel';

    try {
      execution = await deps.executor.start(data, attempt, reporter, log, shared.limits);
    } catch (error) {
      // No child could be started: BullMQ retries the attempt like any other failure.
      unregister();
      throw error;
    }
    const started = execution;
    if (stop === 'cancel' || stop === 'shutdown') applyStop(stop);

    const hardLimit = () => {
      if (stop !== 'soft_timeout' && stop !== undefined) return;
      stop = 'hard_timeout';
      const error = timeoutError('hard');
      started.abort(error);
      shared.stop(error);
      started.kill(info(error));
    };
    // One timer per task: the soft limit's callback arms the hard one.
    if (limits.softS < limits.hardS) {
      timers.push(
        setTimeout(() => {
          timers.push(setTimeout(hardLimit, (limits.hardS - limits.softS) * 1000));
          if (stop) return;
          stop = 'soft_timeout';
          const error = timeoutError('soft');
          started.abort(error);
          shared.stop(error);
        }, limits.softS * 1000),
      );
    } else {
      timers.push(setTimeout(hardLimit, limits.hardS * 1000));
    }

    const outcome = await started.outcome;
    timers.forEach(clearTimeout);
    unregister();
    shared.releaseAll();
    outcome.resources.timings.total_ms = Date.now() - startedAt;

    switch (stop) {
      case 'soft_timeout':
        return finishFailed(TaskStatus.TIMED_OUT, info(timeoutError('soft')), outcome.resources);
      case 'hard_timeout':
        return finishFailed(TaskStatus.TIMED_OUT, info(timeoutError('hard')), outcome.resources);
      case 'cancel':
        return finishFailed(
          TaskStatus.CANCELLED,
          info(new TaskCancelledError(data.task_id)),
          outcome.resources,
        );
      case 'shutdown':
        reporter.close();
        log.info('task returned to the queue for another worker');
        // Back to waiting without spending an attempt: another worker picks it up.
        await job.moveToWait(token);
        throw new WaitingError();
    }

    if (outcome.ok) {
      await reporter.flush();
      reporter.close();
      deps.onFinished?.(true);
      log.debug({ ms: outcome.resources.timings.total_ms }, 'task completed');
      return {
        result: outcome.result,
        resources: outcome.resources,
        seq: reporter.nextSeq(),
        attempt,
        message: 'completed',
        worker: deps.workerId,
      };
    }

    const error = outcome.error;
    if (error.retryable && attempt < maxAttempts) {
      await reporter.final({
        status: TaskStatus.PENDING,
        message: `attempt ${attempt} of ${maxAttempts} failed (${error.message}); retrying`,
        error: { type: error.type, code: error.code, message: error.message },
      });
      log.warn({ attempt, code: error.code, err: error.message }, 'task failed; will retry');
      const retry = new Error(error.message) as Error & { retryAfterMs?: number };
      if (error.retryAfterMs !== undefined) retry.retryAfterMs = error.retryAfterMs;
      throw retry;
    }
    if (error.retryable) {
      const exhausted = new RetriesExhaustedError(`gave up after ${attempt} attempts: ${error.message}`, {
        attempts: attempt,
        last_error: { type: error.type, message: error.message },
      });
      return finishFailed(
        TaskStatus.FAILED,
        { ...info(exhausted), ...(error.stack ? { stack: error.stack } : {}) },
        outcome.resources,
      );
    }
    return finishFailed(TaskStatus.FAILED, error, outcome.resources);
  };
}

/**
 * The per-task child logger, made only when a line at an enabled level is written: most tasks
 * log nothing, and a pino child costs a bindings serialization.
 */
export function lazyChild(parent: Logger, bindings: () => Record<string, unknown>): TaskLogger {
  let child: Logger | undefined;
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (obj: unknown, msg?: string): void => {
      if (!parent.isLevelEnabled(level)) return;
      child ??= parent.child(bindings());
      if (typeof obj === 'string') child[level](obj);
      else child[level](obj as object, msg);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Exponential backoff with jitter, or what the service asked for (Retry-After). */
export function retryDelay(baseMs: number) {
  return (attemptsMade: number, _type: string | undefined, error?: Error): number => {
    const asked = (error as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    if (typeof asked === 'number' && asked >= 0) return asked;
    const ceiling = baseMs * 2 ** Math.max(0, attemptsMade - 1);
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  };
}
