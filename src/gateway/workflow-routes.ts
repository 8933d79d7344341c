/**
 * Workflows over HTTP (issue 15): `POST /api/workflows` takes a chain / group / chord tree as JSON,
 * checked whole before anything is queued (workflow-schema.ts); `GET /api/tasks/:id/tree` reads the
 * tree a task belongs to with each member's status; `GET /api/groups/:id` reads a group's progress.
 * Registered inside the `/api` plugin, whose hook has verified the token.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TaskNotFoundError } from '../core/errors.js';
import type { TaskRecord } from '../core/task.js';
import type { AiecsApp } from '../engine/app.js';
import { groupProgress } from '../engine/workflow-group.js';
import type { Principal } from './auth.js';
import { errors, reply } from './schemas.js';
import {
  checkServices,
  checkWorkflow,
  taskTree,
  wireIds,
  wireTree,
  workflowLimits,
} from './workflow-schema.js';
import { principal } from './api-scope.js';

export interface WorkflowRouteDeps {
  app: AiecsApp;
  /** The largest body: a batch's (a workflow is up to AIECS_WORKFLOW_MAX_TASKS tasks). */
  bodyLimit: number;
  /** Whether some worker can run a task (the catalog POST /api/tasks asks); 422 otherwise. */
  checkService: (mode: string, service: string, taskName: string) => Promise<void>;
  /** The task's record when `who` may see it; TaskNotFoundError otherwise (as GET /api/tasks/:id). */
  visible: (id: string, who: Principal) => Promise<TaskRecord>;
  /** A record as clients see it (no stack trace). */
  publicRecord: (record: TaskRecord) => TaskRecord;
}

const idOf = (request: FastifyRequest) => (request.params as { id: string }).id;

export function registerWorkflowRoutes(api: FastifyInstance, deps: WorkflowRouteDeps): void {
  const { app } = deps;

  /** The workflow of a task `who` may see. */
  const readTree = async (id: string, who: Principal) => taskTree(app, await deps.visible(id, who));

  api.post(
    '/workflows',
    { schema: WORKFLOW_SCHEMAS.submit, bodyLimit: deps.bodyLimit },
    async (request, reply) => {
      const who = principal(request);
      // The whole tree first (413, 403, 422 by path), then whether its tasks can run (422 by path).
      const checked = checkWorkflow(request.body, who, workflowLimits(app.config));
      await checkServices(checked.leaves, deps.checkService);
      const handle = await app.submitWorkflow(checked.tree);
      return reply.code(202).send({ root_id: handle.id, status: 'pending', tree: wireIds(handle.children) });
    },
  );

  api.get('/tasks/:id/tree', { schema: WORKFLOW_SCHEMAS.tree }, async (request) => {
    const who = principal(request);
    const found = await readTree(idOf(request), who);
    const show = (r: TaskRecord) => (r.user_id === who.userId || who.admin ? deps.publicRecord(r) : null);
    return { root_id: found.root_id, tree: wireTree(found.tree, show) };
  });

  api.get('/groups/:id', { schema: WORKFLOW_SCHEMAS.group }, async (request) => {
    const id = idOf(request);
    const found = await readTree(id, principal(request));
    const progress = found.root_id === id ? groupProgress(found) : undefined;
    // Only a group's own id (its root) names it; a member's id, or a chain's, is no group.
    if (!progress) throw new TaskNotFoundError(id);
    return progress;
  });
}

const taskId = {
  type: 'object',
  properties: { id: { type: 'string', description: 'a task id' } },
  required: ['id'],
};

/** A tree node of one of the four kinds; `leaf` is what a leaf holds (recursion by $ref would need components). */
const node = (leaf: Record<string, unknown>, description: string) => ({
  description,
  oneOf: [
    leaf,
    { type: 'object', required: ['chain'], properties: { chain: { type: 'array', minItems: 1, items: {} } } },
    { type: 'object', required: ['group'], properties: { group: { type: 'array', minItems: 1, items: {} } } },
    {
      type: 'object',
      required: ['chord'],
      properties: {
        chord: {
          type: 'object',
          required: ['header', 'body'],
          properties: { header: { type: 'array', minItems: 1, items: {} }, body: {} },
        },
      },
    },
  ],
});

const idsLeaf = {
  type: 'object',
  properties: { task_id: { type: 'string' }, queue: { type: 'string', enum: ['fast_tasks', 'heavy_tasks'] } },
};

/** A read by task id: its summary and the properties of its 200 body. */
const read = (summary: string, properties: Record<string, unknown>) => ({
  summary,
  tags: ['tasks'],
  params: taskId,
  response: { '200': reply({ type: 'object', properties }), ...errors(401, 404, 429) },
});

/** The OpenAPI entries of these routes (@fastify/swagger reads them; requests are checked in the handlers). */
export const WORKFLOW_SCHEMAS = {
  submit: {
    summary:
      'submit a workflow: {"chain": [...]}, {"group": [...]} or {"chord": {"header": [...], "body": {...}}}, nested, each leaf a task as POST /api/tasks takes it; checked whole (every problem named by its path, e.g. chain[2].group[1].mode) before anything is queued',
    tags: ['tasks'],
    body: node(
      {
        type: 'object',
        description: 'a task, as the body of POST /api/tasks',
        required: ['task_name', 'mode', 'service'],
      },
      'the workflow tree (at most AIECS_WORKFLOW_MAX_TASKS tasks, AIECS_WORKFLOW_MAX_DEPTH levels)',
    ),
    response: {
      '202': reply(
        {
          type: 'object',
          properties: {
            root_id: {
              type: 'string',
              description: "the root task: a chain's last step, a chord's body, a group's first member",
            },
            status: { type: 'string', const: 'pending' },
            tree: node(idsLeaf, "the members' task ids, in the tree's shape"),
          },
        },
        'queued whole',
      ),
      ...errors(400, 401, 403, 409, 413, 422, 429),
    },
  },
  tree: read(
    "the workflow a task belongs to (a lone task: a tree of one), each member's status and record; the task's owner or an admin",
    {
      root_id: { type: 'string' },
      tree: node(
        {
          type: 'object',
          properties: {
            ...idsLeaf.properties,
            status: { type: ['string', 'null'], description: 'null once removed' },
            task: { type: ['object', 'null'], description: 'the task record' },
          },
        },
        "the members in the tree's shape",
      ),
    },
  ),
  group: read(
    'a group (a batch, or a workflow that is a group) by its group_id: n done of m, counts per status and each member (the owner or an admin)',
    {
      group_id: { type: 'string' },
      done: { type: 'integer', description: 'members that ended, whatever the end' },
      total: { type: 'integer' },
      counts: { type: 'object', additionalProperties: { type: 'integer' } },
      members: {
        type: 'array',
        items: {
          type: 'object',
          properties: { ...idsLeaf.properties, status: { type: ['string', 'null'] } },
        },
      },
    },
  ),
};
