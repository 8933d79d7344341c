/**
 * What a schedule looks like on the wire (a schedule file's entries, POST /api/schedules): its
 * timing, and a task request exactly as POST /api/tasks takes it (httpTaskSchema, splitTask and
 * the engine's own submission check). A list with one bad entry is refused whole.
 */
import { getNextMillis } from 'bullmq';
import { z } from 'zod';
import { ScheduleInvalidError, ValidationError, type FieldIssue } from '../core/errors.js';
import { zodIssues } from '../core/zod-issues.js';
import { prepareSubmission } from '../core/submission.js';
import type { ScheduleDefinition, ScheduleSpec } from '../engine/schedules.js';
import { SCHEDULE_NAME } from '../engine/schedules.js';
import { httpTaskSchema, splitTask } from './schemas.js';

/** Options that mean nothing for a task fired by a schedule. */
const NOT_FOR_SCHEDULES = {
  task_id: 'a schedule fires a new task (with its own id) every time: leave task_id out',
  countdown: 'a schedule decides when its task runs: leave countdown out',
  eta: 'a schedule decides when its task runs: leave eta out',
  // It would be fixed once, when the schedule is loaded, and expire every later fire.
  expires: 'an expiry time would be fixed when the schedule is loaded: leave expires out',
} as const;

const isoDate = z
  .union([z.iso.datetime({ offset: true }), z.iso.date(), z.date()])
  .transform((v) => new Date(v).toISOString());

export const scheduleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(
        SCHEDULE_NAME,
        'must be 1-64 characters: a letter or _ first, then letters, digits, _ . - (no ":")',
      )
      .describe('unique name; the fired tasks carry it as `schedule`'),
    cron: z.string().min(1).max(256).optional().describe('cron pattern (5 fields, or 6 with seconds)'),
    tz: z.string().min(1).max(64).optional().describe('IANA time zone of the cron pattern (default UTC)'),
    every: z
      .number()
      .min(0.1, 'must be at least 0.1 seconds')
      .max(366 * 86400)
      .optional()
      .describe('seconds between runs'),
    start: isoDate.optional().describe('ISO 8601: no run before it'),
    end: isoDate.optional().describe('ISO 8601: no run after it'),
    limit: z.number().int().min(1).optional().describe('runs at most'),
    paused: z.boolean().optional().describe('kept but fires nothing until resumed'),
    task: z
      .record(z.string(), z.unknown())
      .describe('a task request as POST /api/tasks takes it (heavy, priority, time limits, attempts)'),
  })
  .superRefine((s, ctx) => {
    if ((s.cron === undefined) === (s.every === undefined))
      ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give cron or every (seconds), one of them' });
    if (s.tz !== undefined && s.cron === undefined)
      ctx.addIssue({ code: 'custom', path: ['tz'], message: 'applies to cron only' });
    if (s.tz !== undefined && !validZone(s.tz))
      ctx.addIssue({ code: 'custom', path: ['tz'], message: `unknown time zone ${JSON.stringify(s.tz)}` });
    if (s.cron !== undefined && s.tz !== undefined && !validZone(s.tz)) return;
    if (s.cron !== undefined) {
      const problem = cronProblem(s.cron, s.tz);
      if (problem) ctx.addIssue({ code: 'custom', path: ['cron'], message: problem });
    }
    if (s.start !== undefined && s.end !== undefined && s.end <= s.start)
      ctx.addIssue({ code: 'custom', path: ['end'], message: 'must be after start' });
  });

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** BullMQ's own cron reading (cron-parser), so what passes here is what its scheduler runs. */
function cronProblem(pattern: string, tz: string | undefined): string | undefined {
  try {
    const next = getNextMillis(Date.now(), { pattern, ...(tz !== undefined ? { tz } : {}) });
    return next === undefined ? 'never fires' : undefined;
  } catch (error) {
    return `not a cron pattern (${(error as Error).message})`;
  }
}

/**
 * Checks one schedule: its fields, and its task as POST /api/tasks would (every issue is named
 * `<field>` or `task.<field>`). `defaultUser` stands in for a missing task.user_id (the admin
 * who sends it over HTTP); without one, user_id is required.
 */
export function checkSchedule(raw: unknown, maxInputBytes: number, defaultUser?: string): ScheduleDefinition {
  const parsed = scheduleSchema.safeParse(raw);
  const issues: FieldIssue[] = parsed.success ? [] : zodIssues(parsed.error);
  const rawTask = (raw as { task?: unknown } | null)?.task;
  const task = httpTaskSchema.safeParse(rawTask);
  if (typeof rawTask === 'object' && rawTask !== null) {
    if (!task.success) issues.push(...zodIssues(task.error, 'task'));
    for (const [field, message] of Object.entries(NOT_FOR_SCHEDULES))
      if ((rawTask as Record<string, unknown>)[field] !== undefined)
        issues.push({ field: `task.${field}`, message });
    if (task.success && task.data.user_id === undefined && defaultUser === undefined)
      issues.push({ field: 'task.user_id', message: 'is required: a schedule runs its task as this user' });
  }
  if (issues.length || !parsed.success || !task.success) throw new ScheduleInvalidError(dedupe(issues));
  const { queue, request, options } = splitTask(task.data, defaultUser ?? '');
  try {
    // The engine's own check (input size, time limits), as a submit would make it.
    prepareSubmission(queue, request, options, maxInputBytes);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ScheduleInvalidError(
      error.issues.map((i) => ({ ...i, field: `task.${i.field.replace(/^options\./, '')}` })),
    );
  }
  // As written, with the user it runs as when that was defaulted: listings show whose it is.
  const written = { ...(rawTask as Record<string, unknown>), user_id: request.user_id };
  const spec = { ...parsed.data, task: written } as ScheduleSpec;
  return { spec, queue, request, options };
}

/**
 * Checks a whole schedule file's list: refused whole (ScheduleInvalidError) when any entry is bad,
 * each issue naming the entry (its name where it has a usable one, else its index) and the field.
 */
export function checkScheduleList(
  list: unknown,
  maxInputBytes: number,
  source = 'schedule file',
): ScheduleDefinition[] {
  if (!Array.isArray(list))
    throw new ScheduleInvalidError([{ field: '(root)', message: 'must be a list of schedules' }], source);
  const issues: FieldIssue[] = [];
  const definitions: ScheduleDefinition[] = [];
  const first = new Map<string, number>();
  for (const [i, entry] of list.entries()) {
    const name = (entry as { name?: unknown } | null)?.name;
    const label = typeof name === 'string' && SCHEDULE_NAME.test(name) ? `${name}` : `[${i}]`;
    try {
      definitions.push(checkSchedule(entry, maxInputBytes));
    } catch (error) {
      if (!(error instanceof ScheduleInvalidError)) throw error;
      issues.push(...error.issues.map((x) => ({ field: `${label}.${x.field}`, message: x.message })));
      continue;
    }
    const seen = first.get(name as string);
    if (seen !== undefined)
      issues.push({ field: `[${i}].name`, message: `repeats the name of entry [${seen}]` });
    else first.set(name as string, i);
  }
  if (issues.length) throw new ScheduleInvalidError(issues, source);
  return definitions;
}

function dedupe(issues: FieldIssue[]): FieldIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => !seen.has(i.field) && seen.add(i.field));
}
