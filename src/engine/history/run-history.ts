/**
 * What `aiecs up` and `aiecs worker` run for the task history: a consumer where the history is
 * on (every such process runs one; one of them is active, the others stand by), and the words
 * their start lines say about it.
 */
import type { AiecsConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Store } from '../store.js';
import { startHistoryConsumer, type HistoryConsumer } from './history-consumer.js';
import { describeHistory, historyOffReason, historyTarget } from './history-target.js';
import { historyThreadAvailable, startHistoryThread } from './history-thread.js';

export interface RunningHistory {
  /** The start line's words when the history is off (with the hint), else undefined. */
  offLine?: string;
  consumer?: HistoryConsumer;
  close(): Promise<void>;
}

/** Starts the history consumer on `store`; throws SchemaTooNewError for a too-new history schema. */
export async function runHistory(config: AiecsConfig, store: Store, logger: Logger): Promise<RunningHistory> {
  if (historyOffReason(config, store.kind) !== undefined)
    return { offLine: describeHistory(config, store.kind), close: async () => undefined };
  // Off the worker's thread where the store can be opened twice (not PGlite): history-thread.ts.
  if (store.kind !== 'embedded' && historyThreadAvailable()) {
    const thread = await startHistoryThread(config, store.namespace, logger);
    return { close: () => thread.close() };
  }
  const target = await historyTarget(config, store);
  if (!target.enabled) return { offLine: describeHistory(config, store.kind), close: async () => undefined };
  try {
    const consumer = await startHistoryConsumer({
      store,
      db: target.db,
      logger,
      retentionDays: config.history.retentionDays,
    });
    return {
      consumer,
      async close() {
        await consumer.close();
        await target.db.close();
      },
    };
  } catch (error) {
    await target.db.close();
    throw error;
  }
}

/** The start line's words for a process that runs no consumer (the gateway) when history is off. */
export function historyOffLine(config: AiecsConfig, kind: Store['kind']): string | undefined {
  return historyOffReason(config, kind) === undefined ? undefined : describeHistory(config, kind);
}
