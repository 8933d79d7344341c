/**
 * `aiecs up`: the whole engine in one process: one store, a worker and an app sharing it (and,
 * later, the HTTP gateway). With the embedded store this is the only process that may open the
 * data directory, so everything that needs the store lives here.
 */
import type { Command } from 'commander';
import type { AiecsConfig, WorkerSettings } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { createLogger } from '../core/logger.js';
import type { AiecsApp } from '../engine/app.js';
import { createApp } from '../engine/app.js';
import type { Store } from '../engine/store.js';
import { openStore } from '../engine/store.js';
import { AiecsWorker } from '../worker/worker.js';
import type { GlobalOptions, WorkerFlags } from './options.js';
import { addWorkerFlags, cliConfig, describeQueues, workerOverrides } from './options.js';
import { registerCliServices, untilShutdown } from './worker-command.js';

export interface UpOptions {
  config: AiecsConfig;
  logger: Logger;
  /** Redis key prefix / PostgreSQL schema. */
  namespace?: string;
  /** Overrides of the config's worker settings (the worker flags). */
  worker?: Partial<WorkerSettings>;
}

export interface UpHandle {
  app: AiecsApp;
  worker: AiecsWorker;
  store: Store;
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
  const store = await openStore(config.brokerUrl, { logger, role: 'worker', ...namespace });
  let worker: AiecsWorker | undefined;
  let app: AiecsApp | undefined;
  try {
    worker = new AiecsWorker({
      config,
      logger,
      store,
      ...(options.worker ? { worker: options.worker } : {}),
    });
    await worker.start();
    app = createApp({ config, logger, store, ...namespace });

    // ---------------------------------------------------------------------------------------
    // GATEWAY HOOK: start the HTTP/WebSocket gateway here, on this `app` and `store` (one
    // process owns the embedded store, so the gateway must live in this one). Keep its close
    // function and call it first in close() below, before the worker drains, so no new work
    // arrives while running tasks finish. Add it to UpHandle so `aiecs up` can print its
    // address in the ready line.
    // ---------------------------------------------------------------------------------------
  } catch (error) {
    await worker?.close(0).catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }

  const started = { app, worker };
  let closing: Promise<void> | undefined;
  return {
    app,
    worker,
    store,
    close(deadlineS?: number) {
      closing ??= (async () => {
        // GATEWAY HOOK: close the gateway here, first.
        await started.worker.close(deadlineS);
        await started.app.close();
        await store.close();
      })();
      return closing;
    },
  };
}

export function registerUpCommand(program: Command): void {
  const command = program
    .command('up')
    .description('run the whole engine in this process (store, worker, app) until SIGTERM/SIGINT');
  addWorkerFlags(command).action(async (flags: WorkerFlags, cmd: Command) => {
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const config = cliConfig(globals);
    const logger = createLogger(config.logLevel);
    registerCliServices();
    let starting: Promise<UpHandle> | undefined = undefined;
    const stopped = untilShutdown(async () => {
      const up = await starting?.catch(() => undefined);
      await up?.close();
    }, logger);
    starting = startUp({
      config,
      logger,
      worker: workerOverrides(flags, config.worker),
      ...(globals.namespace !== undefined ? { namespace: globals.namespace } : {}),
    });
    const up = await starting;
    console.log(
      `aiecs up: store ${up.store.displayUrl}, worker ${up.worker.id}, queues ${describeQueues(up.worker.settings)}`,
    );
    await stopped;
  });
}
