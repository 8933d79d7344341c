import { z } from 'zod';
import { ValidationError } from '../core/errors.js';
import type { QueueKind } from '../core/task.js';
import type { WireSubmitOptions } from '../core/submission.js';
import { storableText, submitOptionsSchema, taskRequestSchema } from '../core/submission.js';
import { FAST_QUEUE, HEAVY_QUEUE, QUEUE_KINDS, TaskStatus } from '../core/task.js';
import { CONTROL_COMMANDS, INSPECT_VERBS } from '../engine/control.js';
import { zodIssues } from '../core/zod-issues.js';

/** Over HTTP `eta` is an ISO date-time string; everything else is the engine's own schema. */
const httpOptions = submitOptionsSchema.extend({
  eta: z.iso.datetime({ offset: true }).optional().describe('earliest start, ISO 8601 with offset'),
});
const OPTION_KEYS = Object.keys(httpOptions.shape) as Array<keyof typeof httpOptions.shape>;

/** POST /api/tasks: the task request, `heavy` to route to heavy_tasks, and submit options. */
export const httpTaskSchema = taskRequestSchema
  .extend({
    user_id: taskRequestSchema.shape.user_id.optional().describe("the owner; defaults to the token's user"),
    heavy: z.boolean().default(false).describe('run on heavy_tasks (process pool)'),
  })
  .extend(httpOptions.shape);
export type HttpTask = z.output<typeof httpTaskSchema>;

export const MAX_BATCH = 1000;
export const httpBatchSchema = z.strictObject({ tasks: z.array(z.unknown()).min(1).max(MAX_BATCH) });

/** A time bound of a list: an ISO 8601 date(-time) or epoch milliseconds, read as epoch ms. */
const timeBound = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
    if (Number.isFinite(ms)) return ms;
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date or epoch milliseconds' });
    return z.NEVER;
  });

export const listQuerySchema = z.strictObject({
  status: z.enum(Object.values(TaskStatus) as [TaskStatus, ...TaskStatus[]]).optional(),
  queue: z.enum([FAST_QUEUE, HEAVY_QUEUE]).optional(),
  task_name: storableText(z.string().max(128)).optional(),
  mode: storableText(z.string().max(128)).optional(),
  service: storableText(z.string().max(128)).optional(),
  since: timeBound.optional().describe('created at or after: ISO 8601 or epoch ms'),
  until: timeBound.optional().describe('created at or before: ISO 8601 or epoch ms'),
  // The store looks these up: text it cannot keep is a 400 here, not its error.
  user_id: storableText(z.string().max(256)).optional().describe('admins only: whose tasks'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: storableText(z.string().max(512)).optional(),
});

/** Seconds the workers get to answer an admin request (Celery's default: 1). */
const timeoutField = z.coerce
  .number()
  .min(0.05)
  .max(30)
  .default(1)
  .describe('seconds the workers get to answer (default 1); those that do not are listed in no_reply');

export const adminTimeoutQuerySchema = z.strictObject({ timeout: timeoutField });

export const inspectQuerySchema = z.strictObject({
  worker: z.string().min(1).max(256).optional().describe('only this worker (its id)'),
  timeout: timeoutField,
  limit: z.coerce
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(100)
    .describe('scheduled, reserved: tasks per queue'),
});

const size = z.number().int().min(1).max(100_000);
export const controlBodySchema = z
  .strictObject({
    command: z.enum(CONTROL_COMMANDS),
    args: z
      .strictObject({
        concurrency: z
          .union([size, z.partialRecord(z.enum(QUEUE_KINDS), size)])
          .optional()
          .describe('pool-resize: one size for every queue the worker consumes, or sizes per queue'),
        queue: z.enum(QUEUE_KINDS).optional().describe('cancel-consumer, add-consumer'),
      })
      .default({}),
    timeout: timeoutField,
  })
  .superRefine((body, ctx) => {
    const needs = (field: 'concurrency' | 'queue') => {
      if (body.args[field] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['args', field],
          message: `${body.command} needs args.${field}`,
        });
    };
    if (body.command === 'pool-resize') needs('concurrency');
    if (body.command === 'cancel-consumer' || body.command === 'add-consumer') needs('queue');
  });

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(zodIssues(result.error, prefix));
  return result.data;
}

/** Splits an HTTP task into the engine's request, options and queue. */
export function splitTask(
  task: HttpTask,
  userId: string,
): { queue: QueueKind; request: Record<string, unknown>; options: WireSubmitOptions } {
  const request: Record<string, unknown> = {};
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(task)) {
    if (value === undefined || key === 'heavy') continue;
    if ((OPTION_KEYS as string[]).includes(key)) options[key] = value;
    else request[key] = value;
  }
  request.user_id ??= userId;
  return { queue: task.heavy ? HEAVY_QUEUE : FAST_QUEUE, request, options: options as WireSubmitOptions };
}

const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) }),
});

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') =>
  z.toJSONSchema(schema, { io, unrepresentable: 'any' });

function errors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      String(s),
      { description: 'error', content: { 'application/json': { schema: json(errorSchema) } } },
    ]),
  );
}

/** The OpenAPI document, generated from the same schemas the handlers validate with. */
export function openApiDocument(version: string): Record<string, unknown> {
  const record = { type: 'object', description: 'a task record (see TaskRecord)' };
  const accepted = z.object({
    task_id: z.string(),
    status: z.string(),
    queue: z.enum([FAST_QUEUE, HEAVY_QUEUE]),
  });
  const body = (schema: z.ZodType) => ({
    required: true,
    content: { 'application/json': { schema: json(schema, 'input') } },
  });
  const ok = (schema: Record<string, unknown>, description = 'ok') => ({
    description,
    content: { 'application/json': { schema } },
  });
  const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];
  const queryParams = (schema: z.ZodObject) =>
    Object.entries(json(schema, 'input').properties as Record<string, { description?: string }>).map(
      ([name, property]) => ({
        name,
        in: 'query',
        schema: property,
        ...(property.description ? { description: property.description } : {}),
      }),
    );
  const strings = { type: 'array', items: { type: 'string' } };
  const answers = {
    type: 'object',
    description:
      "each answering worker's data by its id, the errors of those that refused, and the live workers that did not answer in time",
    properties: {
      what: { type: 'string' },
      workers: { type: 'object', additionalProperties: true },
      errors: { type: 'object', additionalProperties: { type: 'string' } },
      no_reply: strings,
      timeout_s: { type: 'number' },
    },
  };
  const queueName = {
    name: 'name',
    in: 'path',
    required: true,
    schema: { type: 'string', enum: [FAST_QUEUE, HEAVY_QUEUE] },
  };
  return {
    openapi: '3.1.0',
    info: { title: 'aiecs gateway', version },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    security: [{ bearer: [] }],
    paths: {
      '/api/tasks': {
        post: {
          summary: 'submit a task',
          requestBody: body(httpTaskSchema),
          responses: {
            '202': ok(json(accepted), 'accepted'),
            '200': ok(json(accepted), 'existing task id'),
            ...errors(400, 401, 403, 409, 413, 422, 429),
          },
        },
        get: {
          summary: 'list own tasks (all tasks for admins), newest first',
          parameters: Object.entries(
            json(listQuerySchema, 'input').properties as Record<string, unknown>,
          ).map(([name, schema]) => ({
            name,
            in: 'query',
            schema,
          })),
          responses: {
            '200': ok({
              type: 'object',
              properties: { tasks: { type: 'array', items: record }, next_cursor: { type: 'string' } },
            }),
            ...errors(400, 401),
          },
        },
      },
      '/api/tasks/batch': {
        post: {
          summary: `submit up to ${MAX_BATCH} tasks: all accepted or none`,
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['tasks'],
                  properties: {
                    tasks: { type: 'array', maxItems: MAX_BATCH, items: json(httpTaskSchema, 'input') },
                  },
                },
              },
            },
          },
          responses: {
            '202': ok(
              { type: 'object', properties: { tasks: { type: 'array', items: json(accepted) } } },
              'accepted',
            ),
            ...errors(400, 401, 403, 409, 413, 422, 429),
          },
        },
      },
      '/api/tasks/{id}': {
        get: {
          summary: 'one task',
          parameters: idParam,
          responses: { '200': ok(record), ...errors(401, 404) },
        },
      },
      '/api/tasks/{id}/cancel': {
        post: {
          summary: 'cancel a pending or running task',
          parameters: idParam,
          responses: { '200': ok({ type: 'object' }), ...errors(401, 404) },
        },
      },
      '/api/tasks/{id}/retry': {
        post: {
          summary:
            'run a failed, timed_out or cancelled task again under the same id, as a new attempt (owner or admin); its record keeps the ended run in runs',
          parameters: idParam,
          responses: {
            '202': ok(
              {
                type: 'object',
                properties: {
                  task_id: { type: 'string' },
                  status: { type: 'string', const: 'pending' },
                  attempt: { type: 'integer', description: 'the attempt the new run will be' },
                },
              },
              'queued again',
            ),
            ...errors(401, 404, 409),
          },
        },
      },
      '/api/me': {
        get: {
          summary: 'who the token is',
          responses: {
            '200': ok({
              type: 'object',
              properties: {
                user_id: { type: 'string' },
                admin: { type: 'boolean' },
                expires_at: { type: ['string', 'null'], description: 'ISO 8601; null without exp' },
              },
            }),
            ...errors(401),
          },
        },
      },
      '/api/services': {
        get: {
          summary: 'the registry: modes, services, methods',
          responses: { '200': ok({ type: 'object' }), ...errors(401) },
        },
      },
      '/api/workers': {
        get: {
          summary:
            'live workers (from their heartbeats), with the figures each gives now over the control channel; answered: false for one that did not answer in time (admins)',
          parameters: queryParams(adminTimeoutQuerySchema),
          responses: {
            '200': ok({
              type: 'object',
              properties: { workers: { type: 'array', items: { type: 'object' } }, no_reply: strings },
            }),
            ...errors(400, 401, 403, 503),
          },
        },
      },
      '/api/workers/{name}/control': {
        post: {
          summary:
            "Celery's control verbs for one worker: shutdown, pool-resize, cancel-consumer, add-consumer (admins)",
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: body(controlBodySchema),
          responses: {
            '200': ok({
              type: 'object',
              properties: {
                worker: { type: 'string' },
                command: { type: 'string' },
                message: { type: 'string' },
              },
            }),
            ...errors(400, 401, 403, 404, 409, 503, 504),
          },
        },
      },
      '/api/inspect/{what}': {
        get: {
          summary:
            "Celery's inspect verbs: active, stats, ping and registered are answered by the live workers; scheduled (delayed) and reserved (waiting) list the queues' tasks (admins)",
          parameters: [
            {
              name: 'what',
              in: 'path',
              required: true,
              schema: { type: 'string', enum: [...INSPECT_VERBS] },
            },
            ...queryParams(inspectQuerySchema),
          ],
          responses: {
            '200': ok({
              oneOf: [
                answers,
                {
                  type: 'object',
                  properties: {
                    what: { type: 'string' },
                    queues: { type: 'array', items: { type: 'object' } },
                  },
                },
              ],
            }),
            ...errors(400, 401, 403, 404, 503),
          },
        },
      },
      '/api/queues': {
        get: {
          summary:
            'tasks per queue and state: waiting, delayed, active, completed, failed; and whether the queue is paused (admins)',
          responses: {
            '200': ok({
              type: 'object',
              properties: { queues: { type: 'array', items: { type: 'object' } } },
            }),
            ...errors(401, 403, 503),
          },
        },
      },
      ...Object.fromEntries(
        (['pause', 'resume'] as const).map((verb) => [
          `/api/queues/{name}/${verb}`,
          {
            post: {
              summary:
                verb === 'pause'
                  ? 'pauses the queue: it keeps taking tasks and its running ones finish, but none starts until it is resumed (admins)'
                  : 'resumes a paused queue (admins)',
              parameters: [queueName],
              responses: {
                '200': ok({
                  type: 'object',
                  properties: { queue: { type: 'string' }, paused: { type: 'boolean' } },
                }),
                ...errors(401, 403, 404, 503),
              },
            },
          },
        ]),
      ),
      '/api/queues/{name}/purge': {
        post: {
          summary:
            'removes the waiting and delayed tasks of the queue (their records go too); running tasks are untouched (admins)',
          parameters: [queueName],
          responses: {
            '200': ok({
              type: 'object',
              properties: {
                queue: { type: 'string' },
                waiting: { type: 'integer' },
                delayed: { type: 'integer' },
                removed: { type: 'integer' },
              },
            }),
            ...errors(401, 403, 404, 503),
          },
        },
      },
      '/api/events': {
        get: {
          summary:
            "server-sent events: every task's state changes (queued, running, retrying, ended), one `data:` line of JSON each, as the `progress` event without its result (admins)",
          responses: {
            '200': {
              description: 'an event stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...errors(401, 403),
          },
        },
      },
      '/metrics': {
        get: {
          summary:
            'Prometheus metrics (text exposition); no JWT, but the bearer token AIECS_METRICS_TOKEN when it is set',
          security: [],
          responses: {
            '200': { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errors(401),
          },
        },
      },
      '/healthz': { get: { summary: 'alive', security: [], responses: { '200': ok({ type: 'object' }) } } },
      '/readyz': {
        get: {
          summary: 'store reachable',
          security: [],
          responses: { '200': ok({ type: 'object' }), '503': ok({ type: 'object' }, 'store unreachable') },
        },
      },
    },
  };
}
