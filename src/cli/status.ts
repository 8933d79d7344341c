/** Commands about tasks and workers that already exist: `status`, `cancel` and `workers`. */
import type { Command } from 'commander';
import { TaskNotFoundError } from '../core/errors.js';
import { withClient } from './client.js';
import type { GlobalOptions } from './options.js';
import { formatCancel, formatRecord, formatWorkers, jsonLine } from './output.js';

interface JsonFlag {
  json?: boolean;
}

export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description("print a task's record")
    .argument('<id>', 'task id')
    .option('--json', 'print one JSON line')
    .action(async (id: string, flags: JsonFlag, cmd: Command) => {
      await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
        const record = await client.get(id);
        if (!record) throw new TaskNotFoundError(id);
        console.log(flags.json ? jsonLine(record) : formatRecord(record));
      });
    });

  program
    .command('cancel')
    .description('cancel a task: a pending one never runs, a running one is stopped')
    .argument('<id>', 'task id')
    .option('--json', 'print one JSON line')
    .action(async (id: string, flags: JsonFlag, cmd: Command) => {
      await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
        // Unknown ids reject with TaskNotFoundError ("no task with id …"), exit 1.
        const result = await client.cancel(id);
        console.log(flags.json ? jsonLine(result) : formatCancel(result));
      });
    });

  program
    .command('workers')
    .description('list live workers (from their heartbeats)')
    .option('--json', 'print one JSON line')
    .action(async (flags: JsonFlag, cmd: Command) => {
      await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
        const workers = await client.workers();
        console.log(flags.json ? jsonLine(workers) : formatWorkers(workers));
      });
    });
}
