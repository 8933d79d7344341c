/**
 * Template submits on the wire: `POST /api/tasks {"template": "summarize@2", "input_data": {...}}`
 * (and as items of `/api/tasks/batch`), and the listing's shape. A template task is a task request
 * without task_name, mode and service (the template gives them), whose queue is the template's
 * unless `heavy` is given; the options are POST /api/tasks's own.
 */
import { z } from 'zod';
import { TemplateNotFoundError } from '../core/errors.js';
import { TEMPLATE_REF, type TemplateDescription, type TemplateRegistry } from '../core/template-registry.js';
import { submitOptionsSchema, type WireSubmitOptions } from '../core/submission.js';
import { FAST_QUEUE, HEAVY_QUEUE } from '../core/task.js';
import type { WireSubmission } from '../engine/submit.js';
import { errors, httpTaskSchema, reply } from './schemas.js';

export const httpTemplateTaskSchema = httpTaskSchema
  .omit({ task_name: true, mode: true, service: true, heavy: true })
  .extend({
    template: z
      .string()
      .regex(TEMPLATE_REF, 'must be a template name, or name@version (a positive integer)')
      .describe('the template, name@version; a name alone takes its latest version'),
    heavy: z
      .boolean()
      .optional()
      .describe("run on heavy_tasks (true) or fast_tasks (false); default: the template's"),
  });
export type HttpTemplateTask = z.output<typeof httpTemplateTaskSchema>;

/** A body that asks for a template: it has the `template` field (the only way to tell them apart). */
export const isTemplateBody = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && !Array.isArray(body) && 'template' in body;

const OPTION_KEYS: ReadonlySet<string> = new Set(Object.keys(submitOptionsSchema.shape));

/** The engine's template submission from an HTTP template task; the owner defaults to the caller. */
export function splitTemplateTask(task: HttpTemplateTask, userId: string): WireSubmission {
  const { template, heavy, ...fields } = task;
  const request: Record<string, unknown> = {};
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields))
    if (value !== undefined) (OPTION_KEYS.has(key) ? options : request)[key] = value;
  request.user_id ??= userId;
  const item: WireSubmission = { template, request, options: options as WireSubmitOptions };
  if (heavy !== undefined) item.queue = heavy ? HEAVY_QUEUE : FAST_QUEUE;
  return item;
}

const json = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

/** A task body either way: a plain task request, or a template's. */
const eitherTask = { oneOf: [json(httpTaskSchema), json(httpTemplateTaskSchema)] };

/** POST /api/tasks's route schema with template bodies and their 404 (an unknown template or version). */
export function withTemplateBody<S extends { body: unknown; response: Record<string, unknown> }>(
  schema: S,
): S {
  return { ...schema, body: eitherTask, response: { ...schema.response, ...errors(404) } };
}

/** POST /api/tasks/batch's, whose items may be either. */
export function withTemplateItems<
  S extends { body: { properties: { tasks: Record<string, unknown> } }; response: Record<string, unknown> },
>(schema: S): S {
  const tasks = { ...schema.body.properties.tasks, items: eitherTask };
  return {
    ...schema,
    body: { ...schema.body, properties: { ...schema.body.properties, tasks } },
    response: { ...schema.response, ...errors(404) },
  };
}

/** The template a submit names, or TemplateNotFoundError naming the request's field (`tasks[3].template`). */
export function lookupTemplate(
  templates: TemplateRegistry,
  ref: string,
  prefix?: string,
): TemplateDescription {
  try {
    return templates.get(ref);
  } catch (error) {
    if (prefix && error instanceof TemplateNotFoundError) throw error.at(prefix);
    throw error;
  }
}

const templateInfo = {
  type: 'object',
  description: 'a template version: what it runs, its input schema (JSON Schema) and its defaults',
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    ref: { type: 'string', description: 'name@version, as the records of its tasks name it' },
    latest: { type: 'boolean', description: 'the version a submit without @version takes' },
    mode: { type: 'string' },
    service: { type: 'string' },
    task_name: { type: 'string' },
    queue: { type: 'string', enum: [FAST_QUEUE, HEAVY_QUEUE] },
    input_schema: { type: 'object', description: "input_data's JSON Schema" },
    context: { type: 'object', description: 'default context (the request’s keys win)' },
    options: { type: 'object', description: 'default priority, time_limit, soft_time_limit, attempts' },
    description: { type: 'string' },
  },
};

export const templateRouteSchemas = {
  list: {
    summary: 'the task templates this gateway submits by: every version, the latest marked',
    tags: ['tasks'],
    response: {
      '200': reply({ type: 'object', properties: { templates: { type: 'array', items: templateInfo } } }),
      ...errors(401, 429),
    },
  },
} as const;
