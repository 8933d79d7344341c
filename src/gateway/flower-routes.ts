/**
 * Flower 2.0's REST API under `/flower/api` (Flower's own `--url_prefix`: its clients take a
 * base URL), so that Flower scripts work against aiecs unchanged: the same paths, parameters and
 * response shapes (flower-format.ts), on aiecs's tasks and workers and behind aiecs's auth, with
 * the rules of the aiecs route each one maps to:
 *
 * | Flower                                | aiecs source                                   | who                  |
 * |---------------------------------------|------------------------------------------------|----------------------|
 * | GET  /api/workers                     | Admin.workers (stats) + inspect active          | admins (/api/workers) |
 * | GET  /api/tasks                       | AiecsApp.listTasks (the task index)             | own tasks; admins all |
 * | GET  /api/task/info/:id               | AiecsApp.getTask                                | owner or admin        |
 * | GET  /api/task/result/:id             | AiecsApp.getTask, waitFor with `timeout`        | owner or admin        |
 * | POST /api/task/async-apply/:name      | celeryCallToRequest + AiecsApp.submitWire       | as POST /api/tasks    |
 * | POST /api/task/revoke/:id             | AiecsApp.cancel                                 | owner or admin        |
 * | GET  /api/queues/length               | Admin.queues (waiting)                          | admins (/api/queues)  |
 * | GET  /api/task/types                  | the seed's two task names                       | any user              |
 *
 * `<id>` is a task id or the Celery id of a task bridged under another id (the seed's task_id
 * argument): Flower clients know a task by its Celery id (AsyncResult.id), found through the
 * index's alias (Store.taskIdForCelery), and the reply names the task by the id asked with.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  ForbiddenError,
  TaskNotFoundError,
  UnknownCeleryTaskError,
  ValidationError,
  WaitTimeoutError,
  WorkerNotFoundError,
} from '../core/errors.js';
import {
  CELERY_FAST_TASK,
  CELERY_HEAVY_TASK,
  CELERY_TASK_PARAMETERS,
  celeryCallToRequest,
} from '../core/celery-call.js';
import { taskIdSchema, taskRequestSchema, type WireSubmitOptions } from '../core/submission.js';
import type { TaskRecord } from '../core/task.js';
import { MAX_PRIORITY, TASK_ID_MAX_LENGTH, isTerminal, TaskStatus } from '../core/task.js';
import { zodIssues } from '../core/zod-issues.js';
import { Admin } from '../engine/admin.js';
import type { AiecsApp, ListTasksOptions } from '../engine/app.js';
import { isScheduledTaskId } from '../engine/schedules-fired.js';
import type { Store } from '../engine/store.js';
import type { ServiceRegistry } from '../registry/registry.js';
import { ServiceCatalog } from '../registry/service-catalog.js';
import type { Principal, Verifier } from './auth.js';
import {
  celeryNameOf,
  flowerId,
  celeryResult,
  celeryState,
  celeryTraceback,
  flowerTask,
  flowerWorker,
  isReady,
  queueOfCeleryName,
  statusesOf,
  type RunningTask,
} from './flower-format.js';
import {
  flowerApplyBodySchema,
  flowerResultQuerySchema,
  flowerRevokeQuerySchema,
  flowerRouteSchemas as schemas,
  flowerTasksQuerySchema,
  flowerWorkersQuerySchema,
  type FlowerApplyBody,
} from './flower-schema.js';
import type { UserRateLimit } from './rate-limit.js';
import { parseOrThrow } from './schemas.js';
import { principal, publicRecord, secureApiScope } from './api-scope.js';

export interface FlowerRouteDeps {
  app: AiecsApp;
  store: Store;
  verify: Verifier;
  rateLimit: UserRateLimit;
  /** Services accepted besides those live workers list (as POST /api/tasks). */
  registry?: ServiceRegistry;
}

export const FLOWER_PREFIX = '/flower/api';
const TASK_NAMES = [CELERY_FAST_TASK, CELERY_HEAVY_TASK];
/** With sort_by, the newest this many matching tasks are sorted (Flower sorts all it holds in memory). */
export const FLOWER_SORT_WINDOW = 1000;
/** Index pages read for one listing at most (200 tasks each), however sparse the filter. */
const MAX_PAGES = 25;

export function registerFlowerRoutes(fastify: FastifyInstance, deps: FlowerRouteDeps): void {
  const { app, store, verify } = deps;
  const admin = new Admin(app, store);
  const catalog = new ServiceCatalog(
    { listHeartbeats: () => app.bounded('list workers', () => store.listHeartbeats(), { probe: false }) },
    deps.registry,
  );
  fastify.addHook('onClose', async () => admin.close());

  fastify.register(
    async (api) => {
      // Flower reads a body as JSON whatever its content type (json_decode), and its documented
      // revoke sends an empty form body: `curl -d '{"args": …}'` works here as it does there.
      api.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string' },
        (_r, body, done) => {
          try {
            done(null, body === '' ? undefined : JSON.parse(body as string));
          } catch (error) {
            done(error as Error, undefined);
          }
        },
      );
      await secureApiScope(api, { verify, rateLimit: deps.rateLimit, retryAfterS: () => app.retryAfterS });

      const requireAdmin = (request: FastifyRequest, what: string) => {
        if (!principal(request).admin) throw new ForbiddenError(`only admins may ${what}`);
      };
      /**
       * The task `id` names (its task id, else the Celery id it was bridged under) if it is the
       * caller's (or the caller is an admin); another user's looks missing.
       */
      const visible = async (id: string, who: Principal): Promise<TaskRecord | undefined> => {
        const record = (await byTaskId(id)) ?? (await byCeleryId(id));
        return record && (record.user_id === who.userId || who.admin) ? publicRecord(record) : undefined;
      };
      const byTaskId = async (id: string) =>
        taskIdSchema.safeParse(id).success || isScheduledTaskId(id) ? app.getTask(id) : undefined;
      const byCeleryId = async (id: string) => {
        if (id.length > TASK_ID_MAX_LENGTH) return undefined; // never aliased (engine/submit.ts)
        const taskId = await app.bounded('read the task', () => store.taskIdForCelery(id));
        const record = taskId === undefined ? undefined : await app.getTask(taskId);
        // Only the task bridged from this Celery id: defence in depth for the alias.
        return record?.celery_id === id ? record : undefined;
      };
      const visibleOr404 = async (id: string, who: Principal): Promise<TaskRecord> => {
        const record = await visible(id, who);
        if (!record) throw new TaskNotFoundError(id);
        return record;
      };
      const idOf = (request: FastifyRequest) => (request.params as { id: string }).id;

      api.get('/workers', { schema: schemas.workers }, async (request) => {
        requireAdmin(request, 'list workers');
        const query = parseOrThrow(flowerWorkersQuerySchema, request.query);
        const timeoutMs = query.timeout * 1000;
        if (query.status) {
          // Flower: each worker's `alive`. aiecs knows the live ones (their heartbeats).
          const beats = await app.bounded('list workers', () => store.listHeartbeats(), { probe: false });
          const live = beats.filter((b) => query.workername === undefined || b.id === query.workername);
          return Object.fromEntries(live.map((b) => [b.id, true]));
        }
        const named = query.workername !== undefined ? { worker: query.workername } : {};
        const [{ workers }, active] = await app.bounded(
          'inspect workers',
          () =>
            Promise.all([
              admin.workers(timeoutMs),
              admin.inspect('active', { timeoutMs, ...named }) as Promise<{
                workers: Record<string, unknown>;
              }>,
            ]),
          { probe: false },
        );
        const listed = workers.filter((w) => query.workername === undefined || w.id === query.workername);
        if (query.workername !== undefined && listed.length === 0)
          throw new WorkerNotFoundError(
            query.workername,
            workers.map((w) => w.id),
          );
        const now = Date.now();
        return Object.fromEntries(
          listed.map((w) => {
            const running = (active.workers[w.id] as { tasks?: RunningTask[] } | undefined)?.tasks ?? [];
            return [w.id, flowerWorker(w, running, store.kind, now)];
          }),
        );
      });

      api.get('/tasks', { schema: schemas.tasks }, async (request) => {
        const who = principal(request);
        const query = parseOrThrow(flowerTasksQuerySchema, request.query);
        const all = (value: string | undefined) => (value === 'All' ? undefined : value);
        const state = all(query.state);
        const worker = all(query.workername);
        const taskName = all(query.taskname);
        const options: ListTasksOptions = { limit: 200 };
        if (taskName !== undefined) {
          const queue = queueOfCeleryName(taskName);
          if (!queue) return {}; // no aiecs task has another Celery name (Flower: none seen)
          options.queue = queue;
        }
        if (state !== undefined) {
          const statuses = statusesOf(state);
          if (statuses.length === 0) return {};
          if (statuses.length === 1) options.status = statuses[0]!;
        }
        if (query.received_start !== undefined) options.since = query.received_start;
        if (query.received_end !== undefined) options.until = query.received_end;
        const wanted = query.sort_by ? FLOWER_SORT_WINDOW : query.offset + query.limit;
        const found: TaskRecord[] = [];
        for (let page = 0; page < MAX_PAGES && found.length < wanted; page++) {
          const { tasks, next_cursor } = await app.listTasks(who.admin ? undefined : who.userId, options);
          for (const record of tasks) {
            if (state !== undefined && celeryState(record) !== state) continue;
            if (worker !== undefined && record.worker !== worker) continue;
            found.push(record);
          }
          if (!next_cursor) break;
          options.cursor = next_cursor;
        }
        let listed = found.slice(0, wanted);
        if (query.sort_by) listed = sortTasks(listed, query.sort_by);
        listed = listed.slice(query.offset, query.offset + query.limit);
        return Object.fromEntries(listed.map((r) => [flowerId(r), flowerTask(publicRecord(r))]));
      });

      api.get('/task/types', { schema: schemas.types }, async () => ({ 'task-types': TASK_NAMES }));

      api.get('/queues/length', { schema: schemas.queueLengths }, async (request) => {
        requireAdmin(request, 'read the queues');
        const queues = await admin.queues();
        return { active_queues: queues.map((q) => ({ name: q.queue, messages: q.waiting })) };
      });

      api.get('/task/info/:id', { schema: schemas.info }, async (request) => {
        const id = idOf(request);
        const record = await visibleOr404(id, principal(request));
        // Flower's documented example names the id `task-id`; Celery's as_dict() gives `uuid`: both,
        // the id asked with (a Celery id names its task so in Flower).
        return { ...flowerTask(record), uuid: id, 'task-id': id };
      });

      api.get('/task/result/:id', { schema: schemas.result }, async (request) => {
        const id = idOf(request);
        const who = principal(request);
        const { timeout } = parseOrThrow(flowerResultQuerySchema, request.query);
        let record = await visible(id, who);
        // Celery cannot tell an unknown id from a queued task: both are PENDING.
        if (!record) return { 'task-id': id, state: 'PENDING' };
        if (timeout && !isTerminal(record.status)) {
          try {
            record = publicRecord(await app.waitFor(record.task_id, record.queue, { timeout }));
          } catch (error) {
            if (!(error instanceof WaitTimeoutError)) throw error;
            record = (await visible(id, who)) ?? record;
          }
        }
        const state = celeryState(record);
        if (!isReady(state)) return { 'task-id': id, state };
        if (state === 'FAILURE')
          return { 'task-id': id, state, result: celeryResult(record), traceback: celeryTraceback(record) };
        return { 'task-id': id, state, result: celeryResult(record) };
      });

      api.post('/task/async-apply/:name', { schema: schemas.asyncApply }, async (request) => {
        const who = principal(request);
        const name = (request.params as { name: string }).name;
        const queue = queueOfCeleryName(name);
        if (!queue) throw new UnknownCeleryTaskError(name, TASK_NAMES);
        const body = parseOrThrow(flowerApplyBodySchema, request.body ?? {});
        const { request: call } = celeryCallToRequest(name, body.args, body.kwargs);
        const where = argumentNames(body);
        if (body.task_id !== undefined) {
          if (call.task_id !== undefined && call.task_id !== body.task_id)
            throw new ValidationError([
              { field: 'task_id', message: `differs from the task_id argument (${where('task_id')})` },
            ]);
          call.task_id = body.task_id;
        }
        call.user_id ??= who.userId;
        // The request's fields (400), who may submit it (403), whether it can run (422): as POST /api/tasks.
        const parsed = taskRequestSchema.safeParse(call);
        if (!parsed.success)
          throw new ValidationError(
            zodIssues(parsed.error).map((i) => ({ ...i, field: renamed(i.field, where) })),
          );
        if (parsed.data.user_id !== who.userId && !who.admin)
          throw new ForbiddenError(`${where('user_id')}: cannot submit tasks as user ${parsed.data.user_id}`);
        await catalog.check(parsed.data.mode, parsed.data.service, parsed.data.task_name);
        const handle = await app
          .submitWire({ queue, request: call, options: applyOptions(body) })
          .catch((error: unknown) => {
            if (error instanceof ValidationError) throw error.renamed((field) => renamed(field, where));
            throw error;
          });
        if (handle.created) return { 'task-id': handle.id, state: 'PENDING' };
        const record = await visibleOr404(handle.id, who);
        return { 'task-id': handle.id, state: celeryState(record) };
      });

      api.post('/task/revoke/:id', { schema: schemas.revoke }, async (request) => {
        const id = idOf(request);
        const { terminate } = parseOrThrow(flowerRevokeQuerySchema, request.query);
        const record = await visibleOr404(id, principal(request));
        // Celery's revoke: a task not started never runs; a running one stops only with terminate.
        if (!isTerminal(record.status) && (terminate || record.status !== TaskStatus.RUNNING))
          await app.cancel(record.task_id);
        return { message: `Revoked '${id}'` };
      });
    },
    { prefix: FLOWER_PREFIX },
  );
}

/** Where each of the seed's parameters came from in the call, for errors: `args[1]` or `kwargs.user_id`. */
function argumentNames(body: FlowerApplyBody): (parameter: string) => string {
  const given = body.args?.length ?? 0;
  return (parameter) => {
    const i = (CELERY_TASK_PARAMETERS as readonly string[]).indexOf(parameter);
    return i >= 0 && i < given ? `args[${i}]` : `kwargs.${parameter}`;
  };
}

/** A submit error's field as the caller wrote it: `input_data.x` → `args[6].x`, `options.eta` → `eta`. */
function renamed(field: string, where: (parameter: string) => string): string {
  if (field.startsWith('options.')) return field.slice('options.'.length);
  const [head, ...rest] = field.split('.');
  if (!(CELERY_TASK_PARAMETERS as readonly string[]).includes(head!)) return field;
  return [where(head!), ...rest].join('.');
}

/** apply_async's options as aiecs's submit options (Celery's priority clamped to 1–100, as the bridge does). */
function applyOptions(body: FlowerApplyBody): WireSubmitOptions {
  const options: WireSubmitOptions = {};
  if (body.countdown !== undefined) options.countdown = body.countdown;
  if (body.eta !== undefined) options.eta = body.eta;
  if (body.expires !== undefined) options.expires = body.expires;
  if (body.priority !== undefined) options.priority = Math.min(MAX_PRIORITY, Math.max(1, body.priority));
  if (body.time_limit !== undefined) options.time_limit = body.time_limit;
  if (body.soft_time_limit !== undefined) options.soft_time_limit = body.soft_time_limit;
  return options;
}

/** Flower's sort keys over records; a missing time sorts first (ascending), as Python's None-first sort key does. */
function sortTasks(records: TaskRecord[], sortBy: string): TaskRecord[] {
  const descending = sortBy.startsWith('-');
  const key = sortBy.replace(/^-/, '');
  const value = (r: TaskRecord): string | number => {
    if (key === 'name') return celeryNameOf(r.queue);
    if (key === 'state') return celeryState(r);
    const at = key === 'started' ? r.started_at : r.created_at;
    return at ? Date.parse(at) : -Infinity;
  };
  const sorted = [...records].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return descending ? sorted.reverse() : sorted;
}
