import { libraryToWire } from '../core/library-wire.js';
import type { QueueKind, SubmitOptions, TaskRequest } from '../core/task.js';
import type { TaskHandle } from './task-handle.js';
import { Signature, type CanvasApp } from './workflow-canvas.js';
import { submitBatch, type BatchDeps, type GroupHandle } from './workflow-group.js';

/** What a submitter needs of the app (the app itself; an interface keeps the two modules apart). */
export interface SubmitterDeps extends CanvasApp, BatchDeps {}

/**
 * `app.executeTask` (queue fast_tasks) and `app.executeHeavyTask` (heavy_tasks), named as in
 * Celery: the library's way to submit. A class, so the other ways of one queue's submitter
 * (Celery's `.s()` signature, a batch) join `delay` here.
 */
export class TaskSubmitter {
  constructor(
    private readonly app: SubmitterDeps,
    readonly queue: QueueKind,
  ) {}

  /**
   * Submits one request, written in camelCase or in the seed's snake_case; validation errors name
   * the fields as the caller spelled them.
   */
  async delay(request: TaskRequest, options: SubmitOptions = {}): Promise<TaskHandle> {
    const wire = libraryToWire(request, options);
    return wire.respell(
      this.app.submitWire({ queue: this.queue, request: wire.request, options: wire.options }),
    );
  }

  /**
   * Many requests at once, accepted whole or refused whole, as one group: the handle's `group_id`,
   * `progress()` (n done of m), `get()` (the records in order) and `cancel()` (see workflow-group.ts).
   */
  batch(requests: readonly TaskRequest[], options: SubmitOptions = {}): Promise<GroupHandle> {
    return submitBatch(this.app, this.queue, requests, options);
  }

  /** A signature (Celery's `.s()`): this task, not queued yet, for chain, group and chord. */
  s(request: TaskRequest, options?: SubmitOptions): Signature {
    return new Signature(this.app, this.queue, request, options);
  }
}
