/**
 * `aiecs workflow submit FILE.json [--wait]` and `aiecs status ID --tree`: workflows (chain, group,
 * chord) from the command line, as POST /api/workflows and GET /api/tasks/:id/tree take and give them.
 */
import type { Command } from 'commander';
import { WaitTimeoutError } from '../core/errors.js';
import type { QueueKind } from '../core/task.js';
import { TaskStatus, isTerminal } from '../core/task.js';
import { workflowLeaves } from '../core/workflow.js';
import type { WireWorkflowIds, WireWorkflowTree } from '../gateway/workflow-schema.js';
import { withClient } from './client.js';
import type { GlobalOptions } from './options.js';
import { UsageError, cliConfig, parseJsonObject } from './options.js';
import { jsonLine } from './output.js';
import type { TaskClient } from './task-client.js';

export interface WorkflowSubmitFlags {
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

type Leaf<T> = Extract<T, { task_id: string }>;

/** The leaves whose ends end the workflow: a chain's last step, a chord's body, every group member's. */
export function finalLeaves(ids: WireWorkflowIds): Array<Leaf<WireWorkflowIds>> {
  if ('task_id' in ids) return [ids];
  if ('chain' in ids) return finalLeaves(ids.chain[ids.chain.length - 1]!);
  if ('group' in ids) return ids.group.flatMap(finalLeaves);
  return finalLeaves(ids.chord.body);
}

/** Every leaf of a tree, in tree order (a chord's header before its body). */
export function treeLeaves(tree: WireWorkflowTree): Array<Leaf<WireWorkflowTree>> {
  return workflowLeaves(tree);
}

/** The tree for people: one line per node, members indented under their chain, group or chord. */
export function formatTree(tree: WireWorkflowTree, depth = 0): string {
  const pad = '  '.repeat(depth);
  if ('task_id' in tree) {
    const record = tree.task;
    const what = record ? `  ${record.mode}/${record.service}.${record.task_name}` : '';
    const error = record?.error ? `  ${record.error.code}: ${record.error.message}` : '';
    return `${pad}${tree.task_id}  ${tree.status ?? 'removed'}${what}${error}`;
  }
  const under = (nodes: WireWorkflowTree[], d: number) => nodes.map((n) => formatTree(n, d));
  if ('chain' in tree) return [`${pad}chain`, ...under(tree.chain, depth + 1)].join('\n');
  if ('group' in tree) return [`${pad}group`, ...under(tree.group, depth + 1)].join('\n');
  return [
    `${pad}chord`,
    `${pad}  header`,
    ...under(tree.chord.header, depth + 2),
    `${pad}  body`,
    formatTree(tree.chord.body, depth + 2),
  ].join('\n');
}

/** 0 when every member completed; 1 when one ended otherwise; undefined while some still run. */
export function treeExitCode(tree: WireWorkflowTree): number | undefined {
  const statuses = treeLeaves(tree).map((leaf) => leaf.status);
  // A removed member (null) ended long ago: retention removes only ended tasks.
  if (statuses.some((s) => s !== null && !isTerminal(s as TaskStatus))) return undefined;
  return statuses.every((s) => s === TaskStatus.COMPLETED) ? 0 : 1;
}

/** Waits until every final leaf ended; rejects with WaitTimeoutError past `timeoutS` in all. */
async function waitAll(
  client: TaskClient,
  ids: WireWorkflowIds,
  timeoutS: number | undefined,
): Promise<void> {
  const deadline = timeoutS === undefined ? undefined : Date.now() + timeoutS * 1000;
  for (const leaf of finalLeaves(ids)) {
    const left = deadline === undefined ? undefined : Math.max(0, (deadline - Date.now()) / 1000);
    try {
      await client.wait(leaf.task_id, leaf.queue as QueueKind, left);
    } catch (error) {
      // Said for the whole wait, not the member it happened to be on.
      if (error instanceof WaitTimeoutError && timeoutS !== undefined)
        throw new WaitTimeoutError(leaf.task_id, timeoutS);
      throw error;
    }
  }
}

/** The `aiecs workflow submit` action. */
export async function workflowSubmitAction(
  file: string,
  flags: WorkflowSubmitFlags,
  cmd: Command,
): Promise<void> {
  // The file first: a usage error should not wait for the store to open.
  const tree = parseJsonObject('FILE', file === '-' ? '-' : `@${file}`);
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  // The whole tree as the gateway checks it, so a bad file is refused before the store opens.
  const wire = await import('../gateway/workflow-schema.js');
  wire.checkWorkflow(tree, { userId: 'cli', admin: true }, wire.workflowLimits(cliConfig(globals)));
  await withClient(globals, async (client) => {
    if (flags.wait && client.cannotWait) throw new UsageError(`--wait: ${client.cannotWait}`);
    const accepted = await client.submitWorkflow(tree);
    if (!flags.wait) {
      console.log(flags.json ? jsonLine(accepted) : accepted.root_id);
      return;
    }
    try {
      await waitAll(client, accepted.tree, flags.timeout);
    } catch (error) {
      if (!(error instanceof WaitTimeoutError)) throw error;
      // The workflow goes on; show where it is and say why we stopped.
      await printTree(client, accepted.root_id, flags.json);
      console.error(`aiecs: ${error.message}`);
      process.exitCode = 1;
      return;
    }
    const read = await printTree(client, accepted.root_id, flags.json);
    process.exitCode = treeExitCode(read.tree) ?? 1;
  });
}

async function printTree(client: TaskClient, id: string, json: boolean | undefined) {
  const read = await client.tree(id);
  console.log(json ? jsonLine(read) : `workflow ${read.root_id}\n${formatTree(read.tree)}`);
  return read;
}

/** `aiecs status ID --tree`: the workflow the task belongs to; exit 1 once it ended with a failure. */
export async function statusTreeAction(id: string, flags: { json?: boolean }, cmd: Command): Promise<void> {
  await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
    const read = await printTree(client, id, flags.json);
    const code = treeExitCode(read.tree);
    if (code !== undefined) process.exitCode = code;
  });
}
