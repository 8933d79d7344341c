/**
 * `aiecs up`: the whole engine in one process: one store, a worker, an app and the gateway
 * sharing it. With the embedded store this is the only process that may open the data
 * directory, so everything that needs the store lives here; other commands reach it over HTTP.
 */
import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import type { AiecsConfig, WorkerSettings } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { createLogger } from '../core/logger.js';
import { enableMetrics } from '../core/metrics.js';
import type { AiecsApp } from '../engine/app.js';
import type { Store } from '../engine/store.js';
import { configuredStoreOptions, openStore } from '../engine/open-store.js';
import { parseBrokerUrl } from '../engine/store.js';
import type { Gateway } from '../gateway/server.js';
import { ServiceRegistry } from '../registry/registry.js';
import { registerBuiltinServices } from '../services/builtin.js';
import { AiecsWorker } from '../worker/worker.js';
import { localSecret, writeGatewayFile } from './local-gateway.js';
import { checkPort, portError } from './port.js';
import type { GlobalOptions, WorkerFlags } from './options.js';
import { cliConfig, describeQueues, workerOverrides } from './options.js';
import { untilShutdown } from './worker-command.js';
import { runHistory, type RunningHistory } from '../engine/history/run-history.js';

export interface UpOptions {
  config: AiecsConfig;
  logger: Logger;
  /** Redis key prefix / PostgreSQL schema. */
  namespace?: string;
  /** Overrides of the config's worker settings (the worker flags). */
  worker?: Partial<WorkerSettings>;
  /** Where the gateway listens (default: the config's PORT and AIECS_HOST); false: no gateway. */
  gateway?: { port?: number; host?: string } | false;
}

export interface UpHandle {
  app: AiecsApp;
  worker: AiecsWorker;
  store: Store;
  /** The task history's consumer (and, when off, what the start line says). */
  history: RunningHistory;
  gateway?: Gateway;
  /** The gateway's URL, when it runs. */
  url?: string;
  /** A token for the data directory's secret (when the secret is ours, not a JWKS). */
  token?: string;
  /** The same, with admin: the dashboard link's. */
  adminToken?: string;
  /** Graceful stop: running tasks get `deadlineS` (default: the config's) to finish. */
  close(deadlineS?: number): Promise<void>;
}

/**
 * Opens the store once and starts a worker and an app on it. The caller registers services
 * (the async pool runs them in this process) and owns the returned handle.
 */
export async function startUp(options: UpOptions): Promise<UpHandle> {
  const { config, logger } = options;
  const namespace = options.namespace !== undefined ? { namespace: options.namespace } : {};
  const listenAt =
    options.gateway === false
      ? undefined
      : { port: options.gateway?.port ?? config.port, host: options.gateway?.host ?? config.host };
  if (listenAt) await checkPort(listenAt.port, listenAt.host, 'another aiecs up?');
  const store = await openStore(
    config.brokerUrl,
    configuredStoreOptions(config, { logger, role: 'worker', ...namespace }),
  );
  let worker: AiecsWorker | undefined;
  let app: AiecsApp | undefined;
  let gateway: Gateway | undefined;
  let history: RunningHistory | undefined;
  let url: string | undefined;
  let token: string | undefined;
  let adminToken: string | undefined;
  let forgetGateway: (() => void) | undefined;
  try {
    // The gateway serves /metrics on its own port (AIECS_METRICS_PORT is for a worker alone), and
    // counting starts before the worker takes its first task.
    if (listenAt) enableMetrics();
    worker = new AiecsWorker({
      config,
      logger,
      store,
      registry: registerBuiltinServices(new ServiceRegistry()),
      worker: { ...options.worker, ...(listenAt ? { metricsPort: undefined } : {}) },
    });
    await worker.start();
    // Off the tasks' path: a history database that is down delays only the history.
    history = await runHistory(config, store, logger);
    // Loaded once the worker is up: the app's submit path (schemas, workflows, templates) is no
    // part of the worker's, so it does not delay the worker's start.
    const { createApp } = await import('../engine/app.js');
    const { TemplateRegistry } = await import('../core/template-registry.js');
    // The templates the worker's services modules declared, then the file's (the app loads it).
    const templates = new TemplateRegistry().registerAll(
      worker.registry.templates,
      'templates of --services',
    );
    app = createApp({ config, logger, store, templates, ...namespace });

    if (listenAt) {
      // With no secret or JWKS configured, the data directory keeps one, so tokens survive restarts.
      const secret = config.auth.jwksUrl ? config.auth.jwtSecret : localSecret(config, true);
      const gatewayConfig: AiecsConfig = {
        ...config,
        auth: { ...config.auth, ...(secret ? { jwtSecret: secret } : {}) },
      };
      // The gateway's dependencies (fastify, socket.io, jose) load only when it runs.
      const [{ Gateway }, { mintOptions, mintToken }] = await Promise.all([
        import('../gateway/server.js'),
        import('../gateway/auth.js'),
      ]);
      gateway = new Gateway({ app, store, config: gatewayConfig, logger, registry: worker.registry });
      const { port, host } = listenAt;
      // Taken since the check above: still one line.
      url = await gateway.listen(port, host).catch((error: unknown) => {
        throw portError(error, port, host, 'another aiecs up?');
      });
      forgetGateway = writeGatewayFile(config, { url, pid: process.pid });
      if (secret) {
        const options = { ...mintOptions(config.auth), ttlS: upTokenTtlS(config) };
        token = await mintToken(secret, 'you', options);
        adminToken = await mintToken(secret, 'you', { ...options, admin: true });
      }
    }
  } catch (error) {
    forgetGateway?.();
    await gateway?.close().catch(() => undefined);
    await worker?.close(0).catch(() => undefined);
    await history?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }

  const started = { app, worker, history };
  let closing: Promise<void> | undefined;
  return {
    app,
    worker,
    store,
    history,
    ...(gateway ? { gateway } : {}),
    ...(url ? { url } : {}),
    ...(token ? { token } : {}),
    ...(adminToken ? { adminToken } : {}),
    close(deadlineS?: number) {
      closing ??= (async () => {
        // No new work while running tasks finish: the gateway goes first.
        forgetGateway?.();
        await gateway?.close();
        await started.worker.close(deadlineS);
        await started.history.close();
        await started.app.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/** The printed token's lifetime: a day, or AIECS_JWT_MAX_TTL when that is shorter. */
function upTokenTtlS(config: AiecsConfig): number {
  return Math.min(24 * 3600, config.auth.maxTtlS);
}

/** Flags of `aiecs up`: a worker's, plus where the gateway listens. */
export type UpFlags = WorkerFlags & { port?: number; host?: string; gateway?: boolean; templates?: string };

/**
 * With the embedded store, V8 compiles PGlite's WebAssembly with its baseline compiler only
 * (Liftoff), unless AIECS_EMBEDDED_OPTIMIZE=on. Measured on an idle `aiecs up` after one task
 * (tree RSS after 60 s): 215-230 MB with V8's optimizing tier, 159-167 MB without; V8's
 * --no-wasm-tier-up alone kept 218 MB. The price is PGlite's speed under load: 4,000 tasks through
 * the gateway ran 0-25 % slower (median 8 %, paired runs on a shared machine). It is set here, in
 * the command that owns the process, not in the store: a library user's process keeps V8's default.
 * Set before the store opens: V8 reads it when PGlite's module is compiled.
 */
function lightenEmbeddedStore(config: AiecsConfig): void {
  if (config.embeddedOptimize || parseBrokerUrl(config.brokerUrl).kind !== 'embedded') return;
  setFlagsFromString('--liftoff-only');
}

/** The `aiecs up` action. */
export async function upAction(flags: UpFlags, cmd: Command): Promise<void> {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const config = cliConfig(globals);
  if (flags.templates !== undefined) config.templatesFile = flags.templates;
  lightenEmbeddedStore(config);
  const logger = createLogger(config.logLevel);
  let starting: Promise<UpHandle> | undefined = undefined;
  const stopped = untilShutdown(async () => {
    const up = await starting?.catch(() => undefined);
    await up?.close();
  }, logger);
  starting = startUp({
    config,
    logger,
    gateway:
      flags.gateway === false
        ? false
        : {
            ...(flags.port !== undefined ? { port: flags.port } : {}),
            ...(flags.host !== undefined ? { host: flags.host } : {}),
          },
    worker: workerOverrides(flags, config.worker),
    ...(globals.namespace !== undefined ? { namespace: globals.namespace } : {}),
  });
  const up = await starting;
  console.log(
    `aiecs up: store ${up.store.displayUrl}, worker ${up.worker.id}, queues ${describeQueues(up.worker.settings)}` +
      (up.url ? `, gateway ${up.url}` : '') +
      (up.worker.metricsUrl ? `, metrics ${up.worker.metricsUrl}` : ''),
  );
  if (up.history.offLine) console.log(`  history: ${up.history.offLine}`);
  if (up.url) {
    const { authWarning, describeTtl } = await import('../gateway/auth.js');
    const warning = authWarning(config.auth);
    if (warning) console.error(`aiecs up: ${warning}`);
    // The fragment never reaches the server (nor its logs); the page moves it to sessionStorage.
    console.log(`  dashboard: ${up.url}/dashboard/${up.adminToken ? `#token=${up.adminToken}` : ''}`);
    if (up.token) {
      const ttl = describeTtl(upTokenTtlS(config));
      console.log(`  try:   curl -H "Authorization: Bearer ${up.token}" ${up.url}/api/services`);
      console.log(`  token: ${up.token}  (user "you", ${ttl}; mint others with \`aiecs token --user U\`)`);
    }
  }
  // A signal, or `aiecs control shutdown` stopping the worker: then the rest stops too.
  await Promise.race([stopped, up.worker.whenClosed().then(() => up.close())]);
}
