/**
 * TaskClient over a running gateway's HTTP API: how commands reach `aiecs up` when it owns the
 * embedded store. Waiting rides a socket.io subscription, so it is event-driven like the library.
 */
import { io as connect } from 'socket.io-client';
import {
  AiecsError,
  StoreUnavailableError,
  TaskNotFoundError,
  ValidationError,
  WaitTimeoutError,
} from '../core/errors.js';
import type { QueueKind, TaskRecord } from '../core/task.js';
import type { WireSubmitOptions } from '../core/submission.js';
import { isTerminal } from '../core/task.js';
import type { CancelResult } from '../engine/app.js';
import type { RetryResult } from '../engine/task-retry.js';
import { DEFAULT_STORE_TIMEOUT_MS, type WorkerHeartbeat } from '../engine/store.js';
import type { WireWorkflowTree } from '../gateway/workflow-schema.js';
import type { SubmitResult, TaskClient, WorkflowAccepted } from './task-client.js';

/** An error the gateway answered with, keeping its code so exit codes stay right. */
export class GatewayError extends AiecsError {
  override readonly code: string;
  constructor(
    code: string,
    message: string,
    readonly status: number,
    details: Record<string, unknown> = {},
  ) {
    super(message, details);
    this.code = code;
  }
}

export class HttpClient implements TaskClient {
  constructor(
    readonly url: string,
    private readonly token: string,
    /** Said instead of the gateway's bare "invalid token" when it refuses ours (a 401). */
    private readonly refusedToken?: string,
    /** How long one request may take; the gateway answers within its own store timeout. */
    private readonly timeoutMs = 2 * DEFAULT_STORE_TIMEOUT_MS,
  ) {}

  /** The running `aiecs up` did not answer: gone (its file left behind), or stuck. */
  private unreachable(error: unknown): StoreUnavailableError {
    const e = error as { name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
    const why =
      e.name === 'TimeoutError'
        ? `no answer within ${this.timeoutMs} ms`
        : String(e.cause?.code ?? e.cause?.message ?? e.message);
    return new StoreUnavailableError(
      `cannot reach the running aiecs up at ${this.url} (${why}); is it still running? ` +
        'Start it again with `aiecs up`, or use --broker to reach the store directly',
      {},
      { cause: error },
    );
  }

  /** One request to the gateway's API; an error answer is thrown as the gateway's error. */
  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw this.unreachable(error);
    }
    const payload = (await response.json().catch(() => ({}))) as {
      error?: { code: string; message: string; details?: Record<string, unknown> };
    };
    if (response.ok) return payload as T;
    const e = payload.error ?? { code: 'HTTP_ERROR', message: `${response.status} ${response.statusText}` };
    if (response.status === 401 && this.refusedToken) {
      throw new GatewayError(e.code, `${this.refusedToken} (${e.message})`, 401, e.details ?? {});
    }
    if (e.code === 'VALIDATION_ERROR' && Array.isArray(e.details?.issues)) {
      throw new ValidationError(e.details.issues as ValidationError['issues']);
    }
    throw new GatewayError(e.code, e.message, response.status, e.details ?? {});
  }

  async submit(
    queue: QueueKind | undefined,
    request: unknown,
    options: WireSubmitOptions,
    template?: string,
  ): Promise<SubmitResult> {
    const body: Record<string, unknown> = { ...(request as Record<string, unknown>), ...options };
    if (template !== undefined) body.template = template;
    // A template's queue is its own unless the caller chose one.
    if (queue !== undefined || template === undefined) body.heavy = queue === 'heavy_tasks';
    return this.call<SubmitResult>('POST', '/api/tasks', body);
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    try {
      return await this.call<TaskRecord>('GET', `/api/tasks/${encodeURIComponent(taskId)}`);
    } catch (error) {
      if (error instanceof GatewayError && error.status === 404) return undefined;
      throw error;
    }
  }

  async wait(taskId: string, _queue: QueueKind, timeoutS?: number): Promise<TaskRecord> {
    const socket = connect(this.url, {
      auth: { token: this.token },
      transports: ['websocket'],
      reconnection: true,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const check = async () => {
          const record = await this.get(taskId);
          if (!record) return reject(new TaskNotFoundError(taskId));
          if (isTerminal(record.status)) resolve();
        };
        socket.on('progress', (event: { task_id?: string; status?: string }) => {
          if (event.task_id === taskId && isTerminal(event.status as TaskRecord['status'])) resolve();
        });
        // On every (re)connect: subscribe, then read, so an end in between is not missed.
        socket.on('connect', () => {
          socket.emit('subscribe', { task_id: taskId, after_seq: -1 }, () => void check().catch(reject));
        });
        // A refused token is the server's answer; a transport error means it is not there.
        socket.on('connect_error', (error: Error & { type?: string }) =>
          reject(error.type === 'TransportError' ? this.unreachable(error) : error),
        );
        if (timeoutS !== undefined)
          timer = setTimeout(() => reject(new WaitTimeoutError(taskId, timeoutS)), timeoutS * 1000);
        socket.once('disconnect', () => clearTimeout(timer));
      });
    } finally {
      socket.disconnect();
    }
    const record = await this.get(taskId);
    if (!record) throw new TaskNotFoundError(taskId);
    return record;
  }

  retry(taskId: string): Promise<RetryResult> {
    return this.taskAction<RetryResult>(taskId, 'retry');
  }

  cancel(taskId: string): Promise<CancelResult> {
    return this.taskAction<CancelResult>(taskId, 'cancel');
  }

  /** POST /api/tasks/:id/<action>; an unknown (or another user's) id is TaskNotFoundError. */
  private async taskAction<T>(taskId: string, action: 'retry' | 'cancel'): Promise<T> {
    try {
      return await this.call<T>('POST', `/api/tasks/${encodeURIComponent(taskId)}/${action}`);
    } catch (error) {
      if (error instanceof GatewayError && error.status === 404) throw new TaskNotFoundError(taskId);
      throw error;
    }
  }

  submitWorkflow(tree: unknown): Promise<WorkflowAccepted> {
    return this.call<WorkflowAccepted>('POST', '/api/workflows', tree);
  }

  async tree(taskId: string): Promise<{ root_id: string; tree: WireWorkflowTree }> {
    try {
      return await this.call('GET', `/api/tasks/${encodeURIComponent(taskId)}/tree`);
    } catch (error) {
      if (error instanceof GatewayError && error.status === 404) throw new TaskNotFoundError(taskId);
      throw error;
    }
  }

  async workers(): Promise<WorkerHeartbeat[]> {
    return (await this.call<{ workers: WorkerHeartbeat[] }>('GET', '/api/workers')).workers;
  }

  async close(): Promise<void> {}
}
