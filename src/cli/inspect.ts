/** `aiecs inspect`: Celery's inspect verbs, answered by the live workers or read from the queues. */
import type { Command } from 'commander';
import { createLogger } from '../core/logger.js';
import type { InspectAnswer, InspectVerb, QueueAnswers, WorkerAnswers } from '../engine/admin.js';
import type { QueueListing } from '../engine/queue-admin.js';
import type { TaskRunInfo, WorkerStats } from '../worker/remote-control.js';
import type { AdminClient } from './admin-client.js';
import { openAdminClient } from './admin-client.js';
import type { GlobalOptions } from './options.js';
import { clientLogLevel, cliConfig } from './options.js';
import { jsonLine } from './output.js';

export interface AdminFlags {
  worker?: string;
  timeout: number;
  json?: boolean;
}

export type InspectFlags = AdminFlags & { limit: number };

/** Opens the admin client for a command's global flags, runs `fn`, and always closes it. */
export async function withAdmin<T>(
  globals: GlobalOptions,
  timeoutS: number,
  fn: (admin: AdminClient) => Promise<T>,
): Promise<T> {
  const config = cliConfig(globals);
  const admin = await openAdminClient({
    config,
    logger: createLogger(clientLogLevel(config)),
    timeoutMs: timeoutS * 1000,
    ...(globals.namespace !== undefined ? { namespace: globals.namespace } : {}),
  });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** The lines every worker verb ends with: who did not answer, or that no worker is live. */
export function answersFooter(answers: WorkerAnswers): string[] {
  const asked = Object.keys(answers.workers).length + Object.keys(answers.errors).length;
  const lines: string[] = [];
  if (asked === 0 && answers.no_reply.length === 0) lines.push('no live workers');
  if (answers.no_reply.length)
    lines.push(`no reply within ${answers.timeout_s} s from: ${answers.no_reply.join(', ')}`);
  return lines;
}

/** Exit 1 when a live worker did not answer or refused, or none is live: a script can tell. */
export function answersExitCode(answers: WorkerAnswers): number {
  const answered = Object.keys(answers.workers).length;
  return answers.no_reply.length || Object.keys(answers.errors).length || answered === 0 ? 1 : 0;
}

function taskLine(t: TaskRunInfo): string {
  return `   ${t.task_id}  ${t.mode}/${t.service}.${t.task_name}  ${t.queue}  user ${t.user_id}  attempt ${t.attempt}  running ${seconds(t.runtime_ms)}`;
}

function statsLines(s: WorkerStats): string[] {
  const lines = [`   pid ${s.pid} on ${s.hostname}, version ${s.version}, up ${s.uptime_s} s`];
  for (const [queue, pool] of Object.entries(s.pools)) {
    if (!pool) continue;
    const children = pool.children?.length ? `  children ${pool.children.join(',')}` : '';
    const state = pool.consuming ? 'consuming' : 'not consuming (running tasks finish)';
    lines.push(`   ${queue}  ${pool.kind} x${pool.concurrency}  active ${pool.active}  ${state}${children}`);
  }
  if (Object.keys(s.pools).length === 0) lines.push('   consuming no queue');
  lines.push(
    `   processed ${s.processed}  failed ${s.failed}  abandoned ${s.abandoned} (${s.abandoned_running} still running)`,
    `   memory ${mb(s.rss_bytes)} resident, ${mb(s.heap_used_bytes)} heap  load ${s.loadavg.join(' ')}`,
  );
  return lines;
}

function workerLines(what: WorkerAnswers['what'], id: string, data: unknown): string[] {
  switch (what) {
    case 'ping':
      return [`-> ${id}: pong`];
    case 'active': {
      const tasks = (data as { tasks: TaskRunInfo[] }).tasks;
      return [`-> ${id}: ${tasks.length} active`, ...tasks.map(taskLine)];
    }
    case 'stats':
      return [`-> ${id}`, ...statsLines(data as WorkerStats)];
    case 'registered': {
      const services = (data as { services: Array<{ mode: string; service: string; methods: string[] }> })
        .services;
      return [
        `-> ${id}: ${services.length} services`,
        ...services.map((s) => `   ${s.mode}/${s.service}: ${s.methods.join(', ') || '(execute_task)'}`),
      ];
    }
    default:
      return [`-> ${id}: ${(data as { message?: string }).message ?? 'ok'}`];
  }
}

export function formatWorkerAnswers(answers: WorkerAnswers): string {
  const lines: string[] = [];
  const ids = [...Object.keys(answers.workers), ...Object.keys(answers.errors)].sort();
  for (const id of ids) {
    if (id in answers.errors) lines.push(`-> ${id}: error: ${answers.errors[id]}`);
    else lines.push(...workerLines(answers.what, id, answers.workers[id]));
  }
  return [...lines, ...answersFooter(answers)].join('\n');
}

function listingLines(listing: QueueListing, noun: string): string[] {
  if (listing.total === 0) return [`${listing.queue}: none ${noun}`];
  const lines = [`${listing.queue}: ${listing.total} ${noun}`];
  for (const t of listing.tasks) {
    const when = t.eta ? `  eta ${t.eta}` : '';
    const retry = t.attempts_made > 0 ? `  after ${t.attempts_made} attempt(s)` : '';
    lines.push(
      `   ${t.task_id}  ${t.mode}/${t.service}.${t.task_name}  user ${t.user_id}  priority ${t.priority}${when}${retry}`,
    );
  }
  const more = listing.total - listing.tasks.length;
  if (more > 0) lines.push(`   … and ${more} more (--limit)`);
  return lines;
}

export function formatQueueAnswers(answers: QueueAnswers): string {
  const noun = answers.what === 'scheduled' ? 'scheduled (delayed)' : 'reserved (waiting)';
  if (answers.queues.length === 0) return 'the worker consumes no queue';
  return answers.queues.flatMap((listing) => listingLines(listing, noun)).join('\n');
}

export function formatInspect(answer: InspectAnswer): string {
  return 'queues' in answer ? formatQueueAnswers(answer) : formatWorkerAnswers(answer);
}

/** The `aiecs inspect` action. */
export async function inspectAction(what: InspectVerb, flags: InspectFlags, cmd: Command): Promise<void> {
  await withAdmin(cmd.optsWithGlobals<GlobalOptions>(), flags.timeout, async (admin) => {
    const answer = await admin.inspect(what, {
      timeoutMs: flags.timeout * 1000,
      limit: flags.limit,
      ...(flags.worker !== undefined ? { worker: flags.worker } : {}),
    });
    console.log(flags.json ? jsonLine(answer) : formatInspect(answer));
    if (!('queues' in answer)) process.exitCode = answersExitCode(answer);
  });
}
