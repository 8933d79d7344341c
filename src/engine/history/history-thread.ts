/**
 * Runs the task history's consumer in a worker thread of its own, beside a worker on a Redis or
 * PostgreSQL store. Reading the event streams, building rows and encoding them cost the consumer
 * about 50 µs of CPU per task (three rows each); on the worker's own thread that time came out of
 * the tasks: `npm run bench -- --only history` measured 0.57 of the throughput with the history
 * off, in-process. The thread keeps its own connections; the embedded store's PGlite lives in
 * one thread only, so beside it the consumer stays in-process (run-history.ts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CLOSE_DEADLINE_MS, settleWithin } from '../../core/deadline.js';
import type { AiecsConfig } from '../../core/config.js';
import { AiecsError, SchemaTooNewError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { countingMetrics } from '../../core/metrics.js';

/** What the thread is started with (structured-cloned). */
export interface HistoryThreadData {
  config: AiecsConfig;
  namespace: string;
  logLevel: string;
}

export type ToHistoryThread = { type: 'close' };

export type FromHistoryThread =
  | { type: 'started' }
  | {
      type: 'failed';
      error: { name: string; message: string; code?: string; details?: Record<string, unknown> };
    }
  | { type: 'log'; line: string }
  | { type: 'figure'; queue: string; figure: { entries: number } | 'gap' }
  | { type: 'closed' };

const ENTRY = new URL('./history-thread-main.js', import.meta.url);

/** Whether the thread's compiled entry is there (not when the code runs from its TypeScript sources). */
export function historyThreadAvailable(): boolean {
  return existsSync(fileURLToPath(ENTRY));
}

export interface HistoryThread {
  close(): Promise<void>;
}

/**
 * Starts the thread and resolves once its consumer has started (the history's schema checked):
 * rejects with SchemaTooNewError when a newer aiecs migrated it, as the in-process start does.
 */
export function startHistoryThread(
  config: AiecsConfig,
  namespace: string,
  logger: Logger,
): Promise<HistoryThread> {
  const data: HistoryThreadData = { config, namespace, logLevel: logger.level };
  const thread = new Worker(ENTRY, { workerData: data });
  let closed: (() => void) | undefined;
  const whenClosed = new Promise<void>((resolve) => (closed = resolve));
  thread.once('exit', () => closed?.());

  const close = async () => {
    thread.postMessage({ type: 'close' } satisfies ToHistoryThread);
    if (!(await settleWithin(whenClosed, CLOSE_DEADLINE_MS * 2))) await thread.terminate();
  };

  return new Promise<HistoryThread>((resolve, reject) => {
    thread.on('message', (message: FromHistoryThread) => {
      switch (message.type) {
        case 'log':
          relayLog(logger, message.line);
          break;
        case 'figure':
          countingMetrics()?.history(message.queue, message.figure);
          break;
        case 'started':
          resolve({ close });
          break;
        case 'failed':
          reject(revive(message.error));
          break;
        case 'closed':
          closed?.();
          break;
      }
    });
    thread.on('error', (error) => {
      logger.error(
        { err: error.message },
        'the task history thread failed; history is delayed until restart',
      );
      reject(error);
    });
  });
}

/** The thread's error as the in-process start would have thrown it. */
function revive(error: {
  name: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
}): Error {
  const d = error.details ?? {};
  if (error.code === 'SCHEMA_TOO_NEW')
    return new SchemaTooNewError(String(d.where), Number(d.version), Number(d.known));
  const revived = new AiecsError(error.message, d);
  revived.name = error.name;
  return revived;
}

const OWN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/** A log line of the thread, logged by the starting thread's logger (its bindings, its format). */
function relayLog(logger: Logger, line: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const label = logger.levels.labels[Number(record.level)] as 'info' | undefined;
  const fields = Object.fromEntries(Object.entries(record).filter(([key]) => !OWN_FIELDS.has(key)));
  logger[label ?? 'info'](fields, typeof record.msg === 'string' ? record.msg : '');
}
