/** `aiecs control`: Celery's control verbs, sent to the live workers over the store's control channel. */
import { InvalidArgumentError, type Command } from 'commander';
import type { ControlArgs, ControlCommand } from '../engine/control.js';
import { checkQueues } from '../engine/queue-admin.js';
import type { AdminFlags } from './inspect.js';
import { answersExitCode, formatWorkerAnswers, withAdmin } from './inspect.js';
import type { GlobalOptions } from './options.js';
import { UsageError, parseConcurrency } from './options.js';
import { jsonLine } from './output.js';

/** The command's argument as the workers take it; a missing or bad one is a usage error. */
export function controlArgs(command: ControlCommand, arg: string | undefined): ControlArgs {
  switch (command) {
    case 'shutdown':
      if (arg !== undefined) throw new UsageError(`shutdown takes no argument (got "${arg}")`);
      return {};
    case 'pool-resize': {
      if (arg === undefined)
        throw new UsageError('pool-resize needs a size: N for every queue, or fast_tasks=N,heavy_tasks=N');
      let sizes: ReturnType<typeof parseConcurrency>;
      try {
        sizes = parseConcurrency(arg);
      } catch (error) {
        if (!(error instanceof InvalidArgumentError)) throw error;
        throw new UsageError(`pool-resize ${arg}: ${error.message.replace(/\.$/, '')}`);
      }
      // `-c 8` style: a bare number is one size for every queue the worker consumes.
      return { concurrency: /^\s*\d+\s*$/.test(arg) ? Number(arg) : sizes };
    }
    case 'cancel-consumer':
    case 'add-consumer': {
      if (arg === undefined) throw new UsageError(`${command} needs a queue: fast_tasks or heavy_tasks`);
      const [queue] = checkQueues([arg]);
      return { queue: queue! };
    }
  }
}

/** The `aiecs control` action. */
export async function controlAction(
  command: ControlCommand,
  arg: string | undefined,
  flags: AdminFlags,
  cmd: Command,
): Promise<void> {
  // Checked before anything is sent: a bad argument reaches no worker.
  const args = controlArgs(command, arg);
  await withAdmin(cmd.optsWithGlobals<GlobalOptions>(), flags.timeout, async (admin) => {
    const answers = await admin.control(command, args, {
      timeoutMs: flags.timeout * 1000,
      ...(flags.worker !== undefined ? { worker: flags.worker } : {}),
    });
    console.log(flags.json ? jsonLine(answers) : formatWorkerAnswers(answers));
    process.exitCode = answersExitCode(answers);
  });
}
