import pg from 'pg';
import type { PgPool } from 'bullmq';
import { SchemaTooNewError, StoreUnavailableError } from '../core/errors.js';
import { bullOnPostgres, pgExtras, storeFrom, type ExtrasPart, type PgLike } from './postgres-common.js';
import type { ResolvedStoreOptions, Store } from './store.js';
import {
  BROKER_HINT,
  DEFAULT_STORE_TIMEOUT_MS,
  checkNamespace,
  POOL_MAX_LISTENERS,
  redactUrl,
} from './store.js';

export async function openPostgresStore(url: string, options: ResolvedStoreOptions): Promise<Store> {
  const schema = checkNamespace(options.namespace ?? 'aiecs');
  const timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  await reachable(url, timeoutMs);
  // A producer waits for a connection (a new one, or a free one of the pool) as long as a request
  // may wait for the store; a worker's many tasks may queue for the pool longer than that.
  const bounded = (options.role ?? 'producer') === 'producer' ? { connectionTimeoutMillis: timeoutMs } : {};
  const pool = new pg.Pool({ connectionString: url, max: 3, ...bounded });
  pool.setMaxListeners(POOL_MAX_LISTENERS);
  pool.on('error', (error) => options.logger.warn({ err: error.message }, 'PostgreSQL pool error'));
  let extras: ExtrasPart;
  try {
    extras = await pgExtras(pool as unknown as PgLike, schema);
  } catch (error) {
    await pool.end().catch(() => undefined);
    // Reached, but written by a newer aiecs: waiting for the store would not help.
    if (error instanceof SchemaTooNewError) throw error;
    throw new StoreUnavailableError(
      `cannot use PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
  // BullMQ builds its own small pools from this config, with search_path pinned to the schema.
  const connection = { connectionString: url, schema, migrate: true, max: 4, ...bounded };
  return storeFrom(
    'postgres',
    redactUrl(url),
    schema,
    bullOnPostgres(connection, options.eventsMaxLen),
    extras,
    async () => {
      await pool.end();
    },
    { url, schema },
  );
}

/**
 * Connects once, within `timeoutMs`, so that a wrong URL or a server that is down is one clear
 * error at start (pg alone would wait for the operating system's TCP timeout on a silent host).
 */
async function reachable(url: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A failed connect also emits 'error' on some paths; the rejection below reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw new StoreUnavailableError(
      `cannot connect to PostgreSQL at ${redactUrl(url)} (${(error as Error).message}); ${BROKER_HINT}`,
      {},
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

export type { PgPool };
