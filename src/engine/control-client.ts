/**
 * The requester's side of the control channel: sends an inspect or control verb to the live
 * workers (all, or those named) and gathers their replies until each has answered or the timeout
 * passes, whichever comes first. The live workers are the heartbeats', so a worker that died
 * without a word is named among those that did not answer.
 */
import { randomBytes } from 'node:crypto';
import { StoreUnavailableError, WorkerNotFoundError } from '../core/errors.js';
import type { ControlArgs, WorkerCommand, WorkerReply } from './control.js';
import { ReplyAssembler, decodeReplyPart, encodeControl } from './control.js';
import type { Store, WorkerHeartbeat } from './store.js';

export interface Gathered {
  /** Answers by worker id. */
  replies: Record<string, WorkerReply>;
  /** Live workers that were asked and did not answer in time (sorted). */
  no_reply: string[];
  /** The heartbeats of the workers asked, as the store had them. */
  live: WorkerHeartbeat[];
}

export interface RequestOptions {
  /** Worker ids to ask; default: every live worker. An id no live worker has is refused. */
  workers?: string[];
  /** The whole request, the list of live workers included, ends within this (milliseconds). */
  timeoutMs: number;
}

interface Pending {
  expected: Set<string>;
  replies: Record<string, WorkerReply>;
  assembler: ReplyAssembler;
  done: () => void;
}

/** Celery's default: one second. */
export const DEFAULT_CONTROL_TIMEOUT_MS = 1_000;

export class ControlClient {
  private subscribed: Promise<() => Promise<void>> | undefined;
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  constructor(private readonly store: Store) {}

  /** The live workers, read within `deadline` (the store may be away). */
  async liveWorkers(deadline: number): Promise<WorkerHeartbeat[]> {
    return beforeDeadline(this.store.listHeartbeats(), deadline, 'list the live workers');
  }

  async request(command: WorkerCommand, args: ControlArgs, options: RequestOptions): Promise<Gathered> {
    if (this.closed) throw new Error('the control client is closed');
    const deadline = Date.now() + options.timeoutMs;
    const beats = await this.liveWorkers(deadline);
    const ids = beats.map((b) => b.id).sort();
    const wanted = options.workers && [...new Set(options.workers)];
    const unknown = wanted?.find((w) => !ids.includes(w));
    if (unknown !== undefined) throw new WorkerNotFoundError(unknown, ids);
    const live = wanted ? beats.filter((b) => wanted.includes(b.id)) : beats;
    if (live.length === 0) return { replies: {}, no_reply: [], live };

    this.subscribed ??= this.store
      .subscribe((raw) => this.onReply(raw), 'reply')
      .catch((error: unknown) => {
        this.subscribed = undefined; // the next request tries again
        throw error;
      });
    // Subscribed first: an answer that comes back at once is not missed.
    await beforeDeadline(this.subscribed, deadline, 'listen for replies');
    const id = randomBytes(12).toString('hex');
    const entry: Pending = {
      expected: new Set(live.map((b) => b.id)),
      replies: {},
      assembler: new ReplyAssembler(),
      done: () => undefined,
    };
    const finished = new Promise<void>((resolve) => (entry.done = resolve));
    this.pending.set(id, entry);
    const timer = setTimeout(entry.done, Math.max(0, deadline - Date.now()));
    try {
      await beforeDeadline(
        this.store.publish(
          encodeControl({ type: 'request', id, command, args, ...(wanted ? { destination: wanted } : {}) }),
        ),
        deadline,
        'send the request',
      );
      await finished;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
    const noReply = [...entry.expected].filter((w) => !(w in entry.replies)).sort();
    return { replies: entry.replies, no_reply: noReply, live };
  }

  private onReply(raw: string): void {
    const part = decodeReplyPart(raw);
    if (!part) return;
    const entry = this.pending.get(part.id);
    if (!entry) return;
    const reply = entry.assembler.add(part);
    if (!reply) return;
    entry.replies[part.worker] = reply;
    if ([...entry.expected].every((w) => w in entry.replies)) entry.done();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.pending.values()) entry.done();
    const unsubscribe = await this.subscribed?.catch(() => undefined);
    await unsubscribe?.().catch(() => undefined);
  }
}

/** `promise`, or StoreUnavailableError once `deadline` passes (the promise is left to settle). */
function beforeDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  const left = deadline - Date.now();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new StoreUnavailableError(`could not ${what}: the store did not answer in time`)),
      Math.max(0, left),
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}
