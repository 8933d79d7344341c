/** Commands about tasks and workers that already exist: `status`, `cancel` and `workers`. */
import type { Command } from 'commander';
import { TaskNotFoundError } from '../core/errors.js';
import { isTerminal } from '../core/task.js';
import { withClient } from './client.js';
import type { GlobalOptions } from './options.js';
import { formatCancel, formatRecord, formatWorkers, jsonLine } from './output.js';
import { exitCodeFor } from './submit.js';

export interface JsonFlag {
  json?: boolean;
}

/** The `aiecs status` action. */
export async function statusAction(id: string, flags: JsonFlag, cmd: Command): Promise<void> {
  await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
    const record = await client.get(id);
    if (!record) throw new TaskNotFoundError(id);
    console.log(flags.json ? jsonLine(record) : formatRecord(record));
    // As `submit --wait` does: a script can tell a task that ended badly; one still going is 0.
    if (isTerminal(record.status)) process.exitCode = exitCodeFor(record);
  });
}

/** The `aiecs cancel` action. */
export async function cancelAction(id: string, flags: JsonFlag, cmd: Command): Promise<void> {
  await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
    // Unknown ids reject with TaskNotFoundError ("no task with id …"), exit 1.
    const result = await client.cancel(id);
    console.log(flags.json ? jsonLine(result) : formatCancel(result));
  });
}

/** The `aiecs retry` action. */
export async function retryAction(id: string, flags: JsonFlag, cmd: Command): Promise<void> {
  await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
    // Not failed: TaskNotRetryableError names the status, exit 1.
    const result = await client.retry(id);
    console.log(
      flags.json ? jsonLine(result) : `${result.task_id}: pending again, attempt ${result.attempt}`,
    );
  });
}

/** The `aiecs workers` action. */
export async function workersAction(flags: JsonFlag, cmd: Command): Promise<void> {
  await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
    const workers = await client.workers();
    console.log(flags.json ? jsonLine(workers) : formatWorkers(workers));
  });
}
