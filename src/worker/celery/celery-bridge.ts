/**
 * `aiecs worker --celery`: Celery messages in, ordinary aiecs tasks out (issue 17; docs/design.md,
 * "Celery bridge"). Each message taken off kombu's lists (kombu-intake.ts) is parsed
 * (celery-message.ts), mapped by the seed's signature (core/celery-call.ts) and submitted with its
 * Celery id as the task's `celery` marker, then acked. The submit is idempotent (the same id and
 * request return the existing task), so a message taken again after a crash is not run twice.
 *
 * | Celery                         | aiecs                                                          |
 * |--------------------------------|----------------------------------------------------------------|
 * | task name                      | queue: execute_task → fast_tasks, execute_heavy_task → heavy_tasks |
 * | args / kwargs                  | the request, by the seed's signature                           |
 * | message id                     | `celery.id`; also the task_id when the call gives none         |
 * | `eta` (and `countdown`)        | `eta`                                                          |
 * | `expires`                      | `expires` (not started by then: cancelled, reason expired)     |
 * | `timelimit [hard, soft]`       | `time_limit`, `soft_time_limit` (None: the worker's defaults)  |
 * | `retries` (retries made)       | `attempts` = AIECS_TASK_MAX_ATTEMPTS − retries, at least 1     |
 * | `priority` (properties)        | `priority` = the number itself, clamped to 1–100 (absent: the queue's 10 / 5) |
 *
 * A message that cannot become a task (unreadable, another serializer, an unknown task name,
 * bad arguments, a task_id naming another request) is logged on one line, kept in the dead-letter
 * list `aiecs:celery:rejected`, gets a Celery FAILURE result when it has an id, and is acked. A
 * store that does not answer puts the message back and pauses the intake.
 */
import type { Redis } from 'ioredis';
import { AiecsError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { celeryCallToRequest } from '../../core/celery-call.js';
import { MAX_PRIORITY, type TaskRecord } from '../../core/task.js';
import type { WireSubmitOptions } from '../../core/submission.js';
import type { WireSubmission } from '../../engine/submit.js';
import type { TaskHandle } from '../../engine/task-handle.js';
import { celeryDate, celeryResultKey, exceptionOf, type CeleryMeta } from './celery-meta.js';
import { envelopeId, parseCeleryMessage, type CeleryMessage } from './celery-message.js';
import { KombuIntake, type TakenMessage } from './kombu-intake.js';
import { CeleryPidbox, type RevokeRequest } from './pidbox.js';

/** What the bridge needs of the app (an AiecsApp on the worker's store). */
export interface BridgeApp {
  submitWire(item: WireSubmission): Promise<TaskHandle>;
  getTask(taskId: string): Promise<TaskRecord | undefined>;
  cancel(taskId: string): Promise<unknown>;
  readonly config: { maxAttempts: number };
}

export interface CeleryBridgeOptions {
  app: BridgeApp;
  logger: Logger;
  /** The Celery broker (a redis:// URL). */
  brokerUrl: string;
  queues: readonly string[];
  /** kombu's visibility_timeout: unacked longer than this goes back to its queue. */
  visibilityTimeoutS: number;
  /**
   * Results of messages that never become tasks (refused: FAILURE; revoked before they were
   * taken: REVOKED), written as Celery's Redis backend does; false: none.
   */
  results?: { url?: string; expiresS: number } | false;
  /** Messages taken per step (default 64). */
  batch?: number;
  /** Longest wait before every list is looked at again (default 100 ms). */
  pollMs?: number;
}

/** Pause after the store or broker failed a step. */
const BACKOFF_MS = 1_000;

/** Celery's priority in aiecs terms: the seed's route values (10 fast, 5 heavy) stay themselves. */
export function celeryPriority(priority: number | undefined): number | undefined {
  if (priority === undefined || !Number.isFinite(priority)) return undefined;
  return Math.min(MAX_PRIORITY, Math.max(1, Math.round(priority)));
}

/** A message's headers as submit options (see the table above). */
export function celerySubmitOptions(message: CeleryMessage, maxAttempts: number): WireSubmitOptions {
  const options: WireSubmitOptions = {};
  if (message.eta !== undefined) options.eta = message.eta;
  if (message.expires !== undefined) options.expires = message.expires;
  if (message.timeLimit !== undefined) options.time_limit = message.timeLimit;
  if (message.softTimeLimit !== undefined) options.soft_time_limit = message.softTimeLimit;
  if (message.retries > 0) options.attempts = Math.max(1, maxAttempts - message.retries);
  const priority = celeryPriority(message.priority);
  if (priority !== undefined) options.priority = priority;
  return options;
}

export interface BridgeCounts {
  submitted: number;
  refused: number;
  revoked: number;
  requeued: number;
  restored: number;
}

export class CeleryBridge {
  readonly intake: KombuIntake;
  private readonly pidbox: CeleryPidbox;
  private readonly log: Logger;
  private resultClient: Redis | undefined;
  private ownsResultClient = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private restoreTimer: NodeJS.Timeout | undefined;
  readonly counts: BridgeCounts = { submitted: 0, refused: 0, revoked: 0, requeued: 0, restored: 0 };

  constructor(private readonly options: CeleryBridgeOptions) {
    this.log = options.logger.child({ component: 'celery-bridge' });
    this.intake = new KombuIntake({
      url: options.brokerUrl,
      queues: options.queues,
      visibilityTimeoutS: options.visibilityTimeoutS,
      logger: this.log,
      ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
    });
    this.pidbox = new CeleryPidbox({
      url: options.brokerUrl,
      logger: this.log,
      onRevoke: (request) => this.onRevoke(request),
    });
  }

  async start(): Promise<void> {
    await this.intake.connect();
    await this.pidbox.start();
    const results = this.options.results;
    if (results) {
      if (results.url === undefined || results.url === this.options.brokerUrl)
        this.resultClient = this.intake.client;
      else {
        const { Redis } = await import('ioredis');
        this.resultClient = new Redis(results.url, { maxRetriesPerRequest: 2 });
        this.resultClient.on('error', () => undefined);
        this.ownsResultClient = true;
      }
    }
    await this.restore();
    // kombu restores on its consumers' drain cycles; a timer, a few times per timeout, does the same.
    const every = Math.max(500, Math.min(60_000, (this.options.visibilityTimeoutS * 1000) / 3));
    this.restoreTimer = setInterval(() => void this.restore(), every);
    this.restoreTimer.unref();
    this.loop = this.run();
  }

  private async restore(): Promise<void> {
    try {
      const restored = await this.intake.restoreVisible();
      if (restored > 0) {
        this.counts.restored += restored;
        this.log.info({ restored }, 'Celery messages restored from unacked (visibility timeout passed)');
      }
    } catch (error) {
      if (!this.closed) this.log.warn({ err: (error as Error).message }, 'Celery restore failed');
    }
  }

  private async run(): Promise<void> {
    const batch = this.options.batch ?? 64;
    while (!this.closed) {
      let taken: TakenMessage[];
      try {
        taken = await this.intake.take(batch);
      } catch (error) {
        if (this.closed) break;
        this.log.warn({ err: (error as Error).message }, 'Celery broker: take failed; retrying');
        await sleep(BACKOFF_MS);
        continue;
      }
      if (taken.length === 0) {
        await this.intake.waitForMessage().catch(async () => {
          if (!this.closed) await sleep(BACKOFF_MS);
        });
        continue;
      }
      const outcomes = await Promise.all(taken.map((m) => this.handle(m)));
      if (outcomes.includes('requeued')) await sleep(BACKOFF_MS);
    }
  }

  /** One taken message, to its end: submitted and acked, refused, dropped as revoked, or put back. */
  private async handle(taken: TakenMessage): Promise<'done' | 'requeued'> {
    if (!taken.tag) {
      // Dead-lettered by the take already: no tag to track it by.
      await this.refuse(taken, new Error('unreadable kombu envelope (not JSON, or no delivery_tag)'));
      return 'done';
    }
    let message: CeleryMessage;
    try {
      message = parseCeleryMessage(taken.raw);
    } catch (error) {
      await this.refuse(taken, error);
      return 'done';
    }
    try {
      if (taken.revoked) {
        await this.writeResult(
          message.id,
          'REVOKED',
          exceptionOf('TaskRevokedError', 'revoked'),
          'celery.exceptions',
        );
        await this.intake.ack(taken, message.id, message.id);
        this.counts.revoked++;
        this.log.info({ celery_id: message.id }, 'Celery message dropped: revoked before it was taken');
        return 'done';
      }
      const call = celeryCallToRequest(message.task, message.args, message.kwargs);
      const request = { ...call.request };
      if (request.task_id === undefined) request.task_id = message.id;
      const taskId = request.task_id;
      await this.options.app.submitWire({
        queue: call.queue,
        request,
        options: celerySubmitOptions(message, this.options.app.config.maxAttempts),
        celery: { id: message.id },
      });
      const revoked = await this.intake.ack(
        taken,
        message.id,
        typeof taskId === 'string' ? taskId : message.id,
      );
      this.counts.submitted++;
      if (revoked && typeof taskId === 'string') await this.cancel(message.id, taskId, true);
      return 'done';
    } catch (error) {
      // The request's own fault (E001, E007...): refused for good. The store's or the broker's: again later.
      if (error instanceof AiecsError && error.wireCode !== 'E006') {
        await this.refuse(taken, error, message.id);
        return 'done';
      }
      this.log.warn(
        { celery_id: message.id, err: (error as Error).message },
        'Celery message put back: the store did not take it',
      );
      await this.intake.requeue(taken).catch(() => undefined);
      this.counts.requeued++;
      return 'requeued';
    }
  }

  /** Logs one line, dead-letters and acks the message, and writes a FAILURE for its id. */
  private async refuse(taken: TakenMessage, error: unknown, id = envelopeId(taken.raw)): Promise<void> {
    this.counts.refused++;
    const err = error as Error;
    this.log.warn(
      { celery_id: id ?? null, queue: taken.queue, err: err.message },
      'Celery message refused (kept in aiecs:celery:rejected)',
    );
    try {
      if (taken.tag) await this.intake.reject(taken);
      const type = err instanceof AiecsError ? err.name : 'CeleryMessageError';
      if (id !== undefined) await this.writeResult(id, 'FAILURE', exceptionOf(type, err.message));
    } catch (failure) {
      this.log.warn({ err: (failure as Error).message }, 'Celery refusal not recorded');
    }
  }

  /** One result as Celery's RedisBackend writes it (SETEX + PUBLISH of the same key). */
  private async writeResult(
    id: string,
    status: 'FAILURE' | 'REVOKED',
    result: ReturnType<typeof exceptionOf>,
    module?: string,
  ): Promise<void> {
    const results = this.options.results;
    if (!results || !this.resultClient) return;
    const meta: CeleryMeta = {
      status,
      result: module ? { ...result, exc_module: module } : result,
      traceback: null,
      children: [],
      date_done: celeryDate(new Date()),
      task_id: id,
    };
    const key = celeryResultKey(id);
    const text = JSON.stringify(meta);
    const multi = this.resultClient.multi();
    if (results.expiresS > 0) multi.set(key, text, 'EX', results.expiresS);
    else multi.set(key, text);
    await multi.publish(key, text).exec();
  }

  /** A revoke from Python: remembered for messages still in a list, and the tasks it names cancelled. */
  private async onRevoke(request: RevokeRequest): Promise<void> {
    // Remembered first: an ack after this sees it (see lua/kombu-ack.lua).
    await this.intake.revoke(request.ids);
    const taskIds = await this.intake.taskIds(request.ids);
    await Promise.all(request.ids.map((id, i) => this.cancel(id, taskIds[i]!, request.terminate)));
  }

  /** Cancels the task bridged from `celeryId`; without terminate only if it has not started. */
  private async cancel(celeryId: string, taskId: string, terminate: boolean): Promise<void> {
    const record = await this.options.app.getTask(taskId);
    // Only a task this Celery id made: a Celery id must not cancel someone else's task.
    if (!record || record.celery_id !== celeryId) return;
    if (!terminate && record.status !== 'pending') return;
    await this.options.app.cancel(taskId);
    this.log.info({ celery_id: celeryId, task_id: taskId, terminate }, 'Celery revoke: task cancelled');
  }

  /** Stops taking, lets the messages in hand finish (submitted and acked), then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.restoreTimer);
    this.intake.stopWaiting();
    await this.loop;
    this.pidbox.close();
    if (this.ownsResultClient) this.resultClient?.disconnect();
    this.intake.close();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
