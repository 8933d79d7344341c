/**
 * What `aiecs up` and `aiecs worker` run for the task history: a consumer where the history is
 * on (every such process runs one; one of them is active, the others stand by), and the words
 * their start lines say about it. The consumer runs on the process's own thread, on its store:
 * a worker thread of its own (its own isolate, connections and heap) cost more CPU per task than
 * it took off the tasks' thread (docs/design.md §12).
 */
import type { AiecsConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Store } from '../store.js';
import type { HistoryConsumer } from './history-consumer.js';
import { describeHistory, historyOffReason, historyTarget } from './history-target.js';

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
  const target = await historyTarget(config, store);
  if (!target.enabled) return { offLine: describeHistory(config, store.kind), close: async () => undefined };
  try {
    // Loaded only where the history is on: a Redis worker without AIECS_HISTORY_URL skips it.
    const { startHistoryConsumer } = await import('./history-consumer.js');
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
