/** `aiecs events`: a live tail of every task's state changes (Celery's `events`), one line each. */
import type { Command } from 'commander';
import { isTerminal } from '../core/task.js';
import type { StateChange } from './admin-client.js';
import { withAdmin } from './inspect.js';
import type { GlobalOptions } from './options.js';
import { jsonLine } from './output.js';

export interface EventsFlags {
  json?: boolean;
}

/** `2026-12-04T16:11:25.123Z  running    <task_id>  analyze_text  user=u  attempt=1  started` */
export function formatStateChange(e: StateChange): string {
  const parts = [
    new Date(e.timestamp).toISOString(),
    e.status.padEnd(9),
    e.task_id,
    e.task,
    `user=${e.user_id}`,
    `attempt=${e.attempt}`,
  ];
  // An ended task says why; a retry's message says which attempt failed and that it retries.
  if (e.error_code && isTerminal(e.status)) parts.push(`${e.error_code} ${e.error ?? ''}`.trim());
  else if (e.message) parts.push(e.message);
  // One line each, whatever a message holds.
  return parts.join('  ').replace(/\s*[\r\n]+\s*/g, ' ');
}

/** The `aiecs events` action: runs until SIGINT or SIGTERM. */
export async function eventsAction(flags: EventsFlags, cmd: Command): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await withAdmin(cmd.optsWithGlobals<GlobalOptions>(), 0, (admin) =>
      admin.follow(
        (change) => console.log(flags.json ? jsonLine(change) : formatStateChange(change)),
        stop.signal,
        () => console.error('aiecs events: following task state changes (Ctrl-C to stop)'),
      ),
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
