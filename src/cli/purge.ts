/** `aiecs purge`: Celery's purge, removing the tasks waiting and delayed in queues; running ones stay. */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { PurgeResult, QueueCounts } from '../engine/queue-admin.js';
import { checkQueues } from '../engine/queue-admin.js';
import { withAdmin } from './inspect.js';
import type { GlobalOptions } from './options.js';
import { UsageError } from './options.js';
import { jsonLine } from './output.js';

export interface PurgeFlags {
  force?: boolean;
  json?: boolean;
}

export interface Terminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream;
}

/** Asks on the terminal; anything but y or yes is a no. */
export async function confirm(question: string, terminal: Terminal): Promise<boolean> {
  const rl = createInterface({ input: terminal.input, output: terminal.output, terminal: false });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function describePurge(results: PurgeResult[]): string {
  const removed = results.reduce((sum, r) => sum + r.waiting + r.delayed, 0);
  const each = results.map((r) => `${r.queue} ${r.waiting} waiting, ${r.delayed} delayed`).join('; ');
  return `purged ${plural(removed, 'task')} (${each}); running tasks are untouched`;
}

/** The `aiecs purge` action. */
export async function purgeAction(
  names: string[],
  flags: PurgeFlags,
  cmd: Command,
  terminal: Terminal = { input: process.stdin, output: process.stderr },
): Promise<void> {
  // Every name is checked first: a typo purges nothing, not the queues named before it.
  const queues = checkQueues(names.length ? names : ['fast_tasks', 'heavy_tasks']);
  await withAdmin(cmd.optsWithGlobals<GlobalOptions>(), 0, async (admin) => {
    if (!flags.force) {
      const counts = (await admin.queues()).filter((c: QueueCounts) => queues.includes(c.queue));
      const total = counts.reduce((sum, c) => sum + c.waiting + c.delayed, 0);
      const where = queues.join(', ');
      if (total === 0) {
        console.log(flags.json ? jsonLine({ purged: [], removed: 0 }) : `nothing to purge in ${where}`);
        return;
      }
      const what = `${plural(total, 'waiting or delayed task')} from ${where}`;
      if (!terminal.input.isTTY)
        throw new UsageError(
          `purge would remove ${what}, and stdin is not a terminal to confirm on; pass --force to purge without asking`,
        );
      if (!(await confirm(`Remove ${what}? Running tasks are not touched.`, terminal))) {
        console.error('aiecs: nothing purged');
        process.exitCode = 1;
        return;
      }
    }
    const results = await admin.purge(queues);
    const removed = results.reduce((sum, r) => sum + r.waiting + r.delayed, 0);
    console.log(flags.json ? jsonLine({ purged: results, removed }) : describePurge(results));
  });
}

/** The `aiecs pause` and `aiecs resume` actions. */
export async function pauseAction(
  names: string[],
  paused: boolean,
  flags: { json?: boolean },
  cmd: Command,
): Promise<void> {
  const queues = checkQueues(names);
  await withAdmin(cmd.optsWithGlobals<GlobalOptions>(), 0, async (admin) => {
    const results = await admin.pause(queues, paused);
    console.log(
      flags.json
        ? jsonLine({ queues: results })
        : results.map((r) => `${r.queue}: ${r.paused ? 'paused' : 'running'}`).join('\n'),
    );
  });
}
