/**
 * The flags and start of the Celery results relay (src/worker/celery/celery-results.ts) in
 * `aiecs worker --celery`: where Celery's results go (`--celery-result-backend`,
 * CELERY_RESULT_BACKEND, else the Celery broker, as Celery apps configured with one URL use),
 * how long they are kept (`--celery-result-expires`, Celery's result_expires) and whether failures
 * raise in Python (`--celery-raise-failures`).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { AiecsConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { parseBrokerUrl, redactUrl, type Store } from '../engine/store.js';
import type { CeleryResults } from '../worker/celery/celery-results.js';

export interface CeleryResultFlags {
  celeryResultBackend?: string;
  celeryResultExpires?: number;
  celeryRaiseFailures?: boolean;
}

function nonNegativeSeconds(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError('Expected whole seconds >= 0.');
  return value;
}

export function addCeleryResultFlags(command: Command): Command {
  return command
    .option(
      '--celery-result-backend <url>',
      "Celery's result backend (redis://…) where task states and results go (default: CELERY_RESULT_BACKEND, else the Celery broker)",
    )
    .option(
      '--celery-result-expires <s>',
      "seconds a Celery result is kept, Celery's result_expires (default: AIECS_CELERY_RESULT_EXPIRES, 86400; 0 keeps it)",
      nonNegativeSeconds,
    )
    .option(
      '--celery-raise-failures',
      "failed, timed-out and cancelled tasks as Celery FAILURE / REVOKED, so .get() raises in Python (default: AIECS_CELERY_RAISE_FAILURES; off: the original worker's {status, task, error} under SUCCESS)",
    );
}

/** Where and for how long Celery results are kept (the bridge's refusals go there too). */
export function celeryResultTarget(
  flags: CeleryResultFlags,
  config: AiecsConfig,
  brokerUrl: string,
): { url: string; expiresS: number } {
  const url = flags.celeryResultBackend ?? config.celery.resultBackend ?? brokerUrl;
  if (parseBrokerUrl(url).kind !== 'redis')
    throw new ConfigError(
      `Celery result backend ${JSON.stringify(redactUrl(url))} is not Redis: pass --celery-result-backend redis://…`,
    );
  return { url, expiresS: flags.celeryResultExpires ?? config.celery.resultExpiresS };
}

/** Starts the relay; `line` says where results go, for the worker's start lines. */
export async function startCeleryRelay(
  flags: CeleryResultFlags,
  config: AiecsConfig,
  store: Store,
  logger: Logger,
  brokerUrl: string,
): Promise<{ relay: CeleryResults; line: string }> {
  const target = celeryResultTarget(flags, config, brokerUrl);
  // Loaded only when a worker relays Celery results, as the bridge is (celery-worker.ts).
  const { startCeleryResults } = await import('../worker/celery/celery-results.js');
  const raiseFailures = flags.celeryRaiseFailures ?? config.celery.raiseFailures;
  const relay = startCeleryResults({
    store,
    logger: logger.child({ component: 'celery-results' }),
    backendUrl: target.url,
    expiresS: target.expiresS,
    raiseFailures,
  });
  const kept = target.expiresS > 0 ? `kept ${target.expiresS} s` : 'kept';
  const failures = raiseFailures ? ', failures raise' : '';
  return { relay, line: `celery results: ${redactUrl(target.url)} (${kept}${failures})` };
}
