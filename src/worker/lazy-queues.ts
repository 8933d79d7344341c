import type { Queue } from 'bullmq';
import type { Logger } from '../core/logger.js';
import type { QueueKind } from '../core/task.js';
import type { Store } from '../engine/store.js';

/**
 * A worker part's own handles on the task queues, each opened on first use: a part that never
 * needs one never opens it. Errors are logged, not thrown (a queue handle retries on its own).
 */
export class LazyQueues {
  private readonly queues = new Map<QueueKind, Queue>();

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  get(kind: QueueKind): Queue {
    let queue = this.queues.get(kind);
    if (!queue) {
      queue = this.store.createQueue(kind);
      queue.on('error', (error) => this.logger.warn({ err: error.message, queue: kind }, 'queue error'));
      this.queues.set(kind, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
