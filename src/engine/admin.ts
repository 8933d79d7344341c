/**
 * Celery's operator verbs on one store, for the CLI (on Redis and PostgreSQL) and the gateway's
 * admin endpoints (which the CLI uses on the embedded store): inspect and control the workers
 * over the control channel, and read and purge the queues. Both print or send these shapes as
 * they are, so `--json` and HTTP agree.
 */
import { WorkerNotFoundError } from '../core/errors.js';
import type { QueueKind } from '../core/task.js';
import { QUEUE_KINDS } from '../core/task.js';
import type { AiecsApp } from './app.js';
import type { ControlArgs, ControlCommand, InspectCommand, InspectVerb } from './control.js';
import type { Gathered } from './control-client.js';
import { ControlClient } from './control-client.js';
import type { PurgeResult, QueueCounts, QueueListing } from './queue-admin.js';
import { checkQueues, listQueue, purgeQueue, queueCounts, setQueuePaused } from './queue-admin.js';
import type { Store, WorkerHeartbeat } from './store.js';

export { INSPECT_VERBS, type InspectVerb } from './control.js';

/** What the workers answered to one verb. */
export interface WorkerAnswers {
  what: InspectCommand | ControlCommand;
  /** Each answering worker's data (for control verbs, `{message}`). */
  workers: Record<string, unknown>;
  /** Workers that answered with an error (a control verb they refused). */
  errors: Record<string, string>;
  /** Live workers (by their heartbeats) that did not answer within the timeout. */
  no_reply: string[];
  timeout_s: number;
}

/** Tasks in their queues (`scheduled`: delayed; `reserved`: waiting to run). */
export interface QueueAnswers {
  what: 'scheduled' | 'reserved';
  queues: QueueListing[];
}

export type InspectAnswer = WorkerAnswers | QueueAnswers;

export interface InspectOptions {
  /** Ask only this worker (or, for queue verbs, list only the queues it consumes). */
  worker?: string;
  timeoutMs: number;
  /** Tasks listed per queue by `scheduled` and `reserved`. */
  limit?: number;
}

/** A live worker with the figures it gave just now (`answered`), or its heartbeat's (not). */
export type LiveWorker = WorkerHeartbeat & { answered: boolean };

export class Admin {
  private readonly control: ControlClient;

  constructor(
    private readonly app: AiecsApp,
    store: Store,
  ) {
    this.control = new ControlClient(store);
  }

  async inspect(what: InspectVerb, options: InspectOptions): Promise<InspectAnswer> {
    if (what === 'scheduled' || what === 'reserved') {
      let queues: readonly QueueKind[] = QUEUE_KINDS;
      if (options.worker !== undefined) {
        const [beat] = await this.beatsOf([options.worker], options.timeoutMs);
        queues = QUEUE_KINDS.filter((q) => beat?.queues.includes(q));
      }
      const state = what === 'scheduled' ? 'delayed' : 'waiting';
      const limit = options.limit ?? 100;
      const listings = await this.app.bounded(`list the ${state} tasks`, () =>
        Promise.all(queues.map((q) => listQueue(this.app, q, state, limit))),
      );
      return { what, queues: listings };
    }
    return this.ask(what, {}, options);
  }

  /** Sends a control verb to every live worker, or to the one named. */
  controlWorkers(
    command: ControlCommand,
    args: ControlArgs,
    options: { worker?: string; timeoutMs: number },
  ): Promise<WorkerAnswers> {
    return this.ask(command, args, options);
  }

  private async ask(
    what: InspectCommand | ControlCommand,
    args: ControlArgs,
    options: { worker?: string; timeoutMs: number },
  ): Promise<WorkerAnswers> {
    const gathered = await this.control.request(what, args, {
      timeoutMs: options.timeoutMs,
      ...(options.worker !== undefined ? { workers: [options.worker] } : {}),
    });
    return answers(what, gathered, options.timeoutMs);
  }

  /** The live workers, with the active counts they give now (answered over the control channel). */
  async workers(timeoutMs: number): Promise<{ workers: LiveWorker[]; no_reply: string[] }> {
    const gathered = await this.control.request('stats', {}, { timeoutMs });
    const workers = gathered.live.map((beat): LiveWorker => {
      const reply = gathered.replies[beat.id];
      if (!reply?.ok) return { ...beat, answered: false };
      const stats = reply.data as {
        active: number;
        processed: number;
        failed: number;
        abandoned: number;
        abandoned_running: number;
        queues: QueueKind[];
        pools: Partial<Record<QueueKind, { concurrency: number }>>;
      };
      const concurrency = { ...beat.concurrency };
      for (const q of QUEUE_KINDS) {
        const size = stats.pools[q]?.concurrency;
        if (size !== undefined) concurrency[q] = size;
      }
      return {
        ...beat,
        active: stats.active,
        processed: stats.processed,
        failed: stats.failed,
        abandoned: stats.abandoned,
        abandoned_running: stats.abandoned_running,
        queues: stats.queues,
        concurrency,
        answered: true,
      };
    });
    return { workers: workers.sort((a, b) => a.id.localeCompare(b.id)), no_reply: gathered.no_reply };
  }

  async queues(names: readonly string[] = QUEUE_KINDS): Promise<QueueCounts[]> {
    const queues = checkQueues(names);
    return this.app.bounded('count the queues', () =>
      Promise.all(queues.map((q) => queueCounts(this.app, q))),
    );
  }

  /** Purges the queues named (every queue when none), once every name is known to be one. */
  async purge(names: readonly string[]): Promise<PurgeResult[]> {
    const queues = checkQueues(names.length ? names : QUEUE_KINDS);
    const results: PurgeResult[] = [];
    for (const queue of queues)
      results.push(await this.app.bounded(`purge ${queue}`, () => purgeQueue(this.app, queue)));
    return results;
  }

  /** Pauses (or resumes) the queues named, once every name is known to be one. */
  async pause(
    names: readonly string[],
    paused = true,
  ): Promise<Array<{ queue: QueueKind; paused: boolean }>> {
    const queues = checkQueues(names);
    const results: Array<{ queue: QueueKind; paused: boolean }> = [];
    for (const queue of queues)
      results.push(
        await this.app.bounded(`${paused ? 'pause' : 'resume'} ${queue}`, () =>
          setQueuePaused(this.app, queue, paused),
        ),
      );
    return results;
  }

  private async beatsOf(ids: string[], timeoutMs: number): Promise<WorkerHeartbeat[]> {
    const live = await this.control.liveWorkers(Date.now() + timeoutMs);
    return ids.map((id) => {
      const beat = live.find((b) => b.id === id);
      if (!beat) throw new WorkerNotFoundError(id, live.map((b) => b.id).sort());
      return beat;
    });
  }

  close(): Promise<void> {
    return this.control.close();
  }
}

function answers(what: WorkerAnswers['what'], gathered: Gathered, timeoutMs: number): WorkerAnswers {
  const workers: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const id of Object.keys(gathered.replies).sort()) {
    const reply = gathered.replies[id]!;
    if (reply.ok) workers[id] = reply.data;
    else errors[id] = reply.error;
  }
  return { what, workers, errors, no_reply: gathered.no_reply, timeout_s: timeoutMs / 1000 };
}
