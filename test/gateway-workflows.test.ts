// Workflows over HTTP (issue 15): POST /api/workflows checked whole before anything is queued,
// GET /api/tasks/:id/tree with each member's status, POST /api/tasks/batch as a group with a
// group_id, GET /api/groups/:id, who may see what, and the OpenAPI entries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError, HttpClient } from '../src/cli/http-client.js';
import { TaskNotFoundError } from '../src/core/errors.js';
import {
  GATEWAY_KINDS,
  GatewayEnv,
  probe,
  request,
  token,
  uid,
  until,
  type Api,
  type Loose,
} from './gateway-harness.js';

/** Every task the user has (to check that a refused workflow queued nothing). */
async function listed(a: Api): Promise<string[]> {
  const res = await a.get('/api/tasks?limit=200');
  expect(res.status).toBe(200);
  return (res.body.tasks as Array<{ task_id: string }>).map((t) => t.task_id);
}

/** The leaves of a tree in order, as [task_id, status]. */
function leaves(tree: Loose): Array<[string, string | null]> {
  if ('task_id' in tree) return [[tree.task_id, tree.status]];
  if ('chain' in tree) return tree.chain.flatMap(leaves);
  if ('group' in tree) return tree.group.flatMap(leaves);
  return [...tree.chord.header.flatMap(leaves), ...leaves(tree.chord.body)];
}

/** Polls the tree until every member ended. */
function settledTree(a: Api, id: string): Promise<Loose> {
  return until(
    async () => {
      const res = await a.get(`/api/tasks/${id}/tree`);
      expect(res.status).toBe(200);
      return leaves(res.body.tree).every(([, s]) => s !== 'pending' && s !== 'running') && res.body;
    },
    30_000,
    `workflow ${id} to end`,
  );
}

describe.each(GATEWAY_KINDS)('workflows over HTTP on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind, { AIECS_WORKFLOW_MAX_TASKS: '20', AIECS_WORKFLOW_MAX_DEPTH: '4' });
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('queues a chain that starts with a group, answers 202 with the tree of ids, and reads it back with statuses', async () => {
    const a = await ge.api(uid('wf'));
    const body = {
      chain: [
        { group: [probe('echo', { n: 1 }), probe('echo', { n: 2 })] },
        probe('echo', { after: 'group' }),
      ],
    };
    const res = await a.post('/api/workflows', body);
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ root_id: expect.any(String), status: 'pending' });
    const ids = leaves(res.body.tree).map(([id]) => id);
    expect(ids).toHaveLength(3);
    expect(res.body.tree).toMatchObject({
      chain: [
        { group: [{ task_id: ids[0], queue: 'fast_tasks' }, { task_id: ids[1] }] },
        { task_id: ids[2] },
      ],
    });
    // A chain's root is its last step.
    expect(res.body.root_id).toBe(ids[2]);

    const read = await settledTree(a, ids[0]!);
    expect(read.root_id).toBe(ids[2]);
    expect(leaves(read.tree)).toEqual(ids.map((id) => [id, 'completed']));
    // Each member's record, without stack traces; the step after the group got its results in order.
    const last = read.tree.chain[1].task;
    expect(last.result.echo.previous.map((r: Loose) => r.echo.n)).toEqual([1, 2]);
    expect(last).toMatchObject({ root_id: ids[2], status: 'completed' });
  });

  it('runs a chord whose header holds a chain, its body getting the results in order', async () => {
    const a = await ge.api(uid('chord'));
    const body = {
      chord: {
        header: [{ chain: [probe('echo', { n: 1 }), probe('echo', { n: 2 })] }, probe('echo', { n: 3 })],
        body: probe('echo', { cb: true }),
      },
    };
    const res = await a.post('/api/workflows', body);
    expect(res.status, res.text).toBe(202);
    const read = await settledTree(a, res.body.root_id);
    expect(leaves(read.tree).map(([, s]) => s)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const callback = read.tree.chord.body.task;
    expect(callback.task_id).toBe(res.body.root_id);
    // The chain's result is its last step's.
    expect(callback.result.echo.results.map((r: Loose) => r.echo.n)).toEqual([2, 3]);
  });

  it('reads a lone task as a tree of one', async () => {
    const a = await ge.api(uid('lone'));
    const submitted = await a.submit(probe('echo'));
    const read = await a.get(`/api/tasks/${submitted.body.task_id}/tree`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      root_id: submitted.body.task_id,
      tree: { task_id: submitted.body.task_id, queue: 'fast_tasks' },
    });
  });

  it('refuses a bad tree with 422 naming every problem by its path, and queues none of it', async () => {
    const a = await ge.api(uid('bad'));
    const body = {
      chain: [
        probe('echo'),
        { group: [probe('echo'), probe('echo', {}, { mode: 'no such mode!' })] },
        { chord: { header: [probe('echo', {}, { colour: 'red' })], body: probe('echo', {}, { step: -1 }) } },
      ],
    };
    const res = await a.post('/api/workflows', body);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('WORKFLOW_INVALID');
    expect(res.body.error.message).toMatch(/^invalid workflow: chain\[1\]\.group\[1\]\.mode: /);
    expect(res.body.error.details.issues.map((i: Loose) => i.field)).toEqual([
      'chain[1].group[1].mode',
      'chain[2].chord.header[0]',
      'chain[2].chord.body.step',
    ]);
    expect(await listed(a)).toEqual([]);

    const shape = await a.post('/api/workflows', { chain: [], colour: 1 });
    expect(shape.status).toBe(422);
    expect(shape.body.error.details.issues[0].field).toBe('(root)');
    const lone = await a.post('/api/workflows', probe('echo'));
    expect(lone.status).toBe(422);
    expect(lone.body.error.message).toMatch(/POST \/api\/tasks/);
  });

  it('queues a group and a chord after a step (fan-out): each follower gets the step result; the tree shows members only', async () => {
    const a = await ge.api(uid('fan'));
    const res = await a.post('/api/workflows', {
      chain: [
        probe('echo', { n: 0 }),
        { group: [probe('echo', { n: 1 }), probe('echo', { n: 2 })] },
        {
          chord: {
            header: [probe('echo', { n: 3 }), probe('echo', { n: 4 })],
            body: probe('echo', { cb: 1 }),
          },
        },
      ],
    });
    expect(res.status, res.text).toBe(202);
    const ids = leaves(res.body.tree).map(([id]) => id);
    expect(ids).toHaveLength(6);
    const read = await settledTree(a, res.body.root_id);
    expect(leaves(read.tree)).toEqual(ids.map((id) => [id, 'completed']));
    // No hidden await or gather job in the tree, its ids or its records.
    expect(JSON.stringify(read)).not.toContain('~');
    for (const m of read.tree.chain[1].group as Loose[]) expect(m.task.result.echo.previous.echo.n).toBe(0);
    const header = read.tree.chain[2].chord.header as Loose[];
    for (const m of header) expect(m.task.result.echo.previous.map((r: Loose) => r.echo.n)).toEqual([1, 2]);
    expect(read.tree.chain[2].chord.body.task.result.echo.results.map((r: Loose) => r.echo.n)).toEqual([
      3, 4,
    ]);
    expect((await listed(a)).sort()).toEqual([...ids].sort());
  });

  it('refuses a task no worker can run, by its path, before queuing anything', async () => {
    const a = await ge.api(uid('svc'));
    const res = await a.post('/api/workflows', {
      group: [probe('echo'), probe('echo', {}, { service: 'nope' }), probe('no_such_method')],
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('SERVICE_NOT_FOUND');
    expect(res.body.error.message).toMatch(/^group\[1\]\.service: no service registered as test\/nope/);
    expect(res.body.error.details.issues.map((i: Loose) => i.field)).toEqual([
      'group[1].service',
      'group[2].task_name',
    ]);
    expect(await listed(a)).toEqual([]);
  });

  it('enforces the configured limits: 413 past the task count, 422 past the depth', async () => {
    const a = await ge.api(uid('lim'));
    const many = await a.post('/api/workflows', { group: Array.from({ length: 21 }, () => probe('echo')) });
    expect(many.status).toBe(413);
    expect(many.body.error).toMatchObject({ code: 'WORKFLOW_TOO_LARGE', details: { tasks: 21, limit: 20 } });
    let deep: unknown = probe('echo');
    for (let i = 0; i < 5; i++) deep = { chain: [deep] };
    const tooDeep = await a.post('/api/workflows', deep);
    expect(tooDeep.status).toBe(422);
    expect(tooDeep.body.error.message).toMatch(/nests at most 4/);
    expect(await listed(a)).toEqual([]);
  });

  it('answers 401 without a token, 403 for tasks as another user, 404 for trees and groups that are not yours', async () => {
    const body = { group: [probe('echo'), probe('echo')] };
    expect((await request(ge.url, '/api/workflows', { body })).status).toBe(401);
    const owner = uid('own');
    const a = await ge.api(owner);
    const forbidden = await a.post('/api/workflows', {
      group: [probe('echo'), probe('echo', {}, { user_id: 'x' })],
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.message).toMatch(/^group\[1\]\.user_id: /);

    const res = await a.post('/api/workflows', body);
    expect(res.status).toBe(202);
    const other = await ge.api(uid('other'));
    expect((await other.get(`/api/tasks/${res.body.root_id}/tree`)).status).toBe(404);
    expect((await other.get(`/api/groups/${res.body.root_id}`)).status).toBe(404);
    expect((await other.get('/api/tasks/no-such-task/tree')).status).toBe(404);
    expect((await request(ge.url, `/api/tasks/${res.body.root_id}/tree`)).status).toBe(401);
    // An admin may read anyone's, and may submit for anyone.
    const admin = await ge.api(uid('admin'), { admin: true });
    expect((await admin.get(`/api/tasks/${res.body.root_id}/tree`)).status).toBe(200);
    const forOwner = await admin.post('/api/workflows', { group: [probe('echo', {}, { user_id: owner })] });
    expect(forOwner.status).toBe(202);
    expect((await a.get(`/api/groups/${forOwner.body.root_id}`)).status).toBe(200);
  });

  it('answers a batch with its group_id, as before plus the group, and reads its progress', async () => {
    const a = await ge.api(uid('batch'));
    const res = await a.post('/api/tasks/batch', {
      tasks: [probe('echo', { i: 0 }), probe('fail', { message: 'on purpose' }), probe('echo', { i: 2 })],
    });
    expect(res.status).toBe(202);
    const ids = (res.body.tasks as Array<{ task_id: string }>).map((t) => t.task_id);
    expect(res.body.group_id).toBe(ids[0]);
    const progress = await until(
      async () => {
        const g = await a.get(`/api/groups/${res.body.group_id}`);
        expect(g.status).toBe(200);
        return g.body.done === 3 && g.body;
      },
      30_000,
      'the batch to end',
    );
    expect(progress).toMatchObject({ group_id: ids[0], done: 3, total: 3 });
    expect(progress.counts).toMatchObject({ completed: 2, failed: 1, pending: 0, running: 0 });
    expect(progress.members.map((m: Loose) => [m.task_id, m.status])).toEqual([
      [ids[0], 'completed'],
      [ids[1], 'failed'],
      [ids[2], 'completed'],
    ]);
    // A member's id names no group; neither does a chain's.
    expect((await a.get(`/api/groups/${ids[1]}`)).status).toBe(404);
    const chain = await a.post('/api/workflows', { chain: [probe('echo'), probe('echo')] });
    expect((await a.get(`/api/groups/${chain.body.root_id}`)).status).toBe(404);
  });

  it("is what the CLI's HTTP client (aiecs up) submits to and reads trees from", async () => {
    const user = uid('cli');
    const client = new HttpClient(ge.url, await token(user));
    const accepted = await client.submitWorkflow({
      chain: [probe('echo', { n: 1 }), probe('echo', { n: 2 })],
    });
    expect(accepted).toMatchObject({ root_id: expect.any(String), status: 'pending' });
    const [first, last] = leaves(accepted.tree).map(([id]) => id);
    expect(last).toBe(accepted.root_id);
    expect((await client.wait(last!, 'fast_tasks', 30)).status).toBe('completed');
    const read = await client.tree(first!);
    expect(read.root_id).toBe(accepted.root_id);
    expect(leaves(read.tree)).toEqual([
      [first, 'completed'],
      [last, 'completed'],
    ]);
    await expect(client.tree('no-such-task')).rejects.toBeInstanceOf(TaskNotFoundError);
    const refused = await client.submitWorkflow({ chain: [] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ code: 'WORKFLOW_INVALID', status: 422 });
  });

  it('lists the workflow routes in the OpenAPI document', async () => {
    const doc = await request(ge.url, '/openapi.json');
    const paths = doc.body.paths;
    expect(paths['/api/workflows'].post.responses).toHaveProperty('202');
    expect(paths['/api/workflows'].post.responses).toHaveProperty('413');
    expect(paths['/api/workflows'].post.responses).toHaveProperty('422');
    expect(paths['/api/tasks/{id}/tree'].get.summary).toMatch(/workflow/);
    expect(paths['/api/groups/{id}'].get.responses).toHaveProperty('200');
    expect(
      paths['/api/tasks/batch'].post.responses['202'].content['application/json'].schema.properties,
    ).toHaveProperty('group_id');
  });
});
