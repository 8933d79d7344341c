/**
 * The task history's consumer in a worker thread (history-thread.ts starts it): it opens its own
 * connections to the store, runs the consumer, and sends its log lines and figures to the thread
 * that started it, which logs and counts them as its own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AiecsConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { openStore } from '../open-store.js';
import type { Store } from '../store.js';
import { startHistoryConsumer, type HistoryConsumer } from './history-consumer.js';
import { historyTarget } from './history-target.js';
import type { FromHistoryThread, HistoryThreadData, ToHistoryThread } from './history-thread.js';

const port = parentPort!;
const data = workerData as HistoryThreadData;
const post = (message: FromHistoryThread) => port.postMessage(message);

const logger = createLogger({ logLevel: data.logLevel }, 'aiecs', {
  write: (line: string) => post({ type: 'log', line }),
});

let store: Store | undefined;
let consumer: HistoryConsumer | undefined;
let closeDb: (() => Promise<void>) | undefined;

async function start(config: AiecsConfig): Promise<void> {
  store = await openStore(config.brokerUrl, {
    logger,
    role: 'worker',
    namespace: data.namespace,
    timeoutMs: config.storeTimeoutMs,
    eventsMaxLen: config.eventsMaxLen,
  });
  const target = await historyTarget(config, store);
  if (!target.enabled) throw new Error(`the task history is off: ${target.reason}`);
  closeDb = () => target.db.close();
  consumer = await startHistoryConsumer({
    store,
    db: target.db,
    logger,
    retentionDays: config.history.retentionDays,
    figures: (queue, figure) => post({ type: 'figure', queue, figure }),
  });
}

async function close(): Promise<void> {
  await consumer?.close();
  await closeDb?.();
  await store?.close();
}

port.on('message', (message: ToHistoryThread) => {
  if (message.type !== 'close') return;
  close()
    .catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'closing the task history'))
    .finally(() => {
      post({ type: 'closed' });
      port.close();
    });
});

start(data.config).then(
  () => post({ type: 'started' }),
  async (error: unknown) => {
    const e = error as Error & { code?: string; details?: Record<string, unknown> };
    await close().catch(() => undefined);
    post({
      type: 'failed',
      error: { name: e.name, message: e.message, ...(e.code ? { code: e.code } : {}), details: e.details },
    });
    port.close();
  },
);
