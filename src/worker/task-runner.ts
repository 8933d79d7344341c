/**
 * The worker's names for a running task (docs/design.md §2, "Names in the worker"):
 * - TaskRun (here): one attempt of one task on this worker, from taking the job to its final
 *   record; the only class of that name.
 * - ServiceCall (executor.ts): the service method's call a TaskRun starts in a pool, which the run
 *   can abort (soft limit, cancel) and kill (hard limit); InProcessCall (execute-service.ts) is one
 *   in this process's event loop, which can also be detached, and whose object is also the
 *   TaskContext the method receives.
 * - Narrow interfaces named for the one capability another module needs of a TaskRun:
 *   ProgressSink (where progress and stream go), Cancellable (the cancel registry stops it),
 *   Deadlined (the deadline watch tells it its time is up); TaskRunInfo is what `inspect active`
 *   shows of one.
 */
import type { QueueEventsProducer } from 'bullmq';
import { UnrecoverableError, WaitingError } from '../engine/bullmq.js';
import type { AiecsConfig } from '../core/config.js';
import {
  RetriesExhaustedError,
  TaskCancelledError,
  expiredError,
  TaskTimeoutError,
  type TaskErrorInfo,
} from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { countingMetrics, type ExecutionStatus } from '../core/metrics.js';
import type { TaskLogger } from '../core/task-context.js';
import { TaskStatus, taskSummary, type QueueKind, type TaskJobData } from '../core/task.js';
import { cancelsCountFrom, dropsOnStart } from '../core/task-events.js';
import { isLinkJobName } from '../core/workflow-links.js';
import type { EventWriter } from '../engine/store.js';
import type { ResultEnvelope, TaskJob } from '../engine/task-record.js';
import { jobTaskData, progressPayload, runOf } from '../engine/task-record.js';
import type { CancelRegistry, Cancellable } from './cancel-registry.js';
import { DeadlineWatch, type Deadlined } from './deadline-watch.js';
import type { TaskRunInfo } from './remote-control.js';
import type { ExecOutcome, FailureInfo, ProgressSink } from './execute-service.js';
import type { ServiceCall, Executor } from './executor.js';
import type { LimitGate, TaskSlots } from './limit-gate.js';
import { TaskReporter } from './task-reporter.js';
import type { StepResults } from './step-results.js';
import { gatherInputs } from './workflow-inputs.js';
import type { WorkflowLinks } from './workflow-links.js';

export interface RunnerDeps {
  executor: Executor;
  producer: QueueEventsProducer | undefined;
  /** The store's batching writer for progress and stream events, where it has one. */
  events?: EventWriter | undefined;
  workerId: string;
  config: AiecsConfig;
  logger: Logger;
  cancels: CancelRegistry;
  gate: LimitGate;
  onFinished?: (ok: boolean) => void;
  /**
   * A task ended (hard limit, cancel or shutdown past its grace) while its code still runs in this
   * event loop: `returned` settles when the code returns. Called before BullMQ frees the task's
   * slot, so the worker can keep it held (see AbandonedTasks).
   */
  onAbandoned?: (taskId: string, returned: Promise<void>) => void;
  /** Runs the hidden jobs of workflow fan-out (workflow-links.ts); none: the worker has no workflows to link. */
  links?: WorkflowLinks;
  /** Results of workflow members completed in this process, handed to the steps that wait on them. */
  handed?: StepResults;
}

export type StopReason = 'soft_timeout' | 'hard_timeout' | 'cancel' | 'shutdown';

export interface TaskLimits {
  softS: number;
  hardS: number;
}

const NO_LIMITS: TaskLimits = Object.freeze({ softS: 0, hardS: 0 });
/** The limits of tasks that set none, per config: one object for them all. */
const configLimits = new WeakMap<AiecsConfig, TaskLimits>();

export function taskLimits(
  options: { time_limit?: number; soft_time_limit?: number },
  config: AiecsConfig,
): TaskLimits {
  if (options.time_limit === undefined && options.soft_time_limit === undefined) {
    let limits = configLimits.get(config);
    if (!limits) configLimits.set(config, (limits = Object.freeze(limitsOf(options, config))));
    return limits;
  }
  return limitsOf(options, config);
}

function limitsOf(
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
  const deadlines = new DeadlineWatch();
  return function processTask(job: TaskJob, token?: string): Promise<ResultEnvelope> {
    // BullMQ spaces a failed job's retries by the backoff of the job in hand: the worker's policy,
    // so that no job has to store it (bytes written and read back with every job).
    job.opts.backoff ??= WORKER_BACKOFF;
    // A hidden fan-out job (core/workflow-links.ts) is no task: no record, events, metrics or log line.
    if (deps.links && isLinkJobName(job.name))
      return deps.links.run(job as never, token) as unknown as Promise<ResultEnvelope>;
    return new TaskRun(job, token, deps, deadlines).run();
  };
}

/** Names the worker's backoffStrategy (retryDelay), which knows the delay (AIECS_RETRY_BACKOFF_MS). */
const WORKER_BACKOFF = Object.freeze({ type: 'aiecs' });

/**
 * One attempt of one task. A class rather than closures: its state and methods cost one object
 * per task, which matters at thousands of tasks a second.
 */
class TaskRun implements ProgressSink, Cancellable, Deadlined {
  /** Replaced, for a workflow step, by one whose input_data holds what it waited for. */
  private data: TaskJobData;
  /** Which try of the budget this is: a redelivery (its worker died) does not spend one. */
  private readonly attempt: number;
  private readonly redeliveries: number;
  private readonly log: LazyTaskLogger;
  private reporterMade: TaskReporter | undefined;
  private stop: StopReason | undefined;
  private call: ServiceCall | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private slots: TaskSlots | undefined;
  private limits: TaskLimits = NO_LIMITS;
  private startedAt = 0;
  private hardAt = Infinity;
  deadline = Infinity;
  watchSlot = -1;

  constructor(
    private readonly job: TaskJob,
    private readonly token: string | undefined,
    private readonly deps: RunnerDeps,
    private readonly deadlines: DeadlineWatch,
  ) {
    this.data = jobTaskData(job);
    ({ attempt: this.attempt, redeliveries: this.redeliveries } = runOf(job));
    this.log = new LazyTaskLogger(deps.logger, this.data);
  }

  get taskId(): string {
    return this.data.task_id;
  }

  describe(): TaskRunInfo {
    const { data } = this;
    return {
      ...taskSummary(data, this.job.queueName as QueueKind),
      attempt: this.attempt,
      started_at: new Date(this.startedAt).toISOString(),
      runtime_ms: Date.now() - this.startedAt,
    };
  }

  /** Made on first need: a task that reports nothing and ends well never writes progress. */
  private get reporter(): TaskReporter {
    return (this.reporterMade ??= new TaskReporter(
      this.job,
      this.attempt,
      this.redeliveries,
      this.deps.workerId,
      this.deps.producer,
      this.deps.events,
      this.log,
    ));
  }

  progress(percent: number, message: string): void {
    this.reporter.progress(percent, message);
  }

  stream(delta: string): void {
    this.reporter.stream(delta);
  }

  /**
   * Promise chains, not an async function: a task whose service returns at once then costs one
   * reaction per step rather than a suspended frame holding every local.
   */
  run(): Promise<ResultEnvelope> {
    try {
      return this.begin();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  private begin(): Promise<ResultEnvelope> {
    const { data, deps } = this;
    const { cancels } = deps;
    const last = progressPayload(this.job);
    // A cancel heard before the task was queued again (a manual retry's pending word) was the old run's.
    const since = cancelsCountFrom(last);
    if (dropsOnStart(last)) {
      // The caller's marker is the task's last word: it never ran, so nothing is rewritten.
      deps.onFinished?.(false);
      this.counted(TaskStatus.CANCELLED);
      this.logEnd(TaskStatus.CANCELLED);
      throw new UnrecoverableError('E004 TaskCancelledError: cancelled before it ran');
    }
    if (cancels.wasCancelled(data.task_id, since)) {
      return this.finishFailed(
        TaskStatus.CANCELLED,
        info(new TaskCancelledError(data.task_id, 'cancelled before it ran')),
      );
    }
    // Not started by its expiry time: it never runs (Celery's expires). Only a first start: a
    // retry or a redelivery is of a task that has started.
    const expired = data.expires_at !== undefined && Date.now() >= data.expires_at;
    if (expired && this.attempt === 1 && this.redeliveries === 0)
      return this.finishFailed(TaskStatus.CANCELLED, info(expiredError(data.task_id, data.expires_at!)));
    // A workflow step first reads what it waited for: it runs on their results, or not at all.
    const wanted = this.job.data.wf?.in;
    if (!wanted) return this.start(since);
    return gatherInputs(this.job, data, wanted, deps.handed).then((got) => {
      if (!got.ok) return this.finishFailed(got.status, { ...got.error, retryable: false });
      this.data = got.data;
      return this.start(since);
    });
  }

  private start(since: number): Promise<ResultEnvelope> {
    const { data, deps } = this;
    const { cancels } = deps;
    this.limits = taskLimits(data.options, deps.config);
    this.startedAt = Date.now();
    // Checked first: the line's object would be built for every task, and debug is mostly off.
    if (this.log.enabled('debug'))
      this.log.debug({ attempt: this.attempt, limits: this.limits }, 'task started');
    if (this.redeliveries > 0)
      this.log.info(
        { attempt: this.attempt, redeliveries: this.redeliveries },
        'task delivered again: the worker that ran it stopped without an outcome',
      );
    // Waits for shared limits end when the task stops; slots it still holds are freed at its end.
    const slots = (this.slots = deps.gate.forTask());
    cancels.register(this);
    if (cancels.wasCancelled(data.task_id, since)) this.stop = 'cancel';

    let started: ServiceCall | Promise<ServiceCall>;
    try {
      started = deps.executor.start(data, this.attempt, this, this.log, slots);
    } catch (error) {
      // No child could be started: BullMQ retries the attempt like any other failure.
      cancels.unregister(this);
      throw error;
    }
    if (!(started instanceof Promise)) return this.running(started);
    return started.then(
      (call) => this.running(call),
      (error: unknown) => {
        cancels.unregister(this);
        throw error;
      },
    );
  }

  private running(call: ServiceCall): Promise<ResultEnvelope> {
    this.call = call;
    // Cancel and shutdown may arrive while a child process is still starting: applied once running.
    if (this.stop === 'cancel' || this.stop === 'shutdown') this.applyStop(this.stop);

    const { softS, hardS } = this.limits;
    this.hardAt = this.startedAt + hardS * 1000;
    this.deadline = softS < hardS ? this.startedAt + softS * 1000 : this.hardAt;
    this.deadlines.add(this);
    return call.outcome.then((outcome) => this.finish(outcome));
  }

  /** Turns how the run ended into the task's one terminal state (or a retry, or back to waiting). */
  private finish(outcome: ExecOutcome): ResultEnvelope | Promise<ResultEnvelope> {
    const { data, deps } = this;
    this.deadlines.delete(this);
    clearTimeout(this.graceTimer);
    deps.cancels.unregister(this);
    this.slots?.releaseAll();
    outcome.resources.timings.total_ms = Date.now() - this.startedAt;
    if (this.stop !== undefined) {
      // Ended from outside while its code runs on: nothing in this process can stop it.
      const returned = this.call?.whenReturned?.();
      if (returned) deps.onAbandoned?.(data.task_id, returned);
    }

    switch (this.stop) {
      case 'soft_timeout':
      case 'hard_timeout': {
        const kind = this.stop === 'soft_timeout' ? 'soft' : 'hard';
        countingMetrics()?.taskTimedOut(data.task_name, kind);
        return this.finishFailed(TaskStatus.TIMED_OUT, info(this.timeoutError(kind)), outcome.resources);
      }
      case 'cancel':
        return this.finishFailed(
          TaskStatus.CANCELLED,
          info(new TaskCancelledError(data.task_id)),
          outcome.resources,
        );
      case 'shutdown':
        return this.backToWaiting();
    }

    if (outcome.ok) {
      const reporter = this.reporterMade;
      if (!reporter) return this.completed(outcome.result, outcome.resources);
      return reporter.flush().then(() => {
        reporter.close();
        return this.completed(outcome.result, outcome.resources);
      });
    }

    const error = outcome.error;
    const maxAttempts = this.job.opts.attempts ?? 1;
    if (error.retryable && this.attempt < maxAttempts) return this.retryLater(error, maxAttempts);
    if (error.retryable) {
      const exhausted = new RetriesExhaustedError(
        `gave up after ${this.attempt} attempts: ${error.message}`,
        { attempts: this.attempt, last_error: { type: error.type, message: error.message } },
      );
      return this.finishFailed(
        TaskStatus.FAILED,
        { ...info(exhausted), ...(error.stack ? { stack: error.stack } : {}) },
        outcome.resources,
      );
    }
    return this.finishFailed(TaskStatus.FAILED, error, outcome.resources);
  }

  private completed(result: unknown, resources: ResultEnvelope['resources']): ResultEnvelope {
    const reporter = this.reporterMade;
    this.deps.onFinished?.(true);
    this.counted(TaskStatus.COMPLETED, resources);
    this.logEnd(TaskStatus.COMPLETED, undefined, resources);
    // The seq after everything reported; when nothing was, readers derive it (envelopeSeq).
    const envelope: ResultEnvelope = reporter
      ? { result, resources, seq: reporter.nextSeq(), attempt: this.attempt }
      : { result, resources, attempt: this.attempt };
    if (this.redeliveries > 0) envelope.redeliveries = this.redeliveries;
    // What the record needs beyond the submitted task (see ResultEnvelope): get() then makes it
    // from the completed event without reading the job.
    const { processedOn, processedBy } = this.job;
    if (processedOn !== undefined) envelope.started = processedOn;
    envelope.finished = Date.now();
    if (processedBy !== undefined) envelope.worker = processedBy;
    const reruns = this.job.data.runs?.length;
    if (reruns) envelope.reruns = reruns;
    return envelope;
  }

  private async backToWaiting(): Promise<never> {
    this.reporterMade?.close();
    this.log.info('task returned to the queue for another worker');
    // Back to waiting without spending an attempt: another worker picks it up.
    await this.job.moveToWait(this.token);
    throw new WaitingError();
  }

  private async retryLater(error: FailureInfo, maxAttempts: number): Promise<never> {
    this.counted('retry');
    await this.reporter.final({
      status: TaskStatus.PENDING,
      message: `attempt ${this.attempt} of ${maxAttempts} failed (${error.message}); retrying`,
      error: { type: error.type, code: error.code, message: error.message },
    });
    this.logEnd('retry', error);
    const retry = new Error(error.message) as Error & { retryAfterMs?: number };
    if (error.retryAfterMs !== undefined) retry.retryAfterMs = error.retryAfterMs;
    throw retry;
  }

  /**
   * Counts this execution's end where it ran (so a sum over workers is exact), with its run time
   * when it started; nothing while no one serves metrics.
   */
  private counted(status: ExecutionStatus, resources?: ResultEnvelope['resources']): void {
    const metrics = countingMetrics();
    if (!metrics) return;
    const ms = resources?.timings.total_ms ?? (this.startedAt > 0 ? Date.now() - this.startedAt : undefined);
    metrics.taskEnded(this.data.task_name, status, ms === undefined ? undefined : ms / 1000);
  }

  /** Cancel (from any process) or shutdown: the first reason to stop wins. */
  stopFor(reason: 'cancel' | 'shutdown'): void {
    if (this.stop) return;
    this.stop = reason;
    this.applyStop(reason);
  }

  private applyStop(reason: 'cancel' | 'shutdown'): void {
    const running = this.call;
    if (!running) return;
    const error =
      reason === 'cancel'
        ? new TaskCancelledError(this.data.task_id)
        : new Error('worker is shutting down; the task goes back to the queue');
    running.abort(error);
    this.slots?.stop(error);
    const killInfo: FailureInfo =
      reason === 'cancel'
        ? info(error as TaskCancelledError)
        : { type: 'ShutdownError', code: 'E003', message: error.message, retryable: true };
    this.graceTimer = setTimeout(() => running.kill(killInfo), this.deps.config.cancelGraceMs);
  }

  /** The soft limit aborts the task's signal; the hard limit ends it. */
  onDeadline(): void {
    const running = this.call;
    if (!running) {
      this.deadline = Infinity;
      return;
    }
    if (this.deadline < this.hardAt) {
      this.deadline = this.hardAt;
      if (this.stop) return;
      this.stop = 'soft_timeout';
      const error = this.timeoutError('soft');
      running.abort(error);
      this.slots?.stop(error);
      return;
    }
    this.deadline = Infinity;
    if (this.stop !== 'soft_timeout' && this.stop !== undefined) return;
    this.stop = 'hard_timeout';
    const error = this.timeoutError('hard');
    running.abort(error);
    this.slots?.stop(error);
    running.kill(info(error));
  }

  /** Built only when a limit fires: an error captures a stack, and most tasks never time out. */
  private timeoutError(limit: 'soft' | 'hard'): TaskTimeoutError {
    const { softS, hardS } = this.limits;
    return new TaskTimeoutError(limit, limit === 'soft' ? softS : hardS, this.data.task_id);
  }

  /**
   * The one line per task end that operators grep for (`grep "Task completed"`; failures and time-outs
   * at error level, so `grep '"level":50'`); a retry is a warning. Written through the worker's
   * logger, which names the worker: a per-task child would cost a bindings serialization.
   */
  private logEnd(
    status: TaskStatus | 'retry',
    error?: FailureInfo,
    resources?: ResultEnvelope['resources'],
  ): void {
    const level = END_LEVEL[status] ?? 'info';
    const { logger } = this.deps;
    if (!logger.isLevelEnabled(level)) return;
    const { data } = this;
    const line: Record<string, unknown> = {
      task_id: data.task_id,
      task_name: data.task_name,
      user_id: data.user_id,
      queue: this.job.queueName,
      attempt: this.attempt,
      status,
      // 0 for a task cancelled before it started.
      duration_ms: resources?.timings.total_ms ?? (this.startedAt > 0 ? Date.now() - this.startedAt : 0),
    };
    if (this.redeliveries > 0) line.redeliveries = this.redeliveries;
    if (error) {
      line.code = error.code;
      line.err = error.message;
    }
    logger[level](line, END_MESSAGE[status] ?? `Task ${status}`);
  }

  private async finishFailed(
    status: TaskStatus,
    error: FailureInfo,
    resources?: ResultEnvelope['resources'],
  ): Promise<never> {
    this.counted(status as ExecutionStatus, resources);
    const { retryable: _r, retryAfterMs: _a, ...stored } = error;
    const payload = { status, message: error.message, error: stored, ...(resources ? { resources } : {}) };
    await this.reporter.final(payload);
    this.deps.onFinished?.(false);
    this.logEnd(status, error, resources);
    throw new UnrecoverableError(`${error.code} ${error.type}: ${error.message}`);
  }
}

const END_MESSAGE: Partial<Record<TaskStatus | 'retry', string>> = {
  [TaskStatus.COMPLETED]: 'Task completed',
  [TaskStatus.FAILED]: 'Task failed',
  [TaskStatus.TIMED_OUT]: 'Task timed out',
  [TaskStatus.CANCELLED]: 'Task cancelled',
  retry: 'Task will retry',
};
/** A cancel is someone's choice, not a fault: info. A retry is a warning; the task may still complete. */
const END_LEVEL: Partial<Record<TaskStatus | 'retry', 'info' | 'warn' | 'error'>> = {
  [TaskStatus.FAILED]: 'error',
  [TaskStatus.TIMED_OUT]: 'error',
  retry: 'warn',
};

/**
 * The per-task child logger, made only when a line at an enabled level is written: most tasks
 * log nothing, and a pino child costs a bindings serialization. The parent, the worker's logger,
 * already names the worker.
 */
export class LazyTaskLogger implements TaskLogger {
  private child: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly data: TaskJobData,
  ) {}

  enabled(level: 'debug' | 'info' | 'warn' | 'error'): boolean {
    return this.parent.isLevelEnabled(level);
  }

  debug(obj: unknown, msg?: string): void {
    this.write('debug', obj, msg);
  }
  info(obj: unknown, msg?: string): void {
    this.write('info', obj, msg);
  }
  warn(obj: unknown, msg?: string): void {
    this.write('warn', obj, msg);
  }
  error(obj: unknown, msg?: string): void {
    this.write('error', obj, msg);
  }

  private write(level: 'debug' | 'info' | 'warn' | 'error', obj: unknown, msg?: string): void {
    if (!this.parent.isLevelEnabled(level)) return;
    const { data } = this;
    this.child ??= this.parent.child({
      task_id: data.task_id,
      task_name: data.task_name,
      user_id: data.user_id,
    });
    if (typeof obj === 'string') this.child[level](obj);
    else this.child[level](obj as object, msg);
  }
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
