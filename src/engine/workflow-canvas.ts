/**
 * Celery's canvas in TypeScript: `app.executeTask.s({...})` makes a signature, and `chain(a, b)`,
 * `group([a, b])` and `chord([a, b], callback)` compose signatures (and each other) into a
 * workflow tree that `.delay()` queues (docs/design.md §9).
 */
import { ValidationError } from '../core/errors.js';
import { libraryToWire } from '../core/library-wire.js';
import type { QueueKind, SubmitOptions, TaskRequest } from '../core/task.js';
import type { WorkflowNode } from '../core/workflow.js';
import type { WorkflowHandle } from './workflow-handle.js';

/** The app a workflow is queued through: the one its first signature was made by. */
export interface CanvasApp {
  submitWorkflow(tree: WorkflowNode): Promise<WorkflowHandle>;
}

const at = (path: string, name: string) => (path ? `${path}.${name}` : name);

/** Something a workflow can hold: a signature or a composed part. */
export abstract class CanvasPart {
  /** The wire tree of this part; library spelling errors are named by their path in it. */
  abstract node(path?: string): WorkflowNode;
  abstract get app(): CanvasApp;

  /** Queues the workflow whole (or nothing of it) and returns its handle. */
  delay(): Promise<WorkflowHandle> {
    let tree: WorkflowNode;
    try {
      tree = this.node();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.app.submitWorkflow(tree);
  }
}

/** One task of a workflow, not queued yet (Celery's `.s()`). */
export class Signature extends CanvasPart {
  constructor(
    private readonly owner: CanvasApp,
    readonly queue: QueueKind,
    readonly request: TaskRequest,
    readonly options?: SubmitOptions,
  ) {
    super();
  }

  get app(): CanvasApp {
    return this.owner;
  }

  node(path = ''): WorkflowNode {
    try {
      const wire = libraryToWire(this.request, this.options ?? {});
      return { task: { queue: this.queue, request: wire.request, options: wire.options } };
    } catch (error) {
      if (error instanceof ValidationError && path) throw error.renamed((field) => at(path, field));
      throw error;
    }
  }
}

abstract class Composite extends CanvasPart {
  constructor(protected readonly parts: CanvasPart[]) {
    super();
    if (parts.length === 0)
      throw new ValidationError([{ field: '(root)', message: 'needs at least one task' }]);
    for (const part of parts)
      if (!(part instanceof CanvasPart))
        throw new ValidationError([
          {
            field: '(root)',
            message: 'takes signatures (app.executeTask.s(...)) and chains, groups, chords',
          },
        ]);
  }

  get app(): CanvasApp {
    return this.parts[0]!.app;
  }
}

class Chain extends Composite {
  node(path = ''): WorkflowNode {
    return { chain: this.parts.map((p, i) => p.node(at(path, `chain[${i}]`))) };
  }
}

class Group extends Composite {
  node(path = ''): WorkflowNode {
    return { group: this.parts.map((p, i) => p.node(at(path, `group[${i}]`))) };
  }
}

class Chord extends Composite {
  constructor(
    header: CanvasPart[],
    private readonly body: CanvasPart,
  ) {
    super([...header, body]);
  }

  node(path = ''): WorkflowNode {
    const header = this.parts.slice(0, -1);
    return {
      chord: {
        header: header.map((p, i) => p.node(at(path, `chord.header[${i}]`))),
        body: this.body.node(at(path, 'chord.body')),
      },
    };
  }
}

/** Runs each step after the previous one completed; a step gets the previous result as `input_data.previous`. */
export function chain(...steps: CanvasPart[]): CanvasPart {
  return new Chain(steps);
}

/** Runs the members in parallel; `get()` gives their records in order. */
export function group(members: CanvasPart[]): CanvasPart {
  return new Group(members);
}

/** A group, then `callback` with every member's result in order as `input_data.results`. */
export function chord(header: CanvasPart[], callback: CanvasPart): CanvasPart {
  if (header.length === 0)
    throw new ValidationError([{ field: 'chord.header', message: 'needs at least one task' }]);
  return new Chord(header, callback);
}
