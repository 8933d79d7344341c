/**
 * `/api/schedules`, for admins: list (with next run times), add or replace, pause, resume, run
 * now, remove. Registered inside the `/api` plugin, whose hook has verified the token.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ForbiddenError } from '../core/errors.js';
import type { AiecsApp } from '../engine/app.js';
import { Schedules } from '../engine/schedules.js';
import type { Store } from '../engine/store.js';
import { checkSchedule, scheduleSchema } from './schedule-schema.js';
import { errors, reply } from './schemas.js';

export interface ScheduleRouteDeps {
  app: AiecsApp;
  store: Store;
  bodyLimit: number;
}

const json = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

const info = {
  type: 'object',
  description:
    'a schedule: its definition, source (file or api), paused, queue, next_run (ISO 8601, null when paused or ended) and runs so far',
  properties: {
    name: { type: 'string' },
    source: { type: 'string', enum: ['file', 'api'] },
    paused: { type: 'boolean' },
    queue: { type: 'string' },
    next_run: { type: ['string', 'null'] },
    runs: { type: 'integer' },
    task: { type: 'object' },
  },
};
const named = {
  type: 'object',
  properties: { name: { type: 'string', description: 'the schedule name' } },
  required: ['name'],
};
const tags = ['admin'] as const;

export function registerScheduleRoutes(api: FastifyInstance, deps: ScheduleRouteDeps): void {
  const { app } = deps;
  const schedules = new Schedules(deps.store, app.config, app.logger);
  api.addHook('onClose', async () => schedules.close());

  const admin = (request: FastifyRequest) => {
    const who = request.principal;
    if (!who?.admin) throw new ForbiddenError('only admins may manage schedules');
    return who;
  };
  const name = (request: FastifyRequest) => (request.params as { name: string }).name;
  const bounded = <T>(what: string, call: () => Promise<T>) => app.bounded(what, call, { probe: false });

  api.get(
    '/schedules',
    {
      schema: {
        summary: 'list the schedules, with the next run time of each',
        tags,
        response: {
          '200': reply({ type: 'object', properties: { schedules: { type: 'array', items: info } } }),
          ...errors(401, 403, 429, 503),
        },
      },
    },
    async (request) => {
      admin(request);
      return { schedules: await bounded('list schedules', () => schedules.list()) };
    },
  );

  api.post(
    '/schedules',
    {
      bodyLimit: deps.bodyLimit,
      schema: {
        summary:
          "add a schedule, or replace the one of that name (cron with tz, or every N seconds; task as POST /api/tasks takes it, user_id defaulting to the admin's)",
        tags,
        body: json(scheduleSchema),
        response: {
          '201': reply(info, 'added'),
          '200': reply(info, 'replaced'),
          ...errors(401, 403, 413, 422, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const who = admin(request);
      const definition = checkSchedule(request.body, app.config.maxInputBytes, who.userId);
      const result = await bounded('add the schedule', async () => {
        const { created } = await schedules.put(definition, 'api');
        return { created, info: await schedules.get(definition.spec.name) };
      });
      return reply.code(result.created ? 201 : 200).send(result.info);
    },
  );

  api.get(
    '/schedules/:name',
    {
      schema: {
        summary: 'one schedule',
        tags,
        params: named,
        response: { '200': reply(info), ...errors(401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      admin(request);
      return bounded('read the schedule', () => schedules.get(name(request)));
    },
  );

  for (const verb of ['pause', 'resume'] as const)
    api.post(
      `/schedules/:name/${verb}`,
      {
        schema: {
          summary:
            verb === 'pause'
              ? 'pause a schedule: it fires nothing until resumed'
              : 'resume a paused schedule (missed ticks are not replayed)',
          tags,
          params: named,
          response: { '200': reply(info), ...errors(401, 403, 404, 429, 503) },
        },
      },
      async (request) => {
        admin(request);
        return bounded(`${verb} the schedule`, () => schedules.setPaused(name(request), verb === 'pause'));
      },
    );

  api.post(
    '/schedules/:name/run-now',
    {
      schema: {
        summary: "fire a schedule's task now, as one more task with its own id",
        tags,
        params: named,
        response: {
          '202': reply(
            {
              type: 'object',
              properties: {
                task_id: { type: 'string' },
                queue: { type: 'string' },
                schedule: { type: 'string' },
              },
            },
            'queued',
          ),
          ...errors(401, 403, 404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      admin(request);
      const fired = await bounded('run the schedule', () => schedules.runNow(name(request)));
      return reply.code(202).send({ ...fired, schedule: name(request) });
    },
  );

  api.delete(
    '/schedules/:name',
    {
      schema: {
        summary: 'remove a schedule (its tasks already fired stay)',
        tags,
        params: named,
        response: {
          '200': reply({
            type: 'object',
            properties: { name: { type: 'string' }, removed: { type: 'boolean' } },
          }),
          ...errors(401, 403, 404, 429, 503),
        },
      },
    },
    async (request) => {
      admin(request);
      await bounded('remove the schedule', () => schedules.remove(name(request)));
      return { name: name(request), removed: true };
    },
  );
}
