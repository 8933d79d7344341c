import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, RateLimitedError, TaskNotFoundError, ValidationError } from '../core/errors.js';
import type { QueueKind, TaskRecord, WireSubmitOptions } from '../core/task.js';
import { taskIdSchema } from '../core/submission.js';
import type { AiecsApp } from '../engine/app.js';
import type { Store } from '../engine/store.js';
import { ServiceCatalog } from '../registry/service-catalog.js';
import type { Principal, Verifier } from './auth.js';
import { bearer } from './auth.js';
import type { UserRateLimiter } from './rate-limit.js';
import {
  httpBatchSchema,
  httpTaskSchema,
  listQuerySchema,
  openApiDocument,
  parseOrThrow,
  splitTask,
} from './schemas.js';

export interface RouteDeps {
  app: AiecsApp;
  store: Store;
  verify: Verifier;
  limiter: UserRateLimiter;
  version: string;
  /** Largest task body (bytes): the input limit plus room for the request's other fields. */
  taskBodyLimit: number;
  batchBodyLimit: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

function principal(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route is missing its auth hook');
  return request.principal;
}

/** A record as clients see it: never a stack trace (it shows the server's code and paths). */
function publicRecord(record: TaskRecord): TaskRecord {
  if (!record.error?.stack) return record;
  const { stack: _stack, ...error } = record.error;
  return { ...record, error };
}

export function registerRoutes(fastify: FastifyInstance, deps: RouteDeps): void {
  const { app, store, verify, limiter } = deps;
  const catalog = new ServiceCatalog(store);
  const document = openApiDocument(deps.version);

  fastify.get('/healthz', async () => ({ status: 'ok' }));
  fastify.get('/readyz', async (_request, reply) => {
    try {
      await store.ping();
      return { status: 'ready', store: store.kind };
    } catch (error) {
      return reply
        .code(503)
        .send({ status: 'unavailable', store: store.kind, error: (error as Error).message });
    }
  });
  fastify.get('/openapi.json', async () => document);

  fastify.register(
    async (api) => {
      api.addHook('onRequest', async (request, reply) => {
        request.principal = await verify(bearer(request.headers.authorization));
        const wait = await limiter.check(request.principal.userId);
        if (wait > 0) {
          void reply.header('retry-after', String(wait));
          throw new RateLimitedError('too many requests; slow down', wait);
        }
      });

      /** Validates one HTTP task and checks who may submit it and that it can run. */
      const admit = async (raw: unknown, who: Principal, prefix?: string) => {
        const task = parseOrThrow(httpTaskSchema, raw, prefix);
        if (task.user_id !== undefined && task.user_id !== who.userId && !who.admin) {
          throw new ForbiddenError(`cannot submit tasks as user ${task.user_id}`);
        }
        await catalog.check(task.mode, task.service, task.task_name);
        return splitTask(task, who.userId);
      };

      const visible = async (id: string, who: Principal): Promise<TaskRecord> => {
        const parsed = taskIdSchema.safeParse(id);
        if (!parsed.success) throw new TaskNotFoundError(id);
        const record = await app.getTask(parsed.data);
        // Another user's task answers exactly like a missing one: its existence is not revealed.
        if (!record || (record.user_id !== who.userId && !who.admin)) throw new TaskNotFoundError(id);
        return record;
      };

      api.post('/tasks', { bodyLimit: deps.taskBodyLimit }, async (request, reply) => {
        const who = principal(request);
        const { queue, request: task, options } = await admit(request.body, who);
        const handle = await app.submitWire(queue, task, options);
        if (!handle.created) {
          const record = await visible(handle.id, who);
          return reply
            .code(200)
            .send({ task_id: record.task_id, status: record.status, queue: record.queue });
        }
        return reply.code(202).send({ task_id: handle.id, status: 'pending', queue });
      });

      api.post('/tasks/batch', { bodyLimit: deps.batchBodyLimit }, async (request, reply) => {
        const who = principal(request);
        const { tasks } = parseOrThrow(httpBatchSchema, request.body);
        const admitted: Array<{
          queue: QueueKind;
          request: Record<string, unknown>;
          options: WireSubmitOptions;
        }> = [];
        const issues = [];
        for (const [i, raw] of tasks.entries()) {
          try {
            admitted.push(await admit(raw, who, `tasks[${i}]`));
          } catch (error) {
            if (!(error instanceof ValidationError)) throw error;
            issues.push(...error.issues);
          }
        }
        if (issues.length) throw new ValidationError(issues, 'invalid batch');
        // The engine checks every item, repeated ids and conflicts before it queues anything.
        const handles = await app.submitManyWire(admitted, (i) => `tasks[${i}]`);
        const results = handles.map((h) => ({ task_id: h.id, status: 'pending', queue: h.queue }));
        return reply.code(202).send({ tasks: results });
      });

      api.get('/tasks/:id', async (request) =>
        publicRecord(await visible((request.params as { id: string }).id, principal(request))),
      );

      api.post('/tasks/:id/cancel', async (request) => {
        const record = await visible((request.params as { id: string }).id, principal(request));
        return app.cancel(record.task_id);
      });

      api.get('/tasks', async (request) => {
        const who = principal(request);
        const query = parseOrThrow(listQuerySchema, request.query);
        if (query.user_id !== undefined && query.user_id !== who.userId && !who.admin) {
          throw new ForbiddenError("only admins may list other users' tasks");
        }
        const userId = who.admin ? query.user_id : who.userId;
        const page = await app.listTasks(userId, {
          limit: query.limit,
          ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
          ...(query.status !== undefined ? { status: query.status } : {}),
          ...(query.task_name !== undefined ? { taskName: query.task_name } : {}),
        });
        return { ...page, tasks: page.tasks.map(publicRecord) };
      });

      api.get('/services', async () => ({ services: await catalog.list() }));

      api.get('/workers', async (request) => {
        if (!principal(request).admin) throw new ForbiddenError('only admins may list workers');
        return { workers: await store.listHeartbeats() };
      });
    },
    { prefix: '/api' },
  );
}
