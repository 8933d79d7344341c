/**
 * `aiecs worker --celery`: the worker also runs the Celery bridge (src/worker/celery), taking
 * Celery messages off the kombu Redis lists of its broker and submitting them as aiecs tasks on the
 * worker's store. The broker: `--celery-broker`, else the store's URL when the store is Redis,
 * else CELERY_BROKER_URL.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { AiecsConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { AiecsApp } from '../engine/app.js';
import { parseBrokerUrl, redactUrl, type Store } from '../engine/store.js';
import type { CeleryBridge } from '../worker/celery/celery-bridge.js';
import {
  addCeleryResultFlags,
  celeryResultTarget,
  startCeleryRelay,
  type CeleryResultFlags,
} from './celery-relay.js';

export interface CeleryFlags extends CeleryResultFlags {
  celery?: boolean;
  celeryBroker?: string;
  celeryQueues?: string[];
  celeryVisibilityTimeout?: number;
}

function queueList(raw: string): string[] {
  const queues = raw
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  if (queues.length === 0) throw new InvalidArgumentError('Expected queue names, comma-separated.');
  return queues;
}

function secondsFlag(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError('Expected seconds > 0.');
  return value;
}

export function addCeleryFlags(command: Command): Command {
  return addCeleryResultFlags(command)
    .option('--celery', 'also take Celery messages (kombu Redis layout) and run them as aiecs tasks')
    .option(
      '--celery-broker <url>',
      "the Celery broker (redis://…); default: the store's URL when it is Redis, else CELERY_BROKER_URL",
    )
    .option(
      '--celery-queues <list>',
      'Celery queues to take from, comma-separated (default: AIECS_CELERY_QUEUES, fast_tasks,heavy_tasks,celery)',
      queueList,
    )
    .option(
      '--celery-visibility-timeout <s>',
      "seconds a taken message may stay unacked before it goes back to its queue (kombu's visibility_timeout; default: AIECS_CELERY_VISIBILITY_TIMEOUT, 3600)",
      secondsFlag,
    );
}

/** The Celery broker URL the flags and config name; a ConfigError with a hint when none. */
export function celeryBrokerUrl(flags: CeleryFlags, config: AiecsConfig): string {
  const url =
    flags.celeryBroker ??
    (parseBrokerUrl(config.brokerUrl).kind === 'redis' ? config.brokerUrl : config.celery.brokerUrl);
  if (url === undefined)
    throw new ConfigError(
      'aiecs worker --celery needs a Redis broker: the store is not Redis and CELERY_BROKER_URL is not set; pass --celery-broker redis://HOST:PORT/DB (the URL your Celery producers use)',
    );
  if (parseBrokerUrl(url).kind !== 'redis')
    throw new ConfigError(
      `Celery broker ${JSON.stringify(redactUrl(url))} is not Redis: the bridge reads kombu's Redis layout; pass --celery-broker redis://…`,
    );
  return url;
}

/** A started bridge and how to stop it; undefined without `--celery`. */
export async function startCeleryBridge(
  flags: CeleryFlags,
  config: AiecsConfig,
  store: Store,
  logger: Logger,
  namespace: string | undefined,
): Promise<{ bridge: CeleryBridge; line: string; close(): Promise<void> } | undefined> {
  if (!flags.celery) return undefined;
  const brokerUrl = celeryBrokerUrl(flags, config);
  // Loaded only with --celery: every other worker would carry the bridge, its results relay and
  // the history's entry builder they share (about 1.1-1.4 MB of heap after GC) for nothing.
  const { CeleryBridge } = await import('../worker/celery/celery-bridge.js');
  const queues = flags.celeryQueues ?? config.celery.queues;
  const visibilityTimeoutS = flags.celeryVisibilityTimeout ?? config.celery.visibilityTimeoutS;
  const app = new AiecsApp({ config, logger, store, ...(namespace !== undefined ? { namespace } : {}) });
  const bridge = new CeleryBridge({
    app,
    logger,
    brokerUrl,
    queues,
    visibilityTimeoutS,
    results: celeryResultTarget(flags, config, brokerUrl),
  });
  try {
    await bridge.start();
  } catch (error) {
    await bridge.close().catch(() => undefined);
    await app.close().catch(() => undefined);
    throw error;
  }
  // The results relay writes the Celery states of what the bridge submits (and of what ran before).
  const { relay, line: resultsLine } = await startCeleryRelay(flags, config, store, logger, brokerUrl);
  return {
    bridge,
    line:
      `celery: ${redactUrl(brokerUrl)} queues ${queues.join(',')} (visibility timeout ${visibilityTimeoutS} s)` +
      `\n  ${resultsLine}`,
    close: async () => {
      await bridge.close();
      await app.close();
      await relay.close();
    },
  };
}
