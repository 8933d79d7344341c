/**
 * Compiles a workflow tree into BullMQ flow jobs (docs/design.md §9): "runs after" is BullMQ's
 * child → parent edge, so a chain's last step is its flow's root and a chord's body is the parent
 * of its header. A flow is a tree (a job has one parent): one job can release many (fan-in) but
 * not the reverse, so when several tasks start on one node (a group or chord after a step) the
 * first takes its jobs as children and each other one a hidden await job (core/workflow-links.ts).
 * Everything else a submit checks (each leaf's fields, size, depth) is checked here too.
 */
import { randomBytes } from 'node:crypto';
import type { FlowJob } from 'bullmq';
import {
  PayloadTooLargeError,
  ValidationError,
  WorkflowInvalidError,
  WorkflowTooLargeError,
  type FieldIssue,
} from '../core/errors.js';
import { prepareSubmission, type PreparedSubmission } from '../core/submission.js';
import type { InputShape, QueueKind, StoredTaskData, StoredWorkflow } from '../core/task.js';
import { toBullPriority, toStoredData } from '../core/task.js';
import type { WorkflowIds, WorkflowNode } from '../core/workflow.js';
import type { LinkJobData, LinkRef } from '../core/workflow-links.js';
import {
  AWAIT_JOB,
  AWAIT_MIN_WAIT_MS,
  GATHER_JOB,
  awaitJobId,
  flattenShape,
  gatherJobId,
} from '../core/workflow-links.js';
import { branchChildren, isWorkflowBranch, workflowLeaves } from '../core/workflow.js';

export interface WorkflowLimits {
  maxTasks: number;
  maxDepth: number;
  maxInputBytes: number;
  /** Attempts of a task that sets none (AIECS_TASK_MAX_ATTEMPTS). */
  maxAttempts: number;
}

export interface CompiledWorkflow {
  /** The flows to add: one for a chain or chord, one per member for a group at the top. */
  flows: FlowJob[];
  rootId: string;
  ids: WorkflowIds;
  /** Every leaf, in tree order. */
  members: PreparedSubmission[];
}

/** What the tasks after a node wait for: its output jobs and how their results are laid out. */
interface Below {
  jobs: FlowJob[];
  shape: InputShape;
  as: 'previous' | 'results';
  /** How many tasks start on it: more than one is a fan-out. */
  followers: number;
  /** Fan-out: the one job its followers wait for (its task, or a gather job of its tasks), and that job's awaits. */
  source?: { job: FlowJob; awaits: LinkRef[] };
}

/** Attempts of a hidden job: a store error while it reads is retried; an upstream end is final. */
const LINK_ATTEMPTS = 3;

/** How many tasks of a node start on what came before it: a chain's first step's, each member's of a group or header. */
export function startCount(node: WorkflowNode): number {
  if ('task' in node) return 1;
  if ('chain' in node) return node.chain[0] ? startCount(node.chain[0]) : 0;
  let n = 0;
  for (const kid of 'group' in node ? node.group : node.chord.header) n += startCount(kid);
  return n;
}

interface Built {
  /** The jobs whose results are this node's result (one, or a group's members'). */
  outputs: FlowJob[];
  shape: InputShape;
  ids: WorkflowIds;
}

/** Stands in for a node with a problem: the walk goes on to name every problem, nothing is queued. */
const STAND_IN: Built = Object.freeze({
  outputs: [],
  shape: [],
  ids: { group: [] },
});

const at = (path: string, name: string) => (path ? `${path}.${name}` : name);

/** Nesting depth: a leaf is 0, a flat chain 1. */
export function workflowDepth(node: WorkflowNode): number {
  if (!isWorkflowBranch(node)) return 0;
  let deepest = 0;
  for (const kid of branchChildren(node)) deepest = Math.max(deepest, workflowDepth(kid));
  return deepest + 1;
}

export function countTasks(node: WorkflowNode): number {
  return workflowLeaves(node).length;
}

class Compiler {
  readonly issues: FieldIssue[] = [];
  readonly members: PreparedSubmission[] = [];
  readonly jobs: Array<{ job: FlowJob; wf: StoredWorkflow }> = [];
  /** The hidden jobs' data (their root is set with the members'). */
  readonly links: LinkJobData[] = [];
  private readonly seen = new Map<string, string>();
  /** Tells this workflow's hidden job ids from an earlier one's under the same task ids. */
  private readonly nonce = randomBytes(4).toString('hex');

  constructor(private readonly limits: WorkflowLimits) {}

  build(node: WorkflowNode, path: string, below: Below | undefined, step: number): Built {
    if ('task' in node) return this.leaf(node.task, path, below, step);
    if ('chain' in node) {
      if (node.chain.length === 0) return this.refuse(at(path, 'chain'), 'needs at least one step');
      let before = below;
      const ids: WorkflowIds[] = [];
      let last: Built | undefined;
      for (const [i, kid] of node.chain.entries()) {
        const built = this.build(kid, at(path, `chain[${i}]`), before, step + i);
        ids.push(built.ids);
        last = built;
        const next = node.chain[i + 1];
        before = next && {
          jobs: built.outputs,
          shape: built.shape,
          as: 'previous',
          followers: startCount(next),
        };
      }
      return { ...last!, ids: { chain: ids } };
    }
    if ('group' in node) {
      const built = this.parallel(node.group, at(path, 'group'), below, step);
      return { ...built, ids: { group: built.ids } };
    }
    const header = this.parallel(node.chord.header, at(path, 'chord.header'), below, step);
    const body = this.build(
      node.chord.body,
      at(path, 'chord.body'),
      { jobs: header.outputs, shape: header.shape, as: 'results', followers: startCount(node.chord.body) },
      step + 1,
    );
    return { ...body, ids: { chord: { header: header.ids, body: body.ids } } };
  }

  /** A group's members (or a chord's header): independent, their results in order. */
  private parallel(
    nodes: WorkflowNode[],
    path: string,
    below: Below | undefined,
    step: number,
  ): { outputs: FlowJob[]; shape: InputShape[]; ids: WorkflowIds[] } {
    if (nodes.length === 0) return { ...this.refuse(path, 'needs at least one task'), shape: [], ids: [] };
    const outputs: FlowJob[] = [];
    const shape: InputShape[] = [];
    const ids: WorkflowIds[] = [];
    for (const [i, kid] of nodes.entries()) {
      const built = this.build(kid, `${path}[${i}]`, below, step);
      outputs.push(...built.outputs);
      shape.push(built.shape);
      ids.push(built.ids);
    }
    return { outputs, shape, ids };
  }

  private leaf(
    leaf: {
      queue: 'fast_tasks' | 'heavy_tasks';
      request: Record<string, unknown>;
      options?: Record<string, unknown>;
    },
    path: string,
    below: Below | undefined,
    step: number,
  ): Built {
    let prepared: PreparedSubmission;
    try {
      prepared = prepareSubmission(leaf.queue, leaf.request, leaf.options, this.limits.maxInputBytes);
    } catch (error) {
      if (error instanceof ValidationError)
        this.issues.push(
          ...error.issues.map((x) => ({
            field: x.field === '(root)' ? path : at(path, x.field),
            message: x.message,
          })),
        );
      else if (error instanceof PayloadTooLargeError)
        this.issues.push({ field: at(path, error.field), message: error.message });
      else throw error;
      return STAND_IN;
    }
    const { data } = prepared;
    // `step` counts along the chain, on top of any the leaf gave itself.
    data.step += step;
    const id = data.task_id;
    const earlier = this.seen.get(id);
    if (earlier !== undefined) return this.refuse(at(path, 'task_id'), `repeats ${earlier}`);
    this.seen.set(id, at(path, 'task_id'));
    this.members.push(prepared);
    const wf: StoredWorkflow = { root: '' };
    if (below) wf.in = { as: below.as, from: below.shape };
    const children = below && this.feed(below, { id, queue: prepared.queue });
    const opts: NonNullable<FlowJob['opts']> = {
      jobId: id,
      priority: toBullPriority(data.options.priority),
      attempts: prepared.attempts ?? this.limits.maxAttempts,
      // A child that ends otherwise than completed is recorded as ignored and its parent released
      // once nothing is pending: the parent's worker then sees it and does not run (task-runner).
      ignoreDependencyOnFailure: true,
    };
    if (prepared.delayMs > 0) opts.delay = prepared.delayMs;
    const job: FlowJob = {
      name: data.task_name,
      queueName: prepared.queue,
      data: { ...toStoredData(prepared.queue, data), wf } satisfies StoredTaskData,
      opts,
      ...(children ? { children } : {}),
    };
    this.jobs.push({ job, wf });
    return { outputs: [job], shape: id, ids: { task: id, queue: prepared.queue } };
  }

  /**
   * The children of a task that starts on `below`: its jobs; in a fan-out, the first follower's
   * the source (the one task, or a gather job whose children are the tasks), each other's an
   * await job of the source, listed in the source's data so that its end wakes them.
   */
  private feed(below: Below, follower: LinkRef): FlowJob[] {
    if (below.followers <= 1 || below.jobs.length === 0) return below.jobs;
    if (!below.source) {
      if (below.jobs.length === 1) {
        const job = below.jobs[0]!;
        below.source = { job, awaits: ((job.data as StoredTaskData).wf!.awaits = []) };
      } else {
        const awaits: LinkRef[] = [];
        const id = gatherJobId(follower.id, this.nonce);
        const data: LinkJobData = { root: '', ids: flattenShape(below.shape), awaits };
        below.source = { job: this.link(GATHER_JOB, id, follower.queue, data, below.jobs), awaits };
      }
      return [below.source.job];
    }
    const { job: source, awaits } = below.source;
    const ref: LinkRef = { id: awaitJobId(follower.id, this.nonce), queue: follower.queue };
    awaits.push(ref);
    const of: LinkRef = { id: source.opts!.jobId!, queue: source.queueName as QueueKind };
    const wait = this.link(AWAIT_JOB, ref.id, ref.queue, { root: '', of });
    wait.opts!.delay = AWAIT_MIN_WAIT_MS;
    return [wait];
  }

  /** A hidden job, on the queue of the task it feeds (whose workers are then there to run it). */
  private link(name: string, id: string, queue: QueueKind, data: LinkJobData, children?: FlowJob[]): FlowJob {
    this.links.push(data);
    return {
      name,
      queueName: queue,
      data,
      opts: { jobId: id, attempts: LINK_ATTEMPTS, ignoreDependencyOnFailure: true },
      ...(children ? { children } : {}),
    };
  }

  /** Records a problem; what is returned stands in for the node so that the rest is still checked. */
  private refuse(field: string, message: string): Built {
    this.issues.push({ field: field || '(root)', message });
    return STAND_IN;
  }
}

/**
 * Checks a workflow whole and builds its flows; throws naming every problem by
 * its path (`chain[2].group[1].mode`; WorkflowInvalidError, WorkflowTooLargeError) when anything is wrong, so nothing of it is queued.
 */
export function compileWorkflow(tree: WorkflowNode, limits: WorkflowLimits): CompiledWorkflow {
  const tasks = countTasks(tree);
  if (tasks > limits.maxTasks) throw new WorkflowTooLargeError(tasks, limits.maxTasks);
  const depth = workflowDepth(tree);
  if (depth > limits.maxDepth)
    throw new WorkflowInvalidError([
      {
        field: '(root)',
        message: `is nested ${depth} deep, over the limit of ${limits.maxDepth} (AIECS_WORKFLOW_MAX_DEPTH)`,
      },
    ]);
  const compiler = new Compiler(limits);
  const built = compiler.build(tree, '', undefined, 0);
  if (compiler.issues.length) throw new WorkflowInvalidError(compiler.issues);
  // The root is the flow's root: a chain's last step, a chord's body, a top group's first member.
  const rootId = built.outputs[0]!.opts!.jobId!;
  for (const { wf } of compiler.jobs) wf.root = rootId;
  for (const link of compiler.links) link.root = rootId;
  (built.outputs[0]!.data as StoredTaskData).wf!.ids = built.ids;
  return { flows: built.outputs, rootId, ids: built.ids, members: compiler.members };
}
