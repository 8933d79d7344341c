/**
 * A worker's side of Celery's inspect and control verbs: requests arrive on the store's control
 * channel (see engine/control.ts), answers go back on the reply channel under the request's id.
 */
import { hostname, loadavg } from 'node:os';
import type { Logger } from '../core/logger.js';
import type { QueueKind, TaskSummary } from '../core/task.js';
import type { ControlArgs, ControlRequest, WorkerReply } from '../engine/control.js';
import { encodeReply, maxMessageBytes } from '../engine/control.js';
import type { Store } from '../engine/store.js';
import type { ServiceRegistry } from '../registry/registry.js';

/** A TaskRun on a worker, as `inspect active` shows it. */
export interface TaskRunInfo extends TaskSummary {
  attempt: number;
  started_at: string;
  runtime_ms: number;
}

export interface QueuePoolStats {
  kind: string;
  concurrency: number;
  active: number;
  /** Whether the worker takes tasks from this queue now (cancel-consumer stops it). */
  consuming: boolean;
  /** The process pool's children. */
  children?: number[];
}

/** `inspect stats`: what the heartbeat says, current, and more. */
export interface WorkerStats {
  worker: string;
  hostname: string;
  pid: number;
  version: string;
  started_at: string;
  uptime_s: number;
  queues: QueueKind[];
  pools: Partial<Record<QueueKind, QueuePoolStats>>;
  active: number;
  processed: number;
  failed: number;
  abandoned: number;
  abandoned_running: number;
  rss_bytes: number;
  heap_used_bytes: number;
  loadavg: number[];
}

/** What of a worker the verbs need. */
export interface Controllable {
  readonly id: string;
  readonly registry: Pick<ServiceRegistry, 'list'>;
  readonly startedAt: number;
  readonly version: string;
  counters(): { processed: number; failed: number; abandoned: number; abandonedRunning: number };
  pools(): Partial<Record<QueueKind, QueuePoolStats>>;
  running(): TaskRunInfo[];
  /** Each returns one line saying what was done, or throws saying why not. */
  resize(concurrency: NonNullable<ControlArgs['concurrency']>): string;
  cancelConsumer(queue: QueueKind): Promise<string>;
  addConsumer(queue: QueueKind): Promise<string>;
  /** Starts a graceful stop (as on SIGTERM); the worker's process ends once it is done. */
  shutdown(): void;
}

export function workerStats(target: Controllable): WorkerStats {
  const counters = target.counters();
  const pools = target.pools();
  const memory = process.memoryUsage();
  return {
    worker: target.id,
    hostname: hostname(),
    pid: process.pid,
    version: target.version,
    started_at: new Date(target.startedAt).toISOString(),
    uptime_s: Math.round((Date.now() - target.startedAt) / 1000),
    queues: (Object.keys(pools) as QueueKind[]).filter((q) => pools[q]?.consuming),
    pools,
    active: Object.values(pools).reduce((sum, p) => sum + (p?.active ?? 0), 0),
    processed: counters.processed,
    failed: counters.failed,
    abandoned: counters.abandoned,
    abandoned_running: counters.abandonedRunning,
    rss_bytes: memory.rss,
    heap_used_bytes: memory.heapUsed,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export class RemoteControl {
  constructor(
    private readonly store: Store,
    private readonly target: Controllable,
    private readonly logger: Logger,
  ) {}

  /** Answers a request meant for this worker (all of them, or it by name); others are ignored. */
  async handle(request: ControlRequest): Promise<void> {
    if (request.destination && !request.destination.includes(this.target.id)) return;
    let reply: WorkerReply;
    try {
      reply = { ok: true, data: await this.answer(request) };
    } catch (error) {
      reply = { ok: false, error: (error as Error).message };
    }
    if (request.command !== 'ping' && request.command !== 'active' && request.command !== 'stats')
      this.logger.info(
        {
          command: request.command,
          args: request.args,
          ok: reply.ok,
          ...(reply.ok ? {} : { err: reply.error }),
        },
        'control request',
      );
    try {
      for (const message of encodeReply(request.id, this.target.id, reply, maxMessageBytes(this.store.kind)))
        await this.store.publish(message, 'reply');
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, command: request.command }, 'could not send reply');
    }
    // Answered first: the requester learns that the worker is going before it goes.
    if (request.command === 'shutdown' && reply.ok) this.target.shutdown();
  }

  private async answer(request: ControlRequest): Promise<unknown> {
    const { args } = request;
    switch (request.command) {
      case 'ping':
        return { pong: true };
      case 'active':
        return { tasks: this.target.running() };
      case 'stats':
        return workerStats(this.target);
      case 'registered':
        return { services: this.target.registry.list() };
      case 'shutdown':
        return {
          message: 'shutting down: running tasks finish (or go back to the queue at the drain deadline)',
        };
      case 'pool-resize':
        if (args.concurrency === undefined) throw new Error('pool-resize needs a concurrency');
        return { message: this.target.resize(args.concurrency) };
      case 'cancel-consumer':
        if (!args.queue) throw new Error('cancel-consumer needs a queue');
        return { message: await this.target.cancelConsumer(args.queue) };
      case 'add-consumer':
        if (!args.queue) throw new Error('add-consumer needs a queue');
        return { message: await this.target.addConsumer(args.queue) };
    }
  }
}

/**
 * The queues and sizes a pool-resize means for a worker consuming `consuming`: one size for all of
 * them, or sizes for the queues named (each must be one it consumes). Throws saying what is wrong.
 */
export function resizePlan(
  concurrency: NonNullable<ControlArgs['concurrency']>,
  consuming: readonly QueueKind[],
): Array<[QueueKind, number]> {
  const plan: Array<[QueueKind, number]> =
    typeof concurrency === 'number'
      ? consuming.map((q) => [q, concurrency])
      : (Object.entries(concurrency) as Array<[QueueKind, number]>);
  if (plan.length === 0) throw new Error('not consuming any queue');
  for (const [queue, size] of plan) {
    if (!consuming.includes(queue)) throw new Error(`not consuming ${queue}`);
    if (!Number.isSafeInteger(size) || size < 1)
      throw new Error(`concurrency of ${queue} must be a whole number >= 1, not ${size}`);
  }
  return plan;
}
