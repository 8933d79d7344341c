import { libraryToWire } from '../core/library-wire.js';
import { ValidationError } from '../core/errors.js';
import type { SubmitOptions } from '../core/task.js';
import { FAST_QUEUE, HEAVY_QUEUE } from '../core/task.js';
import type { TaskHandle } from './task-handle.js';
import type { WireSubmission } from './submit.js';

/** A template submit's second argument: who and how, over the template's defaults. */
export interface TemplateSubmitOptions extends SubmitOptions {
  /** The owner (or `user_id`). */
  userId?: string;
  user_id?: string;
  taskId?: string;
  task_id?: string;
  step?: number;
  /** Merged over the template's default context (these keys win). */
  context?: Record<string, unknown>;
  /** heavy_tasks (true) or fast_tasks (false); default: the template's queue. */
  heavy?: boolean;
  time_limit?: number;
  soft_time_limit?: number;
}

/** The request's fields among a template submit's options; the rest are submit options. */
const REQUEST_KEYS = new Set(['userId', 'user_id', 'taskId', 'task_id', 'step', 'context']);

/** What a template submitter needs of the app (the app itself). */
export interface TemplateSubmitterDeps {
  submitWire(item: WireSubmission): Promise<TaskHandle>;
}

/**
 * `app.template('summarize@2')`: submits tasks by a template. The reference is resolved at each
 * `delay`, so a name without `@v` takes the latest version registered by then; the input is
 * checked against the template's schema before anything is queued (ValidationError naming
 * `input_data.<path>`), and an unknown name or version is a TemplateNotFoundError.
 */
export class TemplateSubmitter {
  constructor(
    private readonly app: TemplateSubmitterDeps,
    readonly ref: string,
  ) {}

  async delay(input: Record<string, unknown>, options: TemplateSubmitOptions = {}): Promise<TaskHandle> {
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      throw new ValidationError([{ field: 'options', message: 'expected an options object' }]);
    const { heavy, ...rest } = options;
    if (heavy !== undefined && typeof heavy !== 'boolean')
      throw new ValidationError([{ field: 'heavy', message: 'must be true or false' }]);
    const request: Record<string, unknown> = { input_data: input };
    const submit: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(rest)) (REQUEST_KEYS.has(key) ? request : submit)[key] = value;
    const wire = libraryToWire(request, submit);
    const item: WireSubmission = { template: this.ref, request: wire.request, options: wire.options };
    if (heavy !== undefined) item.queue = heavy ? HEAVY_QUEUE : FAST_QUEUE;
    return wire.respell(this.app.submitWire(item));
  }
}
