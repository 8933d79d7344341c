/**
 * How `inspect`, `control`, `purge` and `events` reach the deployment: the store itself (Redis,
 * PostgreSQL, an embedded store no one runs), or the admin endpoints of the running `aiecs up`
 * that owns the embedded store. Both answer in the same shapes (engine/admin.ts).
 */
import type { AiecsConfig } from '../core/config.js';
import { StoreUnavailableError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Admin, InspectAnswer, InspectOptions, InspectVerb, WorkerAnswers } from '../engine/admin.js';
import type { AiecsApp } from '../engine/app.js';
import type { ControlArgs, ControlCommand } from '../engine/control.js';
import type { PurgeResult, QueueCounts } from '../engine/queue-admin.js';
import { checkQueues } from '../engine/queue-admin.js';
import type { Store } from '../engine/store.js';
import type { ProgressEvent } from '../gateway/event-bridge.js';
import { openApp, runningGateway } from './client.js';
import { GatewayError, HttpClient } from './http-client.js';

/** A task's state change as `aiecs events` gets it: the `progress` event without its result. */
export type StateChange = Omit<ProgressEvent, 'result'>;

export interface AdminClient {
  inspect(what: InspectVerb, options: InspectOptions): Promise<InspectAnswer>;
  control(
    command: ControlCommand,
    args: ControlArgs,
    options: { worker?: string; timeoutMs: number },
  ): Promise<WorkerAnswers>;
  queues(): Promise<QueueCounts[]>;
  /** Purges the queues named (all when none); every name is checked before anything is removed. */
  purge(queues: string[]): Promise<PurgeResult[]>;
  /** Pauses (or resumes) the queues named; every name is checked before any is touched. */
  pause(queues: string[], paused: boolean): Promise<Array<{ queue: string; paused: boolean }>>;
  /** Calls `onChange` for each task state change until `signal` aborts; `onReady` once listening. */
  follow(onChange: (change: StateChange) => void, signal: AbortSignal, onReady?: () => void): Promise<void>;
  close(): Promise<void>;
}

const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });

const withoutResult = (event: ProgressEvent): StateChange => {
  const { result: _result, ...change } = event;
  return change;
};

class StoreAdminClient implements AdminClient {
  constructor(
    private readonly app: AiecsApp,
    private readonly store: Store,
    private readonly admin: Admin,
    private readonly logger: Logger,
  ) {}

  inspect(what: InspectVerb, options: InspectOptions): Promise<InspectAnswer> {
    return this.admin.inspect(what, options);
  }

  control(command: ControlCommand, args: ControlArgs, options: { worker?: string; timeoutMs: number }) {
    return this.admin.controlWorkers(command, args, options);
  }

  queues(): Promise<QueueCounts[]> {
    return this.admin.queues();
  }

  purge(queues: string[]): Promise<PurgeResult[]> {
    return this.admin.purge(queues);
  }

  pause(queues: string[], paused: boolean) {
    return this.admin.pause(queues, paused);
  }

  async follow(onChange: (change: StateChange) => void, signal: AbortSignal, onReady?: () => void) {
    // The gateway's own reading of the store's events, kept small: nothing is replayed here.
    const [{ EventBridge }, { StateFeed }] = await Promise.all([
      import('../gateway/event-bridge.js'),
      import('../gateway/state-feed.js'),
    ]);
    const bridge = new EventBridge(this.app, this.store, this.logger, {
      replayPerTask: 1,
      replayTasks: 1_000,
      replayBytes: 1024 * 1024,
    });
    await bridge.start();
    const feed = new StateFeed(bridge, (event) => onChange(withoutResult(event)));
    try {
      onReady?.();
      await aborted(signal);
    } finally {
      feed.close();
      // Not awaited: the command ends right after, and a blocked event read would hold Ctrl-C for seconds.
      void bridge.close();
    }
  }

  async close(): Promise<void> {
    await this.admin.close();
    await this.app.close();
  }
}

class HttpAdminClient implements AdminClient {
  constructor(
    private readonly http: HttpClient,
    private readonly token: string,
  ) {}

  inspect(what: InspectVerb, options: InspectOptions): Promise<InspectAnswer> {
    const query = new URLSearchParams({ timeout: String(options.timeoutMs / 1000) });
    if (options.worker !== undefined) query.set('worker', options.worker);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    return this.http.call<InspectAnswer>('GET', `/api/inspect/${what}?${query.toString()}`);
  }

  /** One worker by its endpoint; every worker: those that answer a ping, each by its endpoint. */
  async control(
    command: ControlCommand,
    args: ControlArgs,
    options: { worker?: string; timeoutMs: number },
  ): Promise<WorkerAnswers> {
    const result: WorkerAnswers = {
      what: command,
      workers: {},
      errors: {},
      no_reply: [],
      timeout_s: options.timeoutMs / 1000,
    };
    let targets: string[];
    if (options.worker !== undefined) targets = [options.worker];
    else {
      const ping = (await this.inspect('ping', { timeoutMs: options.timeoutMs })) as WorkerAnswers;
      targets = Object.keys(ping.workers);
      result.no_reply.push(...ping.no_reply);
    }
    const body = { command, args, timeout: options.timeoutMs / 1000 };
    await Promise.all(
      targets.map(async (worker) => {
        try {
          const answer = await this.http.call<{ message: string }>(
            'POST',
            `/api/workers/${encodeURIComponent(worker)}/control`,
            body,
          );
          result.workers[worker] = { message: answer.message };
        } catch (error) {
          if (!(error instanceof GatewayError)) throw error;
          if (error.code === 'WORKER_NO_REPLY') result.no_reply.push(worker);
          else if (error.code === 'CONTROL_REFUSED') result.errors[worker] = refusal(error);
          else throw error;
        }
      }),
    );
    result.no_reply.sort();
    return result;
  }

  async queues(): Promise<QueueCounts[]> {
    return (await this.http.call<{ queues: QueueCounts[] }>('GET', '/api/queues')).queues;
  }

  async purge(names: string[]): Promise<PurgeResult[]> {
    const queues = checkQueues(names.length ? names : ['fast_tasks', 'heavy_tasks']);
    const results: PurgeResult[] = [];
    for (const queue of queues) {
      const purged = await this.http.call<PurgeResult>('POST', `/api/queues/${queue}/purge`);
      results.push({ queue: purged.queue, waiting: purged.waiting, delayed: purged.delayed });
    }
    return results;
  }

  async pause(names: string[], paused: boolean) {
    const results: Array<{ queue: string; paused: boolean }> = [];
    for (const queue of checkQueues(names))
      results.push(
        await this.http.call<{ queue: string; paused: boolean }>(
          'POST',
          `/api/queues/${queue}/${paused ? 'pause' : 'resume'}`,
        ),
      );
    return results;
  }

  async follow(onChange: (change: StateChange) => void, signal: AbortSignal, onReady?: () => void) {
    let response: Response;
    try {
      response = await fetch(`${this.http.url}/api/events`, {
        headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (!response.ok || !response.body) {
      // The gateway's error body, as every other command reports it.
      const payload = (await response.json().catch(() => ({}))) as {
        error?: { code: string; message: string };
      };
      const e = payload.error ?? { code: 'HTTP_ERROR', message: `${response.status} ${response.statusText}` };
      throw new GatewayError(e.code, e.message, response.status);
    }
    onReady?.();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6))
            .join('\n');
          if (data) onChange(JSON.parse(data) as StateChange);
        }
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
    if (!signal.aborted)
      throw new StoreUnavailableError(
        `the running aiecs up at ${this.http.url} ended the event stream (stopped?)`,
      );
  }

  async close(): Promise<void> {}
}

/** The worker's own reason, without the "worker X refused Y:" the gateway put before it. */
function refusal(error: GatewayError): string {
  return error.message.replace(/^worker \S+ refused \S+: /, '');
}

/**
 * The admin client for the configured store. `timeoutMs` is the longest the workers get to answer:
 * an HTTP request to `aiecs up` may take that on top of its usual bound.
 */
export async function openAdminClient(options: {
  config: AiecsConfig;
  namespace?: string;
  logger: Logger;
  timeoutMs?: number;
}): Promise<AdminClient> {
  const running = await runningGateway(options.config);
  if (running) {
    const http = new HttpClient(
      running.url,
      running.token,
      running.refusedToken,
      running.timeoutMs + (options.timeoutMs ?? 0),
    );
    return new HttpAdminClient(http, running.token);
  }
  const { app, store } = await openApp(options);
  const { Admin } = await import('../engine/admin.js');
  return new StoreAdminClient(app, store, new Admin(app, store), options.logger);
}
