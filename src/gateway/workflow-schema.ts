/**
 * A workflow as JSON (POST /api/workflows, `aiecs workflow submit`): a tree of `{"chain": [...]}`,
 * `{"group": [...]}` and `{"chord": {"header": [...], "body": {...}}}` nodes whose leaves are task
 * requests exactly as POST /api/tasks takes them. The tree is checked whole before anything is
 * queued — its shape, its size and depth, every leaf, who may submit it, which services can run it —
 * and every problem is named by its path, e.g. `chain[2].group[1].mode`.
 */
import {
  ForbiddenError,
  PayloadTooLargeError,
  ServiceNotFoundError,
  ValidationError,
  WorkflowInvalidError,
  WorkflowTooLargeError,
  type FieldIssue,
} from '../core/errors.js';
import type { AiecsConfig } from '../core/config.js';
import type { TaskRecord } from '../core/task.js';
import type { AiecsApp } from '../engine/app.js';
import { prepareSubmission } from '../core/submission.js';
import {
  DEFAULT_WORKFLOW_MAX_DEPTH,
  DEFAULT_WORKFLOW_MAX_TASKS,
  mapWorkflow,
  type WorkflowIds,
  type WorkflowLeaf,
  type WorkflowNode,
  type WorkflowRead,
  type WorkflowTree,
} from '../core/workflow.js';
import { httpTaskSchema, parseOrThrow, splitTask, type HttpTask } from './schemas.js';

export interface WorkflowLimits {
  /** Tasks (leaves) in one workflow. */
  maxTasks: number;
  /** Nested chain / group / chord levels; a flat chain is 1. */
  maxDepth: number;
  /** `input_data` + `context` of one task, as AIECS_MAX_INPUT_BYTES. */
  maxInputBytes: number;
}

/** The configured limits (AIECS_WORKFLOW_MAX_TASKS, AIECS_WORKFLOW_MAX_DEPTH, AIECS_MAX_INPUT_BYTES). */
export function workflowLimits(config: AiecsConfig): WorkflowLimits {
  return {
    maxTasks: config.workflowMaxTasks ?? DEFAULT_WORKFLOW_MAX_TASKS,
    maxDepth: config.workflowMaxDepth ?? DEFAULT_WORKFLOW_MAX_DEPTH,
    maxInputBytes: config.maxInputBytes,
  };
}

/** A leaf of the body, parsed as POST /api/tasks parses a task, its owner filled in. */
export interface HttpWorkflowLeaf {
  /** Where the leaf is in the body: `chain[2].group[1]`. */
  path: string;
  task: HttpTask;
}

export interface CheckedWorkflow {
  /** The engine's tree: each leaf split into its queue, request and options (splitTask). */
  tree: WorkflowNode;
  /** Every leaf in tree order (a chord's header before its body). */
  leaves: HttpWorkflowLeaf[];
  /** The owner of every task in it. */
  userId: string;
}

/** Who submits: a user submits as themselves, an admin as anyone. */
export interface Submitter {
  userId: string;
  admin: boolean;
}

const KINDS = ['chain', 'group', 'chord'] as const;
const NODE_HELP = 'must be a task request or one of {"chain": [...]}, {"group": [...]}, {"chord": {...}}';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `prefix.name`, or `name` at the root. */
const at = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);
const fieldOf = (path: string) => path || '(root)';

/** The tree's shape as read in a first pass: leaves still raw, problems collected. */
type Shape =
  | { leaf: number }
  | { chain: Shape[] }
  | { group: Shape[] }
  | { chord: { header: Shape[]; body: Shape } }
  | null;

class ShapeReader {
  readonly issues: FieldIssue[] = [];
  readonly raw: Array<{ path: string; value: unknown }> = [];

  constructor(private readonly maxDepth: number) {}

  /** `depth` counts the composite nodes above `value`; the walk stops past the limit (no deep recursion). */
  read(value: unknown, path: string, depth: number): Shape {
    if (!isObject(value)) {
      this.issues.push({ field: fieldOf(path), message: NODE_HELP });
      return null;
    }
    const kinds = KINDS.filter((k) => k in value);
    if (kinds.length === 0) {
      if (depth === 0) {
        this.issues.push({
          field: '(root)',
          message:
            'must be {"chain": [...]}, {"group": [...]} or {"chord": {...}}; submit one task with POST /api/tasks',
        });
        return null;
      }
      this.raw.push({ path, value });
      return { leaf: this.raw.length - 1 };
    }
    const kind = kinds[0]!;
    const extra = Object.keys(value).filter((k) => k !== kind);
    if (extra.length) {
      this.issues.push({
        field: fieldOf(path),
        message: `a ${kind} node holds only "${kind}"; unknown field(s): ${extra.join(', ')}`,
      });
      return null;
    }
    if (depth + 1 > this.maxDepth) {
      this.issues.push({
        field: at(path, kind),
        message: `nested ${depth + 1} levels deep; a workflow nests at most ${this.maxDepth} (AIECS_WORKFLOW_MAX_DEPTH)`,
      });
      return null;
    }
    const inner = value[kind];
    if (kind === 'chord') return this.chord(inner, at(path, 'chord'), depth + 1);
    const members = this.members(inner, at(path, kind), depth + 1);
    return members && (kind === 'chain' ? { chain: members } : { group: members });
  }

  private members(value: unknown, path: string, depth: number): Shape[] | null {
    if (!Array.isArray(value)) {
      this.issues.push({ field: path, message: 'must be an array of tasks or workflow nodes' });
      return null;
    }
    if (value.length === 0) {
      this.issues.push({ field: path, message: 'must hold at least one task' });
      return null;
    }
    return value.map((member, i) => this.read(member, `${path}[${i}]`, depth));
  }

  private chord(value: unknown, path: string, depth: number): Shape {
    if (!isObject(value)) {
      this.issues.push({ field: path, message: 'must be {"header": [...], "body": {...}}' });
      return null;
    }
    const extra = Object.keys(value).filter((k) => k !== 'header' && k !== 'body');
    if (extra.length)
      this.issues.push({
        field: path,
        message: `unknown field(s): ${extra.join(', ')}; a chord holds header and body`,
      });
    const header = this.members(value.header, `${path}.header`, depth);
    let body: Shape = null;
    if (value.body === undefined)
      this.issues.push({ field: `${path}.body`, message: 'is required: the callback' });
    else body = this.read(value.body, `${path}.body`, depth);
    return header && { chord: { header, body } };
  }
}

/**
 * Checks a JSON workflow whole, without queueing anything, and returns it with its leaves parsed.
 * Throws WorkflowTooLargeError (413) past `maxTasks`, ForbiddenError (403) for a task submitted as
 * someone else, WorkflowInvalidError (422) listing every other problem by its path, or
 * PayloadTooLargeError (413) for a leaf's input over the limit.
 */
export function checkWorkflow(body: unknown, who: Submitter, limits: WorkflowLimits): CheckedWorkflow {
  const reader = new ShapeReader(limits.maxDepth);
  const shape = reader.read(body, '', 0);
  // The count first: a tree over the limit is refused before any leaf is looked at.
  if (reader.raw.length > limits.maxTasks)
    throw new WorkflowTooLargeError(reader.raw.length, limits.maxTasks);

  const issues = [...reader.issues];
  const parsed: Array<HttpTask | undefined> = reader.raw.map(({ path, value }) => {
    try {
      return parseOrThrow(httpTaskSchema, value, path);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.issues);
      return undefined;
    }
  });

  const leaves: HttpWorkflowLeaf[] = [];
  const split: Array<WorkflowLeaf | undefined> = [];
  const ids = new Map<string, string>();
  for (const [i, task] of parsed.entries()) {
    if (!task) continue;
    const path = reader.raw[i]!.path;
    if (task.user_id !== undefined && task.user_id !== who.userId && !who.admin)
      throw new ForbiddenError(`${path}.user_id: cannot submit tasks as user ${task.user_id}`);
    task.user_id ??= who.userId;
    if (task.task_id !== undefined) {
      const first = ids.get(task.task_id);
      if (first !== undefined)
        issues.push({ field: `${path}.task_id`, message: `${task.task_id} is also the id of ${first}` });
      else ids.set(task.task_id, path);
    }
    const leaf = splitTask(task, task.user_id);
    issues.push(...engineIssues(leaf, path, limits.maxInputBytes));
    split[i] = leaf;
    leaves.push({ path, task });
  }

  const owners = [...new Set(leaves.map((l) => l.task.user_id))];
  if (owners.length > 1) {
    const other = leaves.find((l) => l.task.user_id !== leaves[0]!.task.user_id)!;
    issues.push({
      field: `${other.path}.user_id`,
      message: `every task of a workflow has one owner: ${other.task.user_id} is not ${leaves[0]!.task.user_id}`,
    });
  }
  if (issues.length || !shape) throw new WorkflowInvalidError(issues);
  return { tree: build(shape, split), leaves, userId: leaves[0]!.task.user_id! };
}

/**
 * What the engine checks when it prepares each task (sizes, countdown with eta, time limits), named
 * at the leaf's path, so that it refuses nothing after the tree was accepted.
 */
function engineIssues(
  { queue, request, options }: WorkflowLeaf,
  path: string,
  maxInputBytes: number,
): FieldIssue[] {
  try {
    prepareSubmission(queue, request, options, maxInputBytes);
    return [];
  } catch (error) {
    if (error instanceof ValidationError)
      return error.renamed((field) => at(path, field.replace(/^options\./, ''))).issues;
    if (error instanceof PayloadTooLargeError)
      throw new PayloadTooLargeError(at(path, error.field), error.size, error.limit);
    throw error;
  }
}

/** The engine's tree from a shape read without problems (so no null in it). */
function build(shape: NonNullable<Shape>, leaves: Array<WorkflowLeaf | undefined>): WorkflowNode {
  return mapWorkflow(shape, (s) => ({ task: leaves[s!.leaf]! }));
}

/**
 * Refuses tasks no worker can run, each named by its place (`tasks[3]`, `chain[2].group[1]`):
 * the first one in the message, every one in details.issues (422).
 */
export async function checkServices(
  items: ReadonlyArray<{ path: string; task: Pick<HttpTask, 'mode' | 'service' | 'task_name'> }>,
  check: (mode: string, service: string, taskName: string) => Promise<void>,
): Promise<void> {
  const unknown: FieldIssue[] = [];
  let first: ServiceNotFoundError | undefined;
  // One look-up per distinct triple: a 10,000-task group usually names a handful.
  const seen = new Map<string, Promise<ServiceNotFoundError | undefined>>();
  for (const { path, task } of items) {
    const key = `${task.mode}/${task.service}/${task.task_name}`;
    let result = seen.get(key);
    if (!result) {
      result = check(task.mode, task.service, task.task_name).then(
        () => undefined,
        (error: unknown) => {
          if (error instanceof ServiceNotFoundError) return error;
          throw error;
        },
      );
      seen.set(key, result);
    }
    const error = await result;
    if (!error) continue;
    const located = error.at(path);
    first ??= located;
    unknown.push({ field: String(located.details.field), message: error.message });
  }
  if (first) {
    first.details.issues = unknown;
    throw first;
  }
}

// Replies: the trees of ids and of records as POST /api/workflows and GET /api/tasks/:id/tree send them.

/** The tree of ids on the wire: leaves `{task_id, queue}`. */
export type WireWorkflowIds =
  | { task_id: string; queue: string }
  | { chain: WireWorkflowIds[] }
  | { group: WireWorkflowIds[] }
  | { chord: { header: WireWorkflowIds[]; body: WireWorkflowIds } };

/** The tree with records on the wire: leaves `{task_id, queue, status, task}` (task: the record). */
export type WireWorkflowTree =
  | { task_id: string; queue: string; status: string | null; task: TaskRecord | null }
  | { chain: WireWorkflowTree[] }
  | { group: WireWorkflowTree[] }
  | { chord: { header: WireWorkflowTree[]; body: WireWorkflowTree } };

export function wireIds(ids: WorkflowIds): WireWorkflowIds {
  return mapWorkflow(ids, (leaf) => ({ task_id: leaf.task, queue: leaf.queue }));
}

/** The tree with records on the wire; `show` gives the record a reader may see (null hides it). */
export function wireTree(
  tree: WorkflowTree,
  show: (record: TaskRecord) => TaskRecord | null,
): WireWorkflowTree {
  return mapWorkflow(tree, (leaf) => {
    const record = leaf.task && show(leaf.task);
    return { task_id: leaf.task_id, queue: leaf.queue, status: record?.status ?? null, task: record };
  });
}

/** The workflow a task belongs to; a lone task reads as a tree of one. */
export async function taskTree(
  app: Pick<AiecsApp, 'readWorkflow'>,
  record: TaskRecord,
): Promise<WorkflowRead> {
  return (
    (await app.readWorkflow(record.task_id)) ?? {
      root_id: record.task_id,
      tree: { task_id: record.task_id, queue: record.queue, task: record },
    }
  );
}
