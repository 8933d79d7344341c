import type { Logger } from '../core/logger.js';

const MB = 1024 * 1024;
const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;

export interface MemoryLogOptions {
  /** Seconds between lines (AIECS_MEMORY_LOG_INTERVAL_S); 0 writes none. */
  intervalS: number;
  logger: Logger;
  /** Tasks running on the worker now. */
  activeTasks: () => number;
}

/** The figures of one "Memory usage" line. */
export function memoryUsage(activeTasks: number) {
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  return {
    rss_mb: mb(rss),
    heap_used_mb: mb(heapUsed),
    heap_total_mb: mb(heapTotal),
    active_tasks: activeTasks,
  };
}

/**
 * A worker's periodic "Memory usage" info line, as the seed's Celery worker wrote: a slow leak
 * shows in the logs of a host with no metrics scraper. The timer never keeps the process alive;
 * the returned function stops it.
 */
export function startMemoryLog({ intervalS, logger, activeTasks }: MemoryLogOptions): () => void {
  if (!(intervalS > 0)) return () => undefined;
  // setInterval takes at most 2^31-1 ms (about 24 days); more would fire at once.
  const ms = Math.min(intervalS * 1000, 2 ** 31 - 1);
  const timer = setInterval(() => {
    if (logger.isLevelEnabled('info')) logger.info(memoryUsage(activeTasks()), 'Memory usage');
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
