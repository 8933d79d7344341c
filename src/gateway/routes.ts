import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  ControlRefusedError,
  ForbiddenError,
  RateLimitedError,
  ServiceNotFoundError,
  TaskNotFoundError,
  ValidationError,
  WorkerNoReplyError,
  type FieldIssue,
} from '../core/errors.js';
import type { TaskRecord } from '../core/task.js';
import { taskIdSchema } from '../core/submission.js';
import { Admin, INSPECT_VERBS } from '../engine/admin.js';
import type { AiecsApp, ListTasksOptions } from '../engine/app.js';
import type { Store } from '../engine/store.js';
import type { ServiceRegistry } from '../registry/registry.js';
import { ServiceCatalog } from '../registry/service-catalog.js';
import type { Principal, Verifier } from './auth.js';
import { bearer } from './auth.js';
import type { EventBridge } from './event-bridge.js';
import type { UserRateLimiter } from './rate-limit.js';
import { StateFeed } from './state-feed.js';
import {
  adminTimeoutQuerySchema,
  controlBodySchema,
  httpBatchSchema,
  httpTaskSchema,
  inspectQuerySchema,
  listQuerySchema,
  openApiDocument,
  parseOrThrow,
  splitTask,
  type HttpTask,
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
  /** The gateway's event bridge, which `GET /api/events` follows. */
  bridge?: EventBridge;
  /** Services accepted besides those live workers list (see GatewayOptions.registry). */
  registry?: ServiceRegistry;
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

/**
 * The engine names submit options `options.eta`; over HTTP they are fields of the task itself
 * (`eta`, `tasks[3].eta`): errors name them where the body has them.
 */
function asHttpFields(error: unknown): never {
  if (error instanceof ValidationError)
    throw error.renamed((field) => field.replace(/^((?:tasks\[\d+\]\.)?)options\./, '$1'));
  throw error;
}

/** A record as clients see it: never a stack trace (it shows the server's code and paths). */
function publicRecord(record: TaskRecord): TaskRecord {
  if (!record.error?.stack) return record;
  const { stack: _stack, ...error } = record.error;
  return { ...record, error };
}

export function registerRoutes(fastify: FastifyInstance, deps: RouteDeps): void {
  const { app, store, verify, limiter } = deps;
  // Every store call a request makes is bounded (app.bounded): an outage answers 503 at once.
  // The catalog is advice read before a submit: with the store away it goes by the workers last
  // seen (the submit itself then answers 503), and it never waits on a silent store.
  let lastBeats: Awaited<ReturnType<Store['listHeartbeats']>> = [];
  const catalog = new ServiceCatalog(
    {
      listHeartbeats: () =>
        app
          .bounded('list workers', () => store.listHeartbeats(), { probe: false })
          .then(
            (beats) => (lastBeats = beats),
            (error: unknown) => {
              if ((error as { code?: unknown }).code === 'STORE_UNAVAILABLE') return lastBeats;
              throw error;
            },
          ),
    },
    deps.registry,
  );
  const document = openApiDocument(deps.version);
  // Inspect, control and the queues, for admins (Celery's verbs; `aiecs inspect` on the embedded store).
  const admin = new Admin(app, store);
  const eventStreams = new Set<() => void>();
  fastify.addHook('preClose', async () => {
    for (const end of [...eventStreams]) end();
  });
  fastify.addHook('onClose', async () => admin.close());

  fastify.get('/healthz', async () => ({ status: 'ok' }));
  fastify.get('/readyz', async (_request, reply) => {
    try {
      await app.bounded('check the store', () => store.ping());
      return { status: 'ready', store: store.kind };
    } catch (error) {
      return reply
        .code(503)
        .header('retry-after', String(app.retryAfterS))
        .send({ status: 'unavailable', store: store.kind, error: (error as Error).message });
    }
  });
  fastify.get('/openapi.json', async () => document);

  fastify.register(
    async (api) => {
      // A 503 for an unreachable store says when to try again, as a 429 does.
      api.addHook('onError', async (_request, reply, error) => {
        const e = error as { code?: unknown; details?: { retry_after_s?: unknown } };
        if (e.code === 'STORE_UNAVAILABLE') {
          const after = e.details?.retry_after_s;
          void reply.header('retry-after', String(typeof after === 'number' ? after : app.retryAfterS));
        }
      });
      api.addHook('onRequest', async (request, reply) => {
        request.principal = await verify(bearer(request.headers.authorization));
        const wait = await limiter.check(request.principal.userId);
        if (wait > 0) {
          void reply.header('retry-after', String(wait));
          throw new RateLimitedError('too many requests; slow down', wait);
        }
      });

      /** Who may submit it: a user submits as themselves; an admin as anyone. */
      const authorize = (task: HttpTask, who: Principal, prefix?: string) => {
        if (task.user_id !== undefined && task.user_id !== who.userId && !who.admin) {
          const field = prefix ? `${prefix}.user_id: ` : '';
          throw new ForbiddenError(`${field}cannot submit tasks as user ${task.user_id}`);
        }
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
        const parsed = parseOrThrow(httpTaskSchema, request.body);
        authorize(parsed, who);
        await catalog.check(parsed.mode, parsed.service, parsed.task_name);
        const { queue, request: task, options } = splitTask(parsed, who.userId);
        const handle = await app.submitWire(queue, task, options).catch(asHttpFields);
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
        const item = (i: number) => `tasks[${i}]`;
        // Every item's fields first (400 naming each bad one), then who may submit them (403),
        // then whether they can run (422): each error names the item, e.g. tasks[3].service.
        const parsed: HttpTask[] = [];
        const issues: FieldIssue[] = [];
        for (const [i, raw] of tasks.entries()) {
          try {
            parsed.push(parseOrThrow(httpTaskSchema, raw, item(i)));
          } catch (error) {
            if (!(error instanceof ValidationError)) throw error;
            issues.push(...error.issues);
          }
        }
        if (issues.length) throw new ValidationError(issues, 'invalid batch');
        for (const [i, task] of parsed.entries()) authorize(task, who, item(i));
        const unknown: FieldIssue[] = [];
        let firstUnknown: ServiceNotFoundError | undefined;
        for (const [i, task] of parsed.entries()) {
          try {
            await catalog.check(task.mode, task.service, task.task_name);
          } catch (error) {
            if (!(error instanceof ServiceNotFoundError)) throw error;
            const located = error.at(item(i));
            firstUnknown ??= located;
            unknown.push({ field: String(located.details.field), message: error.message });
          }
        }
        if (firstUnknown) {
          // The message names the first bad item; details.issues lists every one.
          firstUnknown.details.issues = unknown;
          throw firstUnknown;
        }
        const admitted = parsed.map((task) => splitTask(task, who.userId));
        // The engine checks every item, repeated ids and conflicts before it queues anything.
        const handles = await app.submitManyWire(admitted, item).catch(asHttpFields);
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

      api.post('/tasks/:id/retry', async (request, reply) => {
        const record = await visible((request.params as { id: string }).id, principal(request));
        return reply.code(202).send(await app.retry(record.task_id));
      });

      api.get('/tasks', async (request) => {
        const who = principal(request);
        const query = parseOrThrow(listQuerySchema, request.query);
        if (query.user_id !== undefined && query.user_id !== who.userId && !who.admin) {
          throw new ForbiddenError("only admins may list other users' tasks");
        }
        const userId = who.admin ? query.user_id : who.userId;
        const { limit, cursor, status, queue, task_name: taskName, mode, service, since, until } = query;
        const options: ListTasksOptions = { limit };
        Object.assign(
          options,
          Object.fromEntries(
            Object.entries({ cursor, status, queue, taskName, mode, service, since, until }).filter(
              ([, value]) => value !== undefined,
            ),
          ),
        );
        const page = await app.listTasks(userId, options);
        return { ...page, tasks: page.tasks.map(publicRecord) };
      });

      // Who the token is: the dashboard asks once after sign-in.
      api.get('/me', async (request) => {
        const who = principal(request);
        const expires = who.expiresAt === undefined ? null : new Date(who.expiresAt).toISOString();
        return { user_id: who.userId, admin: who.admin, expires_at: expires };
      });

      api.get('/services', async () => ({ services: await catalog.list() }));

      const requireAdmin = (request: FastifyRequest, what: string) => {
        if (!principal(request).admin) throw new ForbiddenError(`only admins may ${what}`);
      };

      // Active counts as the workers give them now, not a heartbeat old.
      api.get('/workers', async (request) => {
        requireAdmin(request, 'list workers');
        const { timeout } = parseOrThrow(adminTimeoutQuerySchema, request.query);
        return app.bounded('list workers', () => admin.workers(timeout * 1000), { probe: false });
      });

      api.post('/workers/:name/control', async (request) => {
        requireAdmin(request, 'control workers');
        const worker = (request.params as { name: string }).name;
        const { command, args, timeout } = parseOrThrow(controlBodySchema, request.body ?? {});
        const answers = await app.bounded(
          `send ${command}`,
          () => admin.controlWorkers(command, args, { worker, timeoutMs: timeout * 1000 }),
          { probe: false },
        );
        if (answers.no_reply.includes(worker)) throw new WorkerNoReplyError(worker, timeout);
        const refused = answers.errors[worker];
        if (refused !== undefined) throw new ControlRefusedError(worker, command, refused);
        return { worker, command, ...(answers.workers[worker] as { message: string }) };
      });

      api.get('/inspect/:what', async (request) => {
        requireAdmin(request, 'inspect workers');
        const raw = (request.params as { what: string }).what;
        const what = INSPECT_VERBS.find((v) => v === raw);
        if (!what)
          throw new ValidationError([
            { field: 'what', message: `must be one of ${INSPECT_VERBS.join(', ')}` },
          ]);
        const query = parseOrThrow(inspectQuerySchema, request.query);
        return app.bounded(
          `inspect ${what}`,
          () =>
            admin.inspect(what, {
              timeoutMs: query.timeout * 1000,
              limit: query.limit,
              ...(query.worker !== undefined ? { worker: query.worker } : {}),
            }),
          { probe: false },
        );
      });

      api.get('/queues', async (request) => {
        requireAdmin(request, 'read the queues');
        return { queues: await admin.queues() };
      });

      for (const verb of ['pause', 'resume'] as const)
        api.post(`/queues/:name/${verb}`, async (request) => {
          requireAdmin(request, `${verb} queues`);
          const [result] = await admin.pause([(request.params as { name: string }).name], verb === 'pause');
          return result!;
        });

      api.post('/queues/:name/purge', async (request) => {
        requireAdmin(request, 'purge queues');
        const [purged] = await admin.purge([(request.params as { name: string }).name]);
        return { ...purged!, removed: purged!.waiting + purged!.delayed };
      });

      // Every task's state changes as server-sent events: `aiecs events` on the embedded store.
      api.get('/events', async (request, reply) => {
        requireAdmin(request, "follow every user's tasks");
        const bridge = deps.bridge;
        if (!bridge) throw new Error('the gateway has no event bridge');
        void reply.hijack();
        const out = reply.raw;
        out.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          'x-accel-buffering': 'no',
        });
        // A first line, so that the client knows it is connected before any task moves.
        out.write(': aiecs events\n\n');
        const feed = new StateFeed(bridge, (event) => {
          const { result: _result, ...change } = event;
          out.write(`data: ${JSON.stringify(change)}\n\n`);
        });
        // Proxies drop a connection that stays silent.
        const keepAlive = setInterval(() => out.write(': keep-alive\n\n'), 15_000);
        const end = () => {
          if (!eventStreams.delete(end)) return;
          clearInterval(keepAlive);
          feed.close();
          out.end();
        };
        eventStreams.add(end);
        out.on('close', end);
      });
    },
    { prefix: '/api' },
  );
}
