/**
 * The requests of Flower's REST API as aiecs reads them (zod: what the handlers parse with, so
 * errors name the parameter) and the routes' schemas for the OpenAPI document, under the `flower`
 * tag. Parameters are Flower 2.0's (flower/api/tasks.py, workers.py, control.py), spelled and
 * parsed as Flower does: booleans as Python's strtobool, dates in Flower's own formats (naive,
 * read as UTC) or ISO 8601 with an offset.
 */
import { z } from 'zod';
import { taskIdSchema, timeLimitSeconds } from '../core/submission.js';
import { MAX_DELAY_S } from '../core/task.js';
import { CELERY_STATES } from './flower-format.js';
import { errors, reply } from './schemas.js';

/** Python's strtobool, which Flower's get_argument(type=bool) uses. */
const TRUE = ['y', 'yes', 't', 'true', 'on', '1'];
const FALSE = ['n', 'no', 'f', 'false', 'off', '0'];
const flag = z
  .string()
  .transform((text, ctx) => {
    const value = text.toLowerCase();
    if (TRUE.includes(value)) return true;
    if (FALSE.includes(value)) return false;
    ctx.addIssue({ code: 'custom', message: 'must be true or false (or yes/no, on/off, 1/0)' });
    return z.NEVER;
  })
  .default(false);

/** A naive date-time (Flower's formats, seconds and fraction optional), read as UTC; or ISO 8601 with an offset. */
const NAIVE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?$/;
function dateMs(text: string): number | undefined {
  const m = NAIVE.exec(text);
  if (m) {
    const [, y, mo, d, h, mi, s, frac] = m;
    const ms = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, s ? +s : 0, frac ? Math.round(+frac * 1000) : 0);
    return Number.isNaN(ms) ? undefined : ms;
  }
  if (!z.iso.datetime({ offset: true }).safeParse(text).success) return undefined;
  return Date.parse(text);
}
const DATE_EXPECTED = "must be a date like '2026-01-31 12:00' (UTC) or ISO 8601 with an offset";
const dateText = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    const ms = dateMs(text);
    if (ms !== undefined) return ms;
    ctx.addIssue({ code: 'custom', message: DATE_EXPECTED });
    return z.NEVER;
  });

/** A date as the ISO 8601 text aiecs's submit options take. */
const isoDate = dateText.transform((ms) => new Date(ms).toISOString());

/** Flower sends numbers from forms as text (`float(options['countdown'])`): both are taken. */
const numberish = z.union([
  z.number(),
  z
    .string()
    .regex(/^-?\d+(\.\d+)?$/, 'must be a number')
    .transform(Number),
]);

const SORT_KEYS = ['name', 'state', 'received', 'started'] as const;
export type FlowerSortKey = (typeof SORT_KEYS)[number];

export const FLOWER_MAX_LIMIT = 1000;
export const FLOWER_MAX_OFFSET = 10_000;

/** `GET /api/tasks` (Flower's `search` is not supported: refused as an unknown parameter). */
export const flowerTasksQuerySchema = z.strictObject({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(FLOWER_MAX_LIMIT)
    .default(100)
    .describe('at most this many tasks'),
  offset: z.coerce.number().int().min(0).max(FLOWER_MAX_OFFSET).default(0).describe('skip the first n'),
  workername: z.string().min(1).max(256).optional().describe('only tasks run by this worker (All: any)'),
  taskname: z.string().min(1).max(256).optional().describe('only tasks of this Celery task name (All: any)'),
  state: z
    .enum([...CELERY_STATES, 'All'])
    .optional()
    .describe('only tasks in this Celery state (All: any)'),
  received_start: dateText.optional().describe("received after: '%Y-%m-%d %H:%M' (UTC) or ISO 8601"),
  received_end: dateText.optional().describe("received before: '%Y-%m-%d %H:%M' (UTC) or ISO 8601"),
  sort_by: z
    .enum([...SORT_KEYS, ...SORT_KEYS.map((k) => `-${k}` as const)])
    .optional()
    .describe('name, state, received or started; a leading - sorts descending'),
});

/** `GET /api/workers`; `timeout` is aiecs's: seconds the workers get to answer (default 1). */
export const flowerWorkersQuerySchema = z.strictObject({
  refresh: flag.describe('accepted for Flower clients: aiecs always asks the workers now'),
  status: flag.describe('only whether each worker is alive'),
  workername: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .describe('only this worker (404 when no live worker has the name)'),
  timeout: z.coerce.number().min(0.05).max(30).default(1).describe('seconds the workers get to answer'),
});

/** `GET /api/task/result/:id`. */
export const flowerResultQuerySchema = z.strictObject({
  timeout: z.coerce
    .number()
    .min(0)
    .max(300)
    .optional()
    .describe('seconds to wait for the task to end before answering its state'),
});

const SIGNALS = ['TERM', 'KILL', 'INT', 'QUIT', 'HUP', 'USR1', 'USR2'];
/** `POST /api/task/revoke/:id`. */
export const flowerRevokeQuerySchema = z.strictObject({
  terminate: flag.describe('cancel the task even when it is running (else only a task not started yet)'),
  signal: z
    .string()
    .refine((s) => SIGNALS.includes(s.toUpperCase().replace(/^SIG/, '')), {
      message: `must be one of ${SIGNALS.map((s) => `SIG${s}`).join(', ')}`,
    })
    .optional()
    .describe(
      "accepted for Flower clients; aiecs's cancel aborts the task's signal, then kills its child process after a grace period",
    ),
});

/** `POST /api/task/async-apply/:name`: `args`, `kwargs` and the apply_async options aiecs has. */
export const flowerApplyBodySchema = z.strictObject({
  args: z.array(z.unknown()).optional().describe("positional arguments, the seed's signature"),
  kwargs: z.record(z.string(), z.unknown()).optional().describe('keyword arguments'),
  task_id: taskIdSchema.optional().describe("the task's id (as the seed's task_id argument)"),
  countdown: numberish
    .pipe(z.number().min(0).max(MAX_DELAY_S))
    .optional()
    .describe('seconds before it may run'),
  eta: isoDate.optional().describe("earliest start: '%Y-%m-%d %H:%M:%S.%f' (UTC) or ISO 8601"),
  expires: z
    .union([numberish.pipe(z.number().min(0).max(MAX_DELAY_S)), isoDate])
    .optional()
    .describe('seconds from now, or a date: not started by then, it ends REVOKED'),
  priority: z.number().int().min(0).max(255).optional().describe('higher runs first; clamped to 1-100'),
  time_limit: timeLimitSeconds.optional(),
  soft_time_limit: timeLimitSeconds.optional(),
});
export type FlowerApplyBody = z.output<typeof flowerApplyBodySchema>;

type JsonSchema = Record<string, unknown>;
const json = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
const tags = ['flower'];
const taskIdParam = {
  type: 'object',
  properties: { id: { type: 'string', description: 'the task id, or the Celery id of a bridged task' } },
  required: ['id'],
};
const flowerTask = {
  type: 'object',
  description:
    "a task as Flower shows one (Celery's Task.as_dict(): uuid, name, state, received, started, …)",
};
const taskIdState = (extra: JsonSchema = {}) => ({
  type: 'object',
  properties: { 'task-id': { type: 'string' }, state: { type: 'string' }, ...extra },
});

/** The routes' schemas (OpenAPI; requests are parsed by the zod schemas above). */
export const flowerRouteSchemas = {
  workers: {
    summary:
      "Flower's worker list: each live worker's stats, active_queues, registered, active, conf (admins)",
    tags,
    querystring: json(flowerWorkersQuerySchema),
    response: {
      '200': reply({ type: 'object', additionalProperties: { type: ['object', 'boolean'] } }),
      ...errors(400, 401, 403, 404, 429, 503),
    },
  },
  tasks: {
    summary:
      "Flower's task list: own tasks (every user's for admins) by task id, newest first unless sort_by",
    tags,
    querystring: json(flowerTasksQuerySchema),
    response: {
      '200': reply({ type: 'object', additionalProperties: flowerTask }),
      ...errors(400, 401, 429, 503),
    },
  },
  types: {
    summary: "the Celery task names aiecs runs (the seed's execute_task and execute_heavy_task)",
    tags,
    response: {
      '200': reply({
        type: 'object',
        properties: { 'task-types': { type: 'array', items: { type: 'string' } } },
      }),
      ...errors(401, 429),
    },
  },
  queueLengths: {
    summary: 'tasks waiting in each queue (admins)',
    tags,
    response: {
      '200': reply({
        type: 'object',
        properties: {
          active_queues: {
            type: 'array',
            items: {
              type: 'object',
              properties: { name: { type: 'string' }, messages: { type: 'integer' } },
            },
          },
        },
      }),
      ...errors(401, 403, 429, 503),
    },
  },
  info: {
    summary: 'one task as Flower shows it (its owner or an admin)',
    tags,
    params: taskIdParam,
    response: { '200': reply(flowerTask), ...errors(401, 404, 429, 503) },
  },
  result: {
    summary:
      "a task's Celery state, and its result once ready (SUCCESS: {status, task, result}); an unknown id is PENDING, as in Celery",
    tags,
    params: taskIdParam,
    querystring: json(flowerResultQuerySchema),
    response: {
      '200': reply(taskIdState({ result: {}, traceback: { type: ['string', 'null'] } })),
      ...errors(400, 401, 429, 503),
    },
  },
  asyncApply: {
    summary: "submit execute_task or execute_heavy_task with Celery's args and kwargs (the seed's signature)",
    tags,
    params: {
      type: 'object',
      properties: {
        name: {
          type: 'string',
          enum: ['aiecs.tasks.worker.execute_task', 'aiecs.tasks.worker.execute_heavy_task'],
        },
      },
      required: ['name'],
    },
    body: json(flowerApplyBodySchema),
    response: { '200': reply(taskIdState()), ...errors(400, 401, 403, 404, 409, 413, 422, 429, 503) },
  },
  revoke: {
    summary: 'revoke a task: one not started never runs; with terminate=true a running one is cancelled too',
    tags,
    params: taskIdParam,
    querystring: json(flowerRevokeQuerySchema),
    response: {
      '200': reply({ type: 'object', properties: { message: { type: 'string' } } }),
      ...errors(400, 401, 404, 429, 503),
    },
  },
};
