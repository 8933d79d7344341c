/** `aiecs worker`: consume the queues until SIGTERM/SIGINT, then drain gracefully. */
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger } from '../core/logger.js';
import { createLogger } from '../core/logger.js';
import { parseBrokerUrl, redactUrl } from '../engine/store.js';
import { ServiceRegistry } from '../registry/registry.js';
import { registerBuiltinServices } from '../services/builtin.js';
import { AiecsWorker } from '../worker/worker.js';
import { configuredStoreOptions, openStore } from '../engine/open-store.js';
import type { Store } from '../engine/store.js';
import { runHistory, type RunningHistory } from '../engine/history/run-history.js';
import type { GlobalOptions, WorkerFlags } from './options.js';
import { addCeleryFlags, celeryBrokerUrl, startCeleryBridge, type CeleryFlags } from './celery-worker.js';
import {
  EXIT_INTERRUPTED,
  addWorkerFlags,
  cliConfig,
  describeQueues,
  intFlag,
  workerOverrides,
} from './options.js';

/** The broker URL as the ready line shows it: password hidden, embedded path absolute. */
export function displayBroker(url: string, namespace?: string): string {
  const parsed = parseBrokerUrl(url);
  const shown = parsed.kind === 'embedded' ? `embedded:${resolve(parsed.dir)}` : redactUrl(url);
  return namespace && parsed.kind !== 'embedded' ? `${shown} (namespace ${namespace})` : shown;
}

/**
 * Resolves once `stop` has finished after the first SIGTERM/SIGINT. A second signal means
 * "now": exit 130 without waiting for running tasks (they return to the queue when their locks
 * expire, so nothing is lost).
 */
export function untilShutdown(stop: () => Promise<void>, logger: Logger): Promise<void> {
  return new Promise<void>((resolveDone, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(EXIT_INTERRUPTED);
      }
      stopping = true;
      logger.info({ signal }, 'stopping: draining running tasks (send the signal again to exit now)');
      stop().then(resolveDone, reject);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** A port number, 0 to 65535. */
function portFlag(raw: string): number {
  const port = intFlag(0)(raw);
  if (port > 65535) throw new InvalidArgumentError('Expected a port number, 0 to 65535.');
  return port;
}

export function registerWorkerCommand(program: Command): void {
  const command = program
    .command('worker')
    .description('run a worker that consumes the fast and heavy queues until SIGTERM/SIGINT');
  addWorkerFlags(command).option(
    '--metrics-port <port>',
    'serve Prometheus metrics and /healthz on this port, 0 for any free one (default: AIECS_METRICS_PORT, else off)',
    portFlag,
  );
  addCeleryFlags(command);
  command.action(async (flags: WorkerFlags & CeleryFlags & { metricsPort?: number }, cmd: Command) => {
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const config = cliConfig(globals);
    const logger = createLogger(config.logLevel);
    // No Celery broker to read: say so before anything starts.
    if (flags.celery) celeryBrokerUrl(flags, config);
    const namespace = globals.namespace !== undefined ? { namespace: globals.namespace } : {};
    // Opened here, not by the worker: the task history's consumer shares it.
    const store: Store = await openStore(
      config.brokerUrl,
      configuredStoreOptions(config, { logger, role: 'worker', ...namespace }),
    );
    let history: RunningHistory | undefined;
    let celery: Awaited<ReturnType<typeof startCeleryBridge>>;
    const worker = new AiecsWorker({
      config,
      logger,
      store,
      registry: registerBuiltinServices(new ServiceRegistry()),
      worker: {
        ...workerOverrides(flags, config.worker),
        ...(flags.metricsPort !== undefined ? { metricsPort: flags.metricsPort } : {}),
      },
      ...(globals.namespace !== undefined ? { namespace: globals.namespace } : {}),
    });
    // A signal during start-up stops the worker once it is up, not half-way through starting.
    let starting: Promise<unknown> = Promise.resolve();
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        // The bridge first: the messages it holds are submitted and acked before the store closes.
        await celery?.close();
        await worker.close();
        await history?.close();
        await store.close();
      })());
    const stopped = untilShutdown(async () => {
      await starting.catch(() => undefined);
      await stop();
    }, logger);
    starting = (async () => {
      try {
        await worker.start();
        history = await runHistory(config, store, logger);
        celery = await startCeleryBridge(flags, config, store, logger, globals.namespace);
      } catch (error) {
        await stop().catch(() => undefined);
        throw error;
      }
    })();
    await starting;
    console.log(
      `aiecs worker: store ${displayBroker(config.brokerUrl, globals.namespace)}, worker ${worker.id}, ` +
        `queues ${describeQueues(worker.settings)}` +
        (worker.metricsUrl ? `, metrics ${worker.metricsUrl}` : ''),
    );
    if (history?.offLine) console.log(`  history: ${history.offLine}`);
    if (celery) console.log(`  ${celery.line}`);
    // A signal, or `aiecs control shutdown` from anywhere.
    await Promise.race([stopped, worker.whenClosed().then(stop)]);
  });
}
