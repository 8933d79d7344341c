/**
 * Where a deployment's task history lives, decided once from the settings and the store:
 * AIECS_HISTORY_URL when set; else the store's own database (PostgreSQL, or the embedded store's
 * PGlite); else (Redis without a history URL) nowhere, and it is off. AIECS_HISTORY=off turns it
 * off everywhere.
 */
import type { AiecsConfig } from '../../core/config.js';
import type { Store, StoreKind } from '../store.js';
import type { HistoryDb } from './history-db.js';

export type HistoryTarget = { enabled: true; db: HistoryDb } | { enabled: false; reason: string };

/** The hint said wherever the history is off beside Redis: the start lines, the error. */
export const HISTORY_URL_HINT =
  'the store is Redis and AIECS_HISTORY_URL is not set; set it to a postgres:// URL to keep task history';

/** Why the history is off for these settings and this kind of store; undefined when it is on. */
export function historyOffReason(config: AiecsConfig, kind: StoreKind): string | undefined {
  if (!config.history.enabled) return 'AIECS_HISTORY=off';
  if (kind === 'redis' && config.history.url === undefined) return HISTORY_URL_HINT;
  return undefined;
}

/**
 * The history's database for this store (not migrated yet: HistoryDb.ready does that). Its module
 * (and with it `pg`, about 10 MB of a worker's idle RSS) is loaded only when the history is on.
 */
export async function historyTarget(config: AiecsConfig, store: Store): Promise<HistoryTarget> {
  const reason = historyOffReason(config, store.kind);
  if (reason !== undefined) return { enabled: false, reason };
  const { HistoryDb } = await import('./history-db.js');
  const schema = store.database?.schema ?? store.namespace;
  const timeoutMs = config.storeTimeoutMs;
  if (config.history.url !== undefined)
    return { enabled: true, db: HistoryDb.atUrl(config.history.url, store.namespace, timeoutMs) };
  const database = store.database;
  if (database && 'url' in database)
    return { enabled: true, db: HistoryDb.atUrl(database.url, schema, timeoutMs) };
  if (database) return { enabled: true, db: HistoryDb.onPool(database.pool, schema, store.displayUrl) };
  return { enabled: false, reason: HISTORY_URL_HINT };
}

/** The start line's words for the history of a process on this store. */
export function describeHistory(config: AiecsConfig, kind: StoreKind): string {
  const reason = historyOffReason(config, kind);
  if (reason !== undefined) return `task history off (${reason})`;
  return config.history.url !== undefined
    ? 'task history at AIECS_HISTORY_URL'
    : "task history in the store's database";
}
