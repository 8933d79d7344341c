/** `aiecs submit`: build a wire request from flags, submit it, optionally wait for the end. */
import type { Command } from 'commander';
import type { QueueKind, TaskRecord } from '../core/task.js';
import type { WireSubmitOptions } from '../core/submission.js';
import { FAST_QUEUE, HEAVY_QUEUE, TaskStatus, isTerminal } from '../core/task.js';
import { WaitTimeoutError } from '../core/errors.js';
import type { TaskClient } from './task-client.js';
import { withClient } from './client.js';
import type { GlobalOptions } from './options.js';
import { UsageError, parseJsonObject } from './options.js';
import { formatRecord, jsonLine } from './output.js';

export interface SubmitFlags {
  /** Required unless `template` is given (commands.ts). */
  mode?: string;
  service?: string;
  task?: string;
  template?: string;
  input: string;
  context?: string;
  user: string;
  taskId?: string;
  step?: number;
  heavy?: boolean;
  priority?: number;
  countdown?: number;
  eta?: string;
  expires?: number | string;
  timeLimit?: number;
  softTimeLimit?: number;
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

/**
 * The wire request and options the flags describe; throws UsageError for bad JSON. With
 * --template, the template names the method, and the queue is its own unless --heavy is given.
 */
export function buildSubmission(flags: SubmitFlags): {
  queue: QueueKind | undefined;
  template?: string;
  request: Record<string, unknown>;
  options: WireSubmitOptions;
} {
  if (flags.template !== undefined && (flags.mode ?? flags.service ?? flags.task) !== undefined)
    throw new UsageError('--template names the service method: leave out --mode, --service and --task');
  const request: Record<string, unknown> =
    flags.template === undefined
      ? { task_name: flags.task, user_id: flags.user, mode: flags.mode, service: flags.service }
      : { user_id: flags.user };
  request.input_data = parseJsonObject('--input', flags.input);
  if (flags.context !== undefined) request.context = parseJsonObject('--context', flags.context);
  if (flags.taskId !== undefined) request.task_id = flags.taskId;
  if (flags.step !== undefined) request.step = flags.step;
  const options: WireSubmitOptions = {};
  if (flags.priority !== undefined) options.priority = flags.priority;
  if (flags.countdown !== undefined) options.countdown = flags.countdown;
  if (flags.eta !== undefined) options.eta = flags.eta;
  if (flags.expires !== undefined) options.expires = flags.expires;
  if (flags.timeLimit !== undefined) options.time_limit = flags.timeLimit;
  if (flags.softTimeLimit !== undefined) options.soft_time_limit = flags.softTimeLimit;
  if (flags.template !== undefined)
    return { queue: flags.heavy ? HEAVY_QUEUE : undefined, template: flags.template, request, options };
  return { queue: flags.heavy ? HEAVY_QUEUE : FAST_QUEUE, request, options };
}

/** Exit code for a finished task: 0 only when it completed. */
export function exitCodeFor(record: TaskRecord): number {
  return record.status === TaskStatus.COMPLETED ? 0 : 1;
}

/**
 * Waits for the end with `handle.get()` (one event, no polling); on a terminal a progress bar
 * on stderr follows the record, read every 200 ms for display only.
 */
async function waitWithProgress(
  client: TaskClient,
  taskId: string,
  queue: QueueKind,
  timeoutS: number | undefined,
  showBar: boolean,
): Promise<TaskRecord> {
  if (!showBar) return client.wait(taskId, queue, timeoutS);
  // Only a terminal shows the bar: no other command pays for loading it.
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { format: ' {bar} {percentage}% | {status} | {message}', hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(100, 0, { status: TaskStatus.PENDING, message: 'queued' });
  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    client
      .get(taskId)
      .then((record) => {
        if (record && !isTerminal(record.status)) {
          bar.update(Math.round(record.progress), { status: record.status, message: record.message });
        }
      })
      .catch(() => undefined) // a missed frame is fine; the wait below decides the outcome
      .finally(() => (polling = false));
  }, 200);
  try {
    const record = await client.wait(taskId, queue, timeoutS);
    bar.update(Math.round(record.progress), { status: record.status, message: record.message });
    return record;
  } finally {
    clearInterval(timer);
    bar.stop();
  }
}

/** The `aiecs submit` action. */
export async function submitAction(flags: SubmitFlags, cmd: Command): Promise<void> {
  // Flags first: a usage error should not wait for the store to open.
  const { queue, template, request, options } = buildSubmission(flags);
  await withClient(cmd.optsWithGlobals<GlobalOptions>(), async (client) => {
    // Refuse before submitting: the wait could never end.
    if (flags.wait && client.cannotWait) throw new UsageError(`--wait: ${client.cannotWait}`);
    const submitted = await client.submit(queue, request, options, template);
    if (!flags.wait) {
      console.log(flags.json ? jsonLine(submitted) : submitted.task_id);
      return;
    }
    let record: TaskRecord;
    try {
      record = await waitWithProgress(
        client,
        submitted.task_id,
        submitted.queue,
        flags.timeout,
        Boolean(process.stderr.isTTY),
      );
    } catch (error) {
      if (!(error instanceof WaitTimeoutError)) throw error;
      // The task goes on; show where it is and say why we stopped.
      const current = await client.get(submitted.task_id);
      if (current) console.log(flags.json ? jsonLine(current) : formatRecord(current));
      console.error(`aiecs: ${error.message}`);
      process.exitCode = 1;
      return;
    }
    console.log(flags.json ? jsonLine(record) : formatRecord(record));
    process.exitCode = exitCodeFor(record);
  });
}
