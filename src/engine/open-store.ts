import type { AiecsConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import type { ResolvedStoreOptions, Store, StoreOptions } from './store.js';
import { parseBrokerUrl } from './store.js';

/**
 * Opens the store behind `url`. Each kind is loaded only when used (PGlite, pg and ioredis are
 * heavy), and in its own module so the store interface does not depend on its implementations.
 */
export async function openStore(url: string, input: StoreOptions = {}): Promise<Store> {
  const options: ResolvedStoreOptions = { ...input, logger: input.logger ?? createLogger() };
  const parsed = parseBrokerUrl(url);
  switch (parsed.kind) {
    case 'redis': {
      const { openRedisStore } = await import('./store-redis.js');
      return openRedisStore(parsed.url, options);
    }
    case 'postgres': {
      const { openPostgresStore } = await import('./store-postgres.js');
      return openPostgresStore(parsed.url, options);
    }
    case 'embedded': {
      const { openEmbeddedStore } = await import('./store-embedded.js');
      return openEmbeddedStore(parsed.dir, options);
    }
  }
}

/**
 * The store options a configuration sets, beside the caller's own: every process that opens a
 * store from the same configuration agrees on them (the events' max length must match).
 */
export function configuredStoreOptions(
  config: Pick<AiecsConfig, 'storeTimeoutMs' | 'eventsMaxLen' | 'embeddedUpkeepIntervalMs'>,
  own: Pick<StoreOptions, 'logger' | 'role' | 'namespace'>,
): StoreOptions {
  return {
    ...own,
    timeoutMs: config.storeTimeoutMs,
    eventsMaxLen: config.eventsMaxLen,
    upkeepIntervalMs: config.embeddedUpkeepIntervalMs,
  };
}
