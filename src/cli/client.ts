/**
 * How the client commands (submit, status, cancel, workers) reach the engine: the store itself,
 * or, when a running `aiecs up` owns the embedded store, that process's gateway over HTTP.
 */
import type { AiecsConfig } from '../core/config.js';
import { AiecsError, TaskNotFoundError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createLogger } from '../core/logger.js';
import type { QueueKind, TaskRecord } from '../core/task.js';
import type { WireSubmitOptions } from '../core/submission.js';
import { FAST_QUEUE, TaskStatus as Status } from '../core/task.js';
import type { AiecsApp, CancelResult, WireSubmission } from '../engine/app.js';
import type { RetryResult } from '../engine/task-retry.js';
import type { Store, WorkerHeartbeat } from '../engine/store.js';
import { parseBrokerUrl } from '../engine/store.js';
import { findGateway, localSecret, refusedTokenMessage } from './local-gateway.js';
import type { GlobalOptions } from './options.js';
import { clientLogLevel, cliConfig } from './options.js';
import type { WireWorkflowTree } from '../gateway/workflow-schema.js';
import type { SubmitResult, TaskClient, WorkflowAccepted } from './task-client.js';

/** The embedded store is held by another process (a running `aiecs up`). */
export class StoreBusyError extends AiecsError {
  override readonly code = 'STORE_BUSY';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `the embedded store ${dir} is owned by the running \`aiecs up\`` +
        `${pid > 0 ? ` (pid ${pid})` : ''}, and its gateway could not be found in that directory; ` +
        'wait for it to finish starting, or use a shared store (--broker redis://… or postgres://…)',
      { dir, pid },
    );
  }
}

/** A terminal record carried by the errors `handle.get()` rejects with (see settleRecord). */
function recordOf(error: unknown): TaskRecord | undefined {
  const record = (error as { record?: unknown } | null)?.record;
  return typeof record === 'object' && record !== null && 'task_id' in record
    ? (record as TaskRecord)
    : undefined;
}

/**
 * Refuses a task no worker on the store could run, as the gateway does (422 there), so the CLI
 * says so up front on every store instead of queueing a task that can only fail.
 */
async function checkService(app: AiecsApp, request: unknown): Promise<void> {
  const { mode, service, task_name: taskName } = request as Record<string, unknown>;
  // Malformed requests are submitWire's to refuse, naming the field.
  if (typeof mode !== 'string' || typeof service !== 'string' || typeof taskName !== 'string') return;
  const check = await serviceCheck(app);
  await check(mode, service, taskName);
}

/** The catalog's check: the store's live workers' services and the built-in ones. */
async function serviceCheck(
  app: AiecsApp,
): Promise<(mode: string, service: string, taskName: string) => Promise<void>> {
  const [{ registerBuiltinServices }, { ServiceCatalog }, { ServiceRegistry }] = await Promise.all([
    import('../services/builtin.js'),
    import('../registry/service-catalog.js'),
    import('../registry/registry.js'),
  ]);
  // Every `aiecs worker` runs the built-in services; they load lazily, so registering them is cheap.
  const builtins = registerBuiltinServices(new ServiceRegistry());
  const catalog = new ServiceCatalog(await app.store(), builtins);
  return (mode, service, taskName) => catalog.check(mode, service, taskName);
}

/** An app on the configured store, opened now, so a busy embedded store is reported before any work. */
export async function openApp(options: {
  config: AiecsConfig;
  namespace?: string;
  logger: Logger;
}): Promise<{ app: AiecsApp; store: Store }> {
  // Loaded here, not at the top: the HTTP path never uses the app (its engine, store drivers, schemas).
  const { AiecsApp } = await import('../engine/app.js');
  const app = new AiecsApp({
    config: options.config,
    logger: options.logger,
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
  });
  try {
    return { app, store: await app.store() };
  } catch (error) {
    await app.close().catch(() => undefined);
    // By code, not class: importing the embedded store here would load PGlite for every command.
    const locked = error as { code?: unknown; dir?: unknown; pid?: unknown };
    if (locked.code === 'STORE_LOCKED') throw new StoreBusyError(String(locked.dir), Number(locked.pid));
    throw error;
  }
}

/** TaskClient over an AiecsApp on the store (embedded, PostgreSQL or Redis). */
export class StoreClient implements TaskClient {
  readonly cannotWait: string | undefined;

  private constructor(
    private readonly app: AiecsApp,
    kind: string,
  ) {
    // This process holds the embedded store's lock, so neither `aiecs up` nor a worker can start.
    this.cannotWait =
      kind === 'embedded'
        ? 'no worker can run tasks while this command holds the embedded store; ' +
          'submit without --wait and start `aiecs up`, or use --broker redis://… or postgres://…'
        : undefined;
  }

  /** Opens the store now, so a busy embedded store is reported before any work is done. */
  static async open(options: {
    config: AiecsConfig;
    namespace?: string;
    logger: Logger;
  }): Promise<StoreClient> {
    const { app, store } = await openApp(options);
    return new StoreClient(app, store.kind);
  }

  async submit(
    queue: QueueKind | undefined,
    request: unknown,
    options: WireSubmitOptions,
    template?: string,
  ): Promise<SubmitResult> {
    let item: WireSubmission;
    if (template === undefined) {
      await checkService(this.app, request);
      item = { queue: queue ?? FAST_QUEUE, request, options };
    } else {
      // The templates are this process's: AIECS_TEMPLATES_FILE (a running `aiecs up` has its own).
      const found = this.app.templates.get(template);
      await checkService(this.app, found);
      item = { template: found.ref, request, options, ...(queue ? { queue } : {}) };
    }
    const handle = await this.app.submitWire(item);
    // A fast worker may already have picked it up; the record says where it is now.
    const record = await this.app.getTask(handle.id, handle.queue).catch(() => undefined);
    return { task_id: handle.id, queue: handle.queue, status: record?.status ?? Status.PENDING };
  }

  get(taskId: string): Promise<TaskRecord | undefined> {
    return this.app.getTask(taskId);
  }

  async wait(taskId: string, queue: QueueKind, timeoutS?: number): Promise<TaskRecord> {
    try {
      return await this.app.handle(taskId, queue).get(timeoutS === undefined ? {} : { timeout: timeoutS });
    } catch (error) {
      // get() rejects for failed, timed out and cancelled tasks; the CLI prints those records too.
      const record = recordOf(error);
      if (record) return record;
      throw error;
    }
  }

  cancel(taskId: string): Promise<CancelResult> {
    return this.app.cancel(taskId);
  }

  retry(taskId: string): Promise<RetryResult> {
    return this.app.retry(taskId);
  }

  workers(): Promise<WorkerHeartbeat[]> {
    return this.app.listWorkers();
  }

  async submitWorkflow(tree: unknown): Promise<WorkflowAccepted> {
    const wire = await import('../gateway/workflow-schema.js');
    // As over HTTP to a running `aiecs up`, whose token is the admin 'cli': tasks may name any owner.
    const checked = wire.checkWorkflow(
      tree,
      { userId: 'cli', admin: true },
      wire.workflowLimits(this.app.config),
    );
    await wire.checkServices(checked.leaves, await serviceCheck(this.app));
    const handle = await this.app.submitWorkflow(checked.tree);
    return { root_id: handle.id, status: Status.PENDING, tree: wire.wireIds(handle.children) };
  }

  async tree(taskId: string): Promise<{ root_id: string; tree: WireWorkflowTree }> {
    const record = await this.app.getTask(taskId);
    if (!record) throw new TaskNotFoundError(taskId);
    const wire = await import('../gateway/workflow-schema.js');
    const read = await wire.taskTree(this.app, record);
    return { root_id: read.root_id, tree: wire.wireTree(read.tree, (r) => r) };
  }

  close(): Promise<void> {
    return this.app.close();
  }
}

/**
 * The client for the configured store: over HTTP when a running `aiecs up` owns the embedded
 * store (it left its address and secret in the data directory), else on the store directly.
 */
export async function openClient(options: {
  config: AiecsConfig;
  namespace?: string;
  logger: Logger;
}): Promise<TaskClient> {
  const running = await runningGateway(options.config);
  if (running) {
    // Loaded only here: socket.io-client is not needed on the direct path.
    const { HttpClient } = await import('./http-client.js');
    return new HttpClient(running.url, running.token, running.refusedToken, running.timeoutMs);
  }
  return StoreClient.open(options);
}

/**
 * The running `aiecs up` that owns the embedded store (it left its address and secret in the data
 * directory), with an admin token for it; undefined on shared stores or when none runs.
 */
export async function runningGateway(
  config: AiecsConfig,
): Promise<{ url: string; token: string; refusedToken: string; timeoutMs: number } | undefined> {
  if (parseBrokerUrl(config.brokerUrl).kind !== 'embedded') return undefined;
  const running = findGateway(config);
  const secret = localSecret(config, false);
  if (!running || !secret) return undefined;
  // An admin token: this user can read the data directory, so they own the deployment.
  // Loaded only here: jose is not needed on the direct path.
  const { mintOptions, mintToken } = await import('../gateway/auth.js');
  const auth = config.auth;
  const ttlS = Math.min(600, auth.maxTtlS);
  const token = await mintToken(secret, 'cli', { ...mintOptions(auth), admin: true, ttlS });
  return {
    url: running.url,
    token,
    refusedToken: refusedTokenMessage(config, running.url),
    // A request may take the gateway's store timeout, and the way there and back.
    timeoutMs: 2 * config.storeTimeoutMs,
  };
}

/** Opens the client for a command's global flags, runs `fn`, and always closes it. */
export async function withClient<T>(
  globals: GlobalOptions,
  fn: (client: TaskClient) => Promise<T>,
): Promise<T> {
  const config = cliConfig(globals);
  const client = await openClient({
    config,
    logger: createLogger(clientLogLevel(config)),
    ...(globals.namespace !== undefined ? { namespace: globals.namespace } : {}),
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
