/**
 * The durable task history over HTTP (docs/design.md, "Task history"): `GET /api/history` (a
 * page, newest first, by user, status and time; a non-admin reads only their own),
 * `GET /api/tasks/:id/history` (one task's entries; the owner or an admin; someone else's task
 * reads as a missing one) and `DELETE /api/history?user=U` (an admin erases a user's entries).
 * Registered inside the `/api` plugin, whose hook has verified the token. Where the history is
 * off every route answers 501 HISTORY_DISABLED.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ForbiddenError } from '../core/errors.js';
import { storableText } from '../core/submission.js';
import type { TaskRecord } from '../core/task.js';
import { TaskStatus } from '../core/task.js';
import type { AiecsApp } from '../engine/app.js';
import { HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT } from '../engine/history/task-history.js';
import type { Principal } from './auth.js';
import { errors, parseOrThrow, reply } from './schemas.js';
import { principal } from './api-scope.js';

export interface HistoryRouteDeps {
  app: AiecsApp;
  /** The task's record when `who` may see it; TaskNotFoundError otherwise (as GET /api/tasks/:id). */
  visible: (id: string, who: Principal) => Promise<TaskRecord>;
}

const timeBound = z
  .string()
  .max(64)
  .refine((text) => Number.isFinite(/^\d+$/.test(text) ? Number(text) : Date.parse(text)), {
    message: 'must be an ISO 8601 date or epoch milliseconds',
  });
const user = storableText(z.string().min(1).max(256));

export const historyQuerySchema = z.strictObject({
  user: user.optional().describe("whose entries; a non-admin's own by default (and only)"),
  status: z.enum(Object.values(TaskStatus) as [TaskStatus, ...TaskStatus[]]).optional(),
  since: timeBound.optional().describe('changes at or after: ISO 8601 or epoch ms'),
  until: timeBound.optional().describe('changes at or before: ISO 8601 or epoch ms'),
  cursor: storableText(z.string().max(512)).optional().describe("a page's next_cursor"),
  limit: z.coerce.number().int().min(1).max(HISTORY_MAX_LIMIT).default(HISTORY_DEFAULT_LIMIT),
});

export const historyEraseSchema = z.strictObject({
  user: user.describe('the user whose history is erased'),
});

export function registerHistoryRoutes(api: FastifyInstance, deps: HistoryRouteDeps): void {
  const { app } = deps;

  api.get('/history', { schema: HISTORY_SCHEMAS.list }, async (request) => {
    const who = principal(request);
    const query = parseOrThrow(historyQuerySchema, request.query);
    if (!who.admin && query.user !== undefined && query.user !== who.userId)
      throw new ForbiddenError("only admins may read another user's history");
    const userId = who.admin ? query.user : who.userId;
    return app.history.list({
      ...(userId !== undefined ? { user: userId } : {}),
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(query.since !== undefined ? { since: query.since } : {}),
      ...(query.until !== undefined ? { until: query.until } : {}),
      ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      limit: query.limit,
    });
  });

  api.delete('/history', { schema: HISTORY_SCHEMAS.erase }, async (request) => {
    if (!principal(request).admin) throw new ForbiddenError("only admins may erase a user's history");
    const { user: userId } = parseOrThrow(historyEraseSchema, request.query);
    return { user: userId, ...(await app.history.erase(userId)) };
  });

  api.get('/tasks/:id/history', { schema: HISTORY_SCHEMAS.task }, async (request) => {
    const who = principal(request);
    const id = (request.params as { id: string }).id;
    const entries = await app.history.task(id);
    const shown = who.admin ? entries : entries.filter((e) => e.user_id === who.userId);
    // Nothing of it to show: a task of theirs not recorded yet reads as [], any other as missing.
    if (shown.length === 0) await deps.visible(id, who);
    return { task_id: id, entries: shown };
  });
}

const json = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

const entry = {
  type: 'object',
  description:
    'one state change: task_id, user_id, task_name, mode, service, step, queue, kind (queued, running, progress, completed, failed), status, seq, attempt, progress, message, result (completed), error {code, message}, worker, root_id/parent_id (workflow members), schedule, at, created_at',
  additionalProperties: true,
};
const tags = ['tasks'];

/** The OpenAPI entries of these routes (requests are checked in the handlers, with the zod schemas above). */
export const HISTORY_SCHEMAS = {
  list: {
    summary: "the task history, newest first: a non-admin's own; an admin's by user or everyone's",
    tags,
    querystring: json(historyQuerySchema),
    response: {
      '200': reply({
        type: 'object',
        properties: { items: { type: 'array', items: entry }, next_cursor: { type: 'string' } },
      }),
      ...errors(400, 401, 403, 429, 501, 503),
    },
  },
  erase: {
    summary: "erase a user's task history (admins)",
    tags: ['admin'],
    querystring: json(historyEraseSchema),
    response: {
      '200': reply({
        type: 'object',
        properties: { user: { type: 'string' }, deleted: { type: 'integer' } },
      }),
      ...errors(400, 401, 403, 429, 501, 503),
    },
  },
  task: {
    summary: "a task's history, oldest first (its owner or an admin)",
    tags,
    params: {
      type: 'object',
      properties: { id: { type: 'string', description: 'the task id' } },
      required: ['id'],
    },
    response: {
      '200': reply({
        type: 'object',
        properties: { task_id: { type: 'string' }, entries: { type: 'array', items: entry } },
      }),
      ...errors(401, 404, 429, 501, 503),
    },
  },
};
