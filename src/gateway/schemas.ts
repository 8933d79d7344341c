import { z } from 'zod';
import { ValidationError } from '../core/errors.js';
import type { QueueKind } from '../core/task.js';
import type { WireSubmitOptions } from '../core/submission.js';
import {
  storableText,
  submitOptionsSchema,
  taskRequestSchema,
  wireExpiresSchema,
} from '../core/submission.js';
import { FAST_QUEUE, HEAVY_QUEUE, QUEUE_KINDS, TaskStatus } from '../core/task.js';
import { CONTROL_COMMANDS, INSPECT_VERBS } from '../engine/control.js';
import { zodIssues } from '../core/zod-issues.js';

/** Over HTTP `eta` and `expires` dates are ISO date-time strings; the rest is the engine's own schema. */
const httpOptions = submitOptionsSchema.extend({
  eta: z.iso.datetime({ offset: true }).optional().describe('earliest start, ISO 8601 with offset'),
  expires: wireExpiresSchema
    .optional()
    .describe('seconds from now, or ISO 8601 with offset: not started by then, it ends cancelled (expired)'),
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
  z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;

type JsonSchema = Record<string, unknown>;

/** A route schema's response: its description and its JSON body's schema (or another media type's). */
export const reply = (schema: JsonSchema, description = 'ok', type = 'application/json') => ({
  description,
  content: { [type]: { schema } },
});

const { $schema: _draft, ...errorJson } = json(errorSchema);
/** The error table's one reply shape, a shared schema: `#/components/schemas/ApiError` in the document. */
export const API_ERROR_SCHEMA = {
  $id: 'ApiError',
  description: 'every error reply: a stable code, a message and details (docs/errors.md)',
  ...errorJson,
};
/** The error replies a route can give, each in the error table's shape. */
export const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), reply({ $ref: 'ApiError#' }, 'error')]));

/** The path parameters of a route, each a string unless given. */
const pathParams = (params: Record<string, JsonSchema>) => ({
  type: 'object',
  properties: params,
  required: Object.keys(params),
});

const record = { type: 'object', description: 'a task record (see TaskRecord)' };
const accepted = json(
  z.object({ task_id: z.string(), status: z.string(), queue: z.enum([FAST_QUEUE, HEAVY_QUEUE]) }),
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
const taskId = pathParams({ id: { type: 'string', description: 'the task id' } });
const queueName = pathParams({ name: { type: 'string', enum: [FAST_QUEUE, HEAVY_QUEUE] } });
/** What pause and resume answer. */
const pausedReply = {
  '200': reply({ type: 'object', properties: { queue: { type: 'string' }, paused: { type: 'boolean' } } }),
  ...errors(401, 403, 404, 429, 503),
};
/** Routes without a token (AIECS_METRICS_TOKEN aside). */
const open = { security: [] };

export const OPENAPI_TAGS = [
  { name: 'tasks', description: 'submit, follow, cancel and retry tasks' },
  { name: 'account', description: 'who the token is and what it may run' },
  {
    name: 'admin',
    description: "Celery's inspect and control verbs, the queues and every task's events (admins)",
  },
  { name: 'operations', description: 'health, readiness and metrics' },
  { name: 'flower', description: "Flower 2.0's REST API under /flower/api, on aiecs's tasks and workers" },
] as const;
type Tag = (typeof OPENAPI_TAGS)[number]['name'];

/** What every documented route schema has (test/gateway-openapi.test.ts checks every route). */
interface RouteSchema {
  summary: string;
  tags: readonly [Tag];
  response: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * Every route's schema: what @fastify/swagger generates the OpenAPI document (GET /openapi.json)
 * from. The request parts come from the same zod schemas the handlers parse with (parseOrThrow),
 * which is where requests are validated: the gateway's Fastify compiles these for nothing (see
 * server.ts), so errors keep naming fields as docs/errors.md says and replies go out as built.
 */
export const routeSchemas = {
  submit: {
    summary: 'submit a task',
    tags: ['tasks'],
    body: json(httpTaskSchema, 'input'),
    response: {
      '202': reply(accepted, 'accepted'),
      '200': reply(accepted, 'existing task id'),
      ...errors(400, 401, 403, 409, 413, 422, 429),
    },
  },
  list: {
    summary: 'list own tasks (all tasks for admins), newest first',
    tags: ['tasks'],
    querystring: json(listQuerySchema, 'input'),
    response: {
      '200': reply({
        type: 'object',
        properties: { tasks: { type: 'array', items: record }, next_cursor: { type: 'string' } },
      }),
      ...errors(400, 401, 429),
    },
  },
  submitBatch: {
    summary: `submit up to ${MAX_BATCH} tasks: all accepted or none`,
    tags: ['tasks'],
    body: {
      type: 'object',
      required: ['tasks'],
      properties: { tasks: { type: 'array', maxItems: MAX_BATCH, items: json(httpTaskSchema, 'input') } },
    },
    response: {
      '202': reply(
        {
          type: 'object',
          properties: {
            tasks: { type: 'array', items: accepted },
            group_id: {
              type: 'string',
              description: 'the batch as one group (its first task): GET /api/groups/{id} reads its progress',
            },
          },
        },
        'accepted',
      ),
      ...errors(400, 401, 403, 409, 413, 422, 429),
    },
  },
  task: {
    summary: 'one task',
    tags: ['tasks'],
    params: taskId,
    response: { '200': reply(record), ...errors(401, 404, 429) },
  },
  cancel: {
    summary: 'cancel a pending or running task',
    tags: ['tasks'],
    params: taskId,
    response: { '200': reply({ type: 'object' }), ...errors(401, 404, 429) },
  },
  retry: {
    summary:
      'run a failed, timed_out or cancelled task again under the same id, as a new attempt (owner or admin); its record keeps the ended run in runs',
    tags: ['tasks'],
    params: taskId,
    response: {
      '202': reply(
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
      ...errors(401, 404, 409, 429),
    },
  },
  me: {
    summary: 'who the token is',
    tags: ['account'],
    response: {
      '200': reply({
        type: 'object',
        properties: {
          user_id: { type: 'string' },
          admin: { type: 'boolean' },
          expires_at: { type: ['string', 'null'], description: 'ISO 8601; null without exp' },
        },
      }),
      ...errors(401, 429),
    },
  },
  services: {
    summary: 'the registry: modes, services, methods',
    tags: ['account'],
    response: { '200': reply({ type: 'object' }), ...errors(401, 429) },
  },
  workers: {
    summary:
      'live workers (from their heartbeats), with the figures each gives now over the control channel; answered: false for one that did not answer in time (admins)',
    tags: ['admin'],
    querystring: json(adminTimeoutQuerySchema, 'input'),
    response: {
      '200': reply({
        type: 'object',
        properties: { workers: { type: 'array', items: { type: 'object' } }, no_reply: strings },
      }),
      ...errors(400, 401, 403, 429, 503),
    },
  },
  control: {
    summary:
      "Celery's control verbs for one worker: shutdown, pool-resize, cancel-consumer, add-consumer (admins)",
    tags: ['admin'],
    params: pathParams({ name: { type: 'string', description: 'the worker id' } }),
    body: json(controlBodySchema, 'input'),
    response: {
      '200': reply({
        type: 'object',
        properties: { worker: { type: 'string' }, command: { type: 'string' }, message: { type: 'string' } },
      }),
      ...errors(400, 401, 403, 404, 409, 429, 503, 504),
    },
  },
  inspect: {
    summary:
      "Celery's inspect verbs: active, stats, ping and registered are answered by the live workers; scheduled (delayed) and reserved (waiting) list the queues' tasks (admins)",
    tags: ['admin'],
    params: pathParams({ what: { type: 'string', enum: [...INSPECT_VERBS] } }),
    querystring: json(inspectQuerySchema, 'input'),
    response: {
      '200': reply({
        oneOf: [
          answers,
          {
            type: 'object',
            properties: { what: { type: 'string' }, queues: { type: 'array', items: { type: 'object' } } },
          },
        ],
      }),
      ...errors(400, 401, 403, 404, 429, 503),
    },
  },
  queues: {
    summary:
      'tasks per queue and state: waiting, delayed, active, completed, failed; and whether the queue is paused (admins)',
    tags: ['admin'],
    response: {
      '200': reply({ type: 'object', properties: { queues: { type: 'array', items: { type: 'object' } } } }),
      ...errors(401, 403, 429, 503),
    },
  },
  pause: {
    summary:
      'pauses the queue: it keeps taking tasks and its running ones finish, but none starts until it is resumed (admins)',
    tags: ['admin'],
    params: queueName,
    response: pausedReply,
  },
  resume: {
    summary: 'resumes a paused queue (admins)',
    tags: ['admin'],
    params: queueName,
    response: pausedReply,
  },
  purge: {
    summary:
      'removes the waiting and delayed tasks of the queue (their records go too); running tasks are untouched (admins)',
    tags: ['admin'],
    params: queueName,
    response: {
      '200': reply({
        type: 'object',
        properties: {
          queue: { type: 'string' },
          waiting: { type: 'integer' },
          delayed: { type: 'integer' },
          removed: { type: 'integer' },
        },
      }),
      ...errors(401, 403, 404, 429, 503),
    },
  },
  events: {
    summary:
      "server-sent events: every task's state changes (queued, running, retrying, ended), one `data:` line of JSON each, as the `progress` event without its result (admins)",
    tags: ['admin'],
    response: {
      '200': reply({ type: 'string' }, 'an event stream', 'text/event-stream'),
      ...errors(401, 403, 429),
    },
  },
  metrics: {
    summary:
      'Prometheus metrics (text exposition); no JWT, but the bearer token AIECS_METRICS_TOKEN when it is set',
    tags: ['operations'],
    ...open,
    response: { '200': reply({ type: 'string' }, 'the metrics', 'text/plain'), ...errors(401) },
  },
  health: {
    summary: 'alive',
    tags: ['operations'],
    ...open,
    response: { '200': reply({ type: 'object' }) },
  },
  ready: {
    summary: 'store reachable',
    tags: ['operations'],
    ...open,
    response: { '200': reply({ type: 'object' }), '503': reply({ type: 'object' }, 'store unreachable') },
  },
} satisfies Record<string, RouteSchema>;

/** @fastify/swagger's options: the document's frame; its paths come from the route schemas. */
export function openApiOptions(version: string) {
  return {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'aiecs gateway', version },
      tags: [...OPENAPI_TAGS],
      components: {
        securitySchemes: { bearer: { type: 'http' as const, scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearer: [] }],
    },
    // Shared schemas (API_ERROR_SCHEMA) keep their $id as their name under components.schemas.
    refResolver: {
      buildLocalReference: (json: JsonSchema, _baseUri: unknown, _fragment: unknown, i: number) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  };
}
