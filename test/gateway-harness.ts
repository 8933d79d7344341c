// Shared set-up for the gateway suites: a deployment (TestEnv) with a worker and one or more real
// gateways on ephemeral ports, tokens, socket.io clients that record what they receive, and fetch
// helpers. Everything a test opens is tracked and closed by `cleanup()`.
import { randomBytes } from 'node:crypto';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { AiecsConfig } from '../src/core/config.js';
import { silentLogger } from '../src/core/logger.js';
import type { AiecsApp } from '../src/engine/app.js';
import type { StoreKind } from '../src/engine/store.js';
import { mintToken } from '../src/gateway/auth.js';
import type { ProgressEvent, StreamEvent } from '../src/gateway/event-bridge.js';
import { Gateway } from '../src/gateway/server.js';
import { ServiceRegistry } from '../src/registry/registry.js';
import { registerBuiltinServices } from '../src/services/builtin.js';
import { TestEnv, testConfig, until } from './harness.js';

export { sleep, until } from './harness.js';
export type { ProgressEvent, StreamEvent };

/** The stores every realtime behaviour is checked on (tests that need two processes use Redis). */
export const GATEWAY_KINDS: StoreKind[] = ['embedded', 'redis'];
export const SECRET = 'gateway-suite-secret-0123456789abcdef';
export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'timed_out', 'cancelled']);

export const uid = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`;

export function token(user: string, options: { admin?: boolean; ttlS?: number } = {}): Promise<string> {
  return mintToken(SECRET, user, options);
}

/** A probe task body for POST /api/tasks. */
export function probe(
  taskName: string,
  input: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { task_name: taskName, mode: 'test', service: 'probe', input_data: input, ...extra };
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** Response bodies are whatever JSON the gateway sent; tests read fields from them freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

export interface ApiResponse<T = Loose> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

/** Every response body seen by this test file, to check that none carries a stack trace. */
export const responseBodies: string[] = [];

export async function request<T = Loose>(
  url: string,
  path: string,
  init: {
    method?: string;
    token?: string;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let body: string | undefined;
  if (init.raw !== undefined) body = init.raw;
  else if (init.body !== undefined) body = JSON.stringify(init.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${url}${path}`, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body });
  const text = await res.text();
  responseBodies.push(text);
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: tests read `text`
  }
  return { status: res.status, headers: res.headers, text, body: parsed as T };
}

/** Fetch helpers bound to one gateway and one token. */
export function api(url: string, tok?: string) {
  const call = <T = Loose>(
    path: string,
    init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ) => request<T>(url, path, { ...init, ...(tok ? { token: tok } : {}) });
  return {
    request: call,
    get: <T = Loose>(path: string) => call<T>(path),
    post: <T = Loose>(path: string, body?: unknown) => call<T>(path, { method: 'POST', body: body ?? {} }),
    submit: (task: Record<string, unknown>) => call('/api/tasks', { method: 'POST', body: task }),
    task: (id: string) => call(`/api/tasks/${encodeURIComponent(id)}`),
    cancel: (id: string) => call(`/api/tasks/${encodeURIComponent(id)}/cancel`, { method: 'POST', body: {} }),
    /** Polls the task until it is terminal; returns its record. */
    settled: (id: string, timeoutMs = 30_000) =>
      until<Loose>(
        async () => {
          const res = await call(`/api/tasks/${encodeURIComponent(id)}`);
          return res.status === 200 && TERMINAL.has(res.body.status) ? res.body : undefined;
        },
        timeoutMs,
        `task ${id} to finish`,
      ),
  };
}
export type Api = ReturnType<typeof api>;

// ---------------------------------------------------------------------------------------------
// socket.io

export type Received =
  { kind: 'progress'; payload: ProgressEvent } | { kind: 'stream'; payload: StreamEvent };

/** A socket.io client that records every event it gets, in arrival order. */
export class Client {
  readonly log: Received[] = [];
  readonly errors: Array<{ code?: string; message?: string }> = [];
  pongs = 0;
  disconnectReason: string | undefined;

  constructor(readonly socket: Socket) {
    socket.on('progress', (payload: ProgressEvent) => this.log.push({ kind: 'progress', payload }));
    socket.on('stream', (payload: StreamEvent) => this.log.push({ kind: 'stream', payload }));
    socket.on('error', (e: { code?: string; message?: string }) => this.errors.push(e));
    socket.on('pong', () => (this.pongs += 1));
    socket.on('disconnect', (reason) => (this.disconnectReason = reason));
  }

  get progress(): ProgressEvent[] {
    return this.log.flatMap((r) => (r.kind === 'progress' ? [r.payload] : []));
  }

  get streams(): StreamEvent[] {
    return this.log.flatMap((r) => (r.kind === 'stream' ? [r.payload] : []));
  }

  of(taskId: string): Received[] {
    return this.log.filter((r) => r.payload.task_id === taskId);
  }

  progressOf(taskId: string): ProgressEvent[] {
    return this.progress.filter((e) => e.task_id === taskId);
  }

  streamsOf(taskId: string): StreamEvent[] {
    return this.streams.filter((e) => e.task_id === taskId);
  }

  terminal(taskId: string): ProgressEvent | undefined {
    return this.progressOf(taskId).find((e) => TERMINAL.has(e.status));
  }

  taskIds(): Set<string> {
    return new Set(this.log.map((r) => r.payload.task_id));
  }

  /** Waits until every task has a terminal event here. */
  async waitTerminal(taskIds: string[], timeoutMs = 30_000): Promise<true> {
    try {
      return await until(
        async () => taskIds.every((id) => this.terminal(id) !== undefined),
        timeoutMs,
        `terminal events of ${taskIds.length} task(s)`,
      );
    } catch (error) {
      // Say what this client did see: a disconnect and the last event per task tell most failures apart.
      const last = taskIds.map((id) => `${id}: ${JSON.stringify(this.of(id).at(-1)?.payload ?? null)}`);
      const state = `connected=${this.socket.connected}, disconnect=${this.disconnectReason ?? 'none'}`;
      throw new Error(`${(error as Error).message} (${state}; last events: ${last.join('; ')})`, {
        cause: error,
      });
    }
  }

  emitWithAck<T = Loose>(event: string, ...args: unknown[]): Promise<T> {
    return this.socket.timeout(15_000).emitWithAck(event, ...args) as Promise<T>;
  }

  subscribe(taskId: string, afterSeq?: number) {
    return this.emitWithAck<{
      ok: boolean;
      replayed?: number;
      status?: string;
      error?: { code: string; message: string };
    }>('subscribe', afterSeq === undefined ? { task_id: taskId } : { task_id: taskId, after_seq: afterSeq });
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  close(): void {
    this.socket.disconnect();
    this.socket.io.engine?.close();
  }
}

type ClientOptions = Partial<ManagerOptions & SocketOptions>;

/** Opens a socket.io connection; resolves once connected (rejects on connect_error). */
export async function connectClient(url: string, tok: string, options: ClientOptions = {}): Promise<Client> {
  const socket = io(url, {
    auth: { token: tok },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 15_000,
    ...options,
  });
  const client = new Client(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) => reject(error));
    });
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}

/** Tries to connect; resolves with the connect_error instead of throwing. */
export async function tryConnect(
  url: string,
  tok: string,
  options: ClientOptions = {},
): Promise<{ client?: Client; error?: Error & { data?: unknown } }> {
  try {
    return { client: await connectClient(url, tok, options) };
  } catch (error) {
    return { error: error as Error & { data?: unknown } };
  }
}

// ---------------------------------------------------------------------------------------------
// Deployments

export interface GatewayHandle {
  gateway: Gateway;
  url: string;
  app: AiecsApp;
}

/**
 * A TestEnv with an in-process worker and a gateway. More gateways (each on its own app, so on its
 * own store connection for shared stores) and clients are opened through it and closed by cleanup.
 */
export class GatewayEnv {
  readonly gateways: GatewayHandle[] = [];
  private readonly clients: Client[] = [];
  /** What the gateways accept with no worker up, as `aiecs gateway` passes: the built-in services. */
  readonly registry = registerBuiltinServices(new ServiceRegistry());

  private constructor(readonly env: TestEnv) {}

  static async create(
    kind: StoreKind,
    overrides: Record<string, string> = {},
    options: { worker?: boolean } = {},
  ): Promise<GatewayEnv> {
    const env = await TestEnv.create(kind, { AIECS_JWT_SECRET: SECRET, ...overrides });
    const ge = new GatewayEnv(env);
    try {
      if (options.worker ?? true) await env.worker();
      await ge.addGateway();
    } catch (error) {
      await ge.cleanup();
      throw error;
    }
    return ge;
  }

  get kind(): StoreKind {
    return this.env.kind;
  }

  get main(): GatewayHandle {
    return this.gateways[0]!;
  }

  get url(): string {
    return this.main.url;
  }

  /** Another gateway on the same store and namespace; `overrides` change its settings only. */
  async addGateway(overrides?: Record<string, string>): Promise<GatewayHandle> {
    const config: AiecsConfig = overrides
      ? testConfig({ AIECS_JWT_SECRET: SECRET, ...overrides })
      : this.env.config;
    const app = this.env.app();
    const gateway = new Gateway({
      app,
      store: await app.store(),
      config,
      logger: silentLogger,
      registry: this.registry,
    });
    const handle = { gateway, app, url: '' };
    this.gateways.push(handle);
    handle.url = await gateway.listen(0, '127.0.0.1');
    return handle;
  }

  async client(user: string | { token: string }, options: ClientOptions & { url?: string } = {}) {
    const tok = typeof user === 'string' ? await token(user) : user.token;
    const { url, ...rest } = options;
    const client = await connectClient(url ?? this.url, tok, rest);
    this.clients.push(client);
    return client;
  }

  async api(user: string, options: { admin?: boolean; url?: string } = {}): Promise<Api> {
    return api(options.url ?? this.url, await token(user, { admin: options.admin ?? false }));
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients.splice(0)) c.close();
    await Promise.allSettled(this.gateways.splice(0).map((g) => g.gateway.close()));
    await this.env.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

const STATUS_RANK: Record<string, number> = {
  pending: 0,
  running: 1,
  completed: 2,
  failed: 2,
  timed_out: 2,
  cancelled: 2,
};

/** Why one task's progress events (in arrival order) break the contract, or undefined. */
export function progressProblem(events: ProgressEvent[]): string | undefined {
  if (events.length === 0) return 'no events';
  const statuses = events.map((e) => e.status).join(',');
  if (events[0]!.status !== 'pending') return `first status is not pending: ${statuses}`;
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1]!, events[i]!];
    if (!(b.seq > a.seq)) return `seq ${b.seq} after ${a.seq}`;
    if (STATUS_RANK[b.status]! < STATUS_RANK[a.status]!) return `status went back: ${statuses}`;
  }
  const terminals = events.filter((e) => TERMINAL.has(e.status));
  if (terminals.length !== 1) return `${terminals.length} terminal events: ${statuses}`;
  if (!TERMINAL.has(events[events.length - 1]!.status)) return `terminal event is not last: ${statuses}`;
  return undefined;
}

/** Whether numbers are strictly increasing. */
export function increasing(values: number[]): boolean {
  return values.every((v, i) => i === 0 || v > values[i - 1]!);
}

export const seqKey = (r: Received) => `${r.payload.task_id}/${r.kind}/${r.payload.seq}`;

export function expectedTokens(n: number): string {
  return Array.from({ length: n }, (_, i) => `t${i} `).join('');
}
