// Flower's REST API on the gateway (issue 17), under /flower/api, against a real store and
// worker: every endpoint's reply has the keys Flower 2.0 documents (flower/api/*.py examples,
// Celery's Task.as_dict()), behind aiecs's auth (401 without a token, 403 for admin-only routes,
// another user's task looks missing), bad input is refused naming the parameter, async-apply then
// info/result reads the task, and revoke stops a running task only with terminate=true; a task
// the Celery bridge made under a seed task_id is found by its Celery id too.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_KINDS, GatewayEnv, request, uid, until, type Api, type Loose } from './gateway-harness.js';

const FAST = 'aiecs.tasks.worker.execute_task';
const HEAVY = 'aiecs.tasks.worker.execute_heavy_task';

/** Celery 5's Task.as_dict() keys: the value of each /api/tasks entry. */
const TASK_KEYS = [
  'uuid',
  'name',
  'state',
  'received',
  'sent',
  'started',
  'rejected',
  'succeeded',
  'failed',
  'retried',
  'revoked',
  'args',
  'kwargs',
  'eta',
  'expires',
  'retries',
  'worker',
  'result',
  'exception',
  'timestamp',
  'runtime',
  'traceback',
  'exchange',
  'routing_key',
  'clock',
  'client',
  'root',
  'root_id',
  'parent',
  'parent_id',
  'children',
].sort();
/** /api/task/info: the same, and Flower's documented `task-id`. */
const INFO_KEYS = [...TASK_KEYS, 'task-id'].sort();
/** What Flower's inspector gathers per worker (flower/inspector.py), and its timestamp. */
const WORKER_KEYS = [
  'active',
  'active_queues',
  'conf',
  'registered',
  'reserved',
  'revoked',
  'scheduled',
  'stats',
  'timestamp',
];
/** Flower's documented stats example keys. */
const STATS_KEYS = ['broker', 'clock', 'pid', 'pool', 'prefetch_count', 'rusage', 'total'];
/** Celery's queue declaration in active_queues. */
const QUEUE_KEYS = [
  'alias',
  'auto_delete',
  'binding_arguments',
  'bindings',
  'durable',
  'exchange',
  'exclusive',
  'name',
  'no_ack',
  'queue_arguments',
  'routing_key',
].sort();
/** Celery's Request.info() in a worker's `active`. */
const ACTIVE_KEYS = [
  'acknowledged',
  'args',
  'delivery_info',
  'hostname',
  'id',
  'kwargs',
  'name',
  'time_start',
  'type',
  'worker_pid',
].sort();

/** The seed's positional arguments of a probe task. */
const seedArgs = (
  user: string,
  method: string,
  input: Record<string, unknown>,
  taskId: string | null = null,
) => [method, user, taskId, 0, 'test', 'probe', input, {}];

describe.each(GATEWAY_KINDS)('Flower API on %s', (kind) => {
  let ge: GatewayEnv;
  let user: string;
  let ann: Api;
  let bob: Api;
  let root: Api;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
    user = uid('ann');
    ann = await ge.api(user);
    bob = await ge.api(uid('bob'));
    root = await ge.api(uid('root'), { admin: true });
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  const apply = (api: Api, name: string, body: Record<string, unknown>) =>
    api.post(`/flower/api/task/async-apply/${name}`, body);
  /** Polls /api/task/result until the state is one of `states`. */
  const stateOf = (api: Api, id: string, states: string[]) =>
    until<Loose>(
      async () => {
        const res = await api.get(`/flower/api/task/result/${id}`);
        return states.includes(res.body.state) ? res.body : undefined;
      },
      30_000,
      `task ${id} in ${states.join('/')}`,
    );

  it('answers 401 without a token and 403 to a user on the admin-only routes', async () => {
    for (const path of [
      '/flower/api/workers',
      '/flower/api/tasks',
      '/flower/api/task/types',
      '/flower/api/queues/length',
      '/flower/api/task/info/x1',
      '/flower/api/task/result/x1',
    ]) {
      const res = await request(ge.url, path);
      expect(res.status, path).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
    }
    expect(
      (await request(ge.url, `/flower/api/task/async-apply/${FAST}`, { method: 'POST', body: {} })).status,
    ).toBe(401);
    expect((await request(ge.url, '/flower/api/task/revoke/x1', { method: 'POST', body: {} })).status).toBe(
      401,
    );
    for (const path of ['/flower/api/workers', '/flower/api/queues/length']) {
      const res = await ann.get(path);
      expect(res.status, path).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
  });

  it('task/types lists the seed task names; queues/length counts each queue', async () => {
    const types = await ann.get('/flower/api/task/types');
    expect(types.status).toBe(200);
    expect(types.body).toEqual({ 'task-types': [FAST, HEAVY] });
    const lengths = await root.get('/flower/api/queues/length');
    expect(lengths.status).toBe(200);
    expect(Object.keys(lengths.body)).toEqual(['active_queues']);
    expect(lengths.body.active_queues.map((q: Loose) => q.name)).toEqual(['fast_tasks', 'heavy_tasks']);
    for (const q of lengths.body.active_queues) {
      expect(Object.keys(q).sort()).toEqual(['messages', 'name']);
      expect(Number.isInteger(q.messages)).toBe(true);
    }
  });

  it('async-apply with positional args, then result (waiting) and info', async () => {
    const applied = await apply(ann, FAST, { args: seedArgs(user, 'echo', { n: 1 }) });
    expect(applied.status).toBe(200);
    expect(Object.keys(applied.body).sort()).toEqual(['state', 'task-id']);
    expect(applied.body.state).toBe('PENDING');
    const id = applied.body['task-id'] as string;

    const result = await ann.get(`/flower/api/task/result/${id}?timeout=20`);
    expect(result.status).toBe(200);
    expect(Object.keys(result.body).sort()).toEqual(['result', 'state', 'task-id']);
    expect(result.body).toMatchObject({ 'task-id': id, state: 'SUCCESS' });
    // The original worker's return shape, as Python's .get() reads it.
    expect(result.body.result).toMatchObject({
      status: 'completed',
      task: 'echo',
      result: { echo: { n: 1 } },
    });

    const info = await ann.get(`/flower/api/task/info/${id}`);
    expect(info.status).toBe(200);
    expect(Object.keys(info.body).sort()).toEqual(INFO_KEYS);
    const record = (await ann.task(id)).body;
    expect(info.body).toMatchObject({
      uuid: id,
      'task-id': id,
      name: FAST,
      state: 'SUCCESS',
      routing_key: 'fast_tasks',
      worker: record.worker,
      retries: 0,
      kwargs: '{}',
      failed: null,
      exception: null,
      traceback: null,
    });
    expect(info.body.args).toBe(`['echo', '${user}', '${id}', 0, 'test', 'probe', {'n': 1}, {}]`);
    expect(info.body.result).toContain("'status': 'completed'");
    expect(info.body.received).toBeCloseTo(Date.parse(record.created_at) / 1000, 3);
    expect(info.body.succeeded).toBeCloseTo(Date.parse(record.finished_at) / 1000, 3);
    expect(typeof info.body.runtime).toBe('number');
    // Another user's task answers as a missing one.
    expect((await bob.get(`/flower/api/task/info/${id}`)).status).toBe(404);
    expect((await bob.get(`/flower/api/task/result/${id}`)).body).toEqual({
      'task-id': id,
      state: 'PENDING',
    });
    expect((await root.get(`/flower/api/task/info/${id}`)).status).toBe(200);
  });

  it('async-apply of execute_heavy_task with kwargs and a task_id runs on heavy_tasks', async () => {
    const taskId = uid('heavy');
    const kwargs = {
      task_name: 'echo',
      user_id: user,
      task_id: taskId,
      mode: 'test',
      service: 'probe',
      input_data: { h: true },
    };
    const applied = await apply(ann, HEAVY, { kwargs, priority: 7 });
    expect(applied.body).toEqual({ 'task-id': taskId, state: 'PENDING' });
    await stateOf(ann, taskId, ['SUCCESS']);
    const info = (await ann.get(`/flower/api/task/info/${taskId}`)).body;
    expect(info).toMatchObject({ name: HEAVY, routing_key: 'heavy_tasks', state: 'SUCCESS' });
    const record = (await ann.task(taskId)).body;
    expect(record).toMatchObject({ queue: 'heavy_tasks', priority: 7, user_id: user });
    // The same call again is the same task (the id is the caller's).
    expect((await apply(ann, HEAVY, { kwargs, priority: 7 })).body).toEqual({
      'task-id': taskId,
      state: 'SUCCESS',
    });
  });

  it('async-apply refuses an unknown task (404), bad input (400 naming it), another user (403), an unknown service (422)', async () => {
    const unknown = await apply(ann, 'tasks.add', { args: [1, 2] });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('CELERY_TASK_NOT_FOUND');
    expect(unknown.body.error.message).toContain("Unknown task 'tasks.add'");

    const fields = async (body: Record<string, unknown>) => {
      const res = await apply(ann, FAST, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      return (res.body.error.details.issues as Array<{ field: string }>).map((i) => i.field);
    };
    expect(await fields({ args: [...seedArgs(user, 'echo', {}), 'extra'] })).toEqual(['args[8]']);
    expect(await fields({ args: seedArgs(user, 'echo', {}).slice(0, 2), kwargs: { colour: 'red' } })).toEqual(
      ['kwargs.colour'],
    );
    const badStep = seedArgs(user, 'echo', {});
    badStep[3] = 'one';
    expect(await fields({ args: badStep })).toEqual(['args[3]']);
    expect(
      await fields({ kwargs: { task_name: 'echo', mode: 'test', service: 'probe', input_data: 5 } }),
    ).toEqual(['kwargs.input_data']);
    expect(await fields({ args: seedArgs(user, 'echo', {}), countdown: -1 })).toEqual(['countdown']);
    expect(await fields({ args: seedArgs(user, 'echo', {}), eta: 'tomorrow' })).toEqual(['eta']);
    expect(await fields({ args: seedArgs(user, 'echo', {}), queue: 'celery' })).toEqual(['(root)']);
    expect(await fields({ args: seedArgs(user, 'echo', {}, 'a-1'), task_id: 'b-2' })).toEqual(['task_id']);

    const asBob = await apply(bob, FAST, { args: seedArgs(user, 'echo', {}) });
    expect(asBob.status).toBe(403);
    expect(asBob.body.error.message).toContain('args[1]');
    const noService = await apply(ann, FAST, { args: [...seedArgs(user, 'echo', {}).slice(0, 5), 'nope'] });
    expect(noService.status).toBe(422);
    expect(noService.body.error.code).toBe('SERVICE_NOT_FOUND');
    // Flower reads the body as JSON whatever its content type (curl -d sends a form's).
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const asForm = await ann.request(`/flower/api/task/async-apply/${FAST}`, {
      method: 'POST',
      raw: JSON.stringify({ args: seedArgs(user, 'echo', {}) }),
      headers: form,
    });
    expect(asForm.status).toBe(200);
    expect(asForm.body.state).toBe('PENDING');
    const notJson = await ann.request(`/flower/api/task/async-apply/${FAST}`, {
      method: 'POST',
      raw: 'args=1',
      headers: form,
    });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe('BAD_REQUEST');
    // Without a user_id the task is the token's user's, as POST /api/tasks does.
    const own = await apply(bob, FAST, { kwargs: { task_name: 'echo', mode: 'test', service: 'probe' } });
    expect(own.status).toBe(200);
    expect((await bob.task(own.body['task-id'])).body.user_id).not.toBe(user);
  });

  it('a failing task is FAILURE with its exception and traceback', async () => {
    const applied = await apply(ann, FAST, { args: seedArgs(user, 'fail', { message: 'no luck' }) });
    const id = applied.body['task-id'] as string;
    const result = await stateOf(ann, id, ['FAILURE']);
    expect(Object.keys(result).sort()).toEqual(['result', 'state', 'task-id', 'traceback']);
    expect(result.result).toBe("TypeError('no luck')");
    expect(result.traceback).toBe('TypeError: no luck');
    const info = (await ann.get(`/flower/api/task/info/${id}`)).body;
    expect(info).toMatchObject({ state: 'FAILURE', exception: "TypeError('no luck')", result: null });
    expect(typeof info.failed).toBe('number');
  });

  it('revoke: a running task goes on without terminate and is REVOKED with it; a queued one never runs', async () => {
    const applied = await apply(ann, FAST, { args: seedArgs(user, 'sleep', { ms: 60_000 }) });
    const id = applied.body['task-id'] as string;
    await stateOf(ann, id, ['STARTED']);
    const soft = await ann.post(`/flower/api/task/revoke/${id}`);
    expect(soft.status).toBe(200);
    expect(soft.body).toEqual({ message: `Revoked '${id}'` });
    expect((await ann.task(id)).body.status).toBe('running');
    // Flower's documented request: an empty form body.
    const hard = await ann.request(`/flower/api/task/revoke/${id}?terminate=true`, {
      method: 'POST',
      raw: '',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    });
    expect(hard.status).toBe(200);
    const revoked = await stateOf(ann, id, ['REVOKED', 'SUCCESS', 'FAILURE']);
    expect(revoked.state).toBe('REVOKED');
    expect(revoked.result).toMatch(/^TaskRevokedError\(/);
    expect((await ann.task(id)).body.status).toBe('cancelled');

    const later = await apply(ann, FAST, { args: seedArgs(user, 'echo', {}), countdown: 600 });
    const laterId = later.body['task-id'] as string;
    expect((await ann.post(`/flower/api/task/revoke/${laterId}`)).status).toBe(200);
    expect((await stateOf(ann, laterId, ['REVOKED'])).state).toBe('REVOKED');
    expect((await ann.task(laterId)).body.started_at).toBeNull();

    expect((await bob.post(`/flower/api/task/revoke/${laterId}`)).status).toBe(404);
    const bad = await ann.post(`/flower/api/task/revoke/${laterId}?terminate=maybe`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.issues[0].field).toBe('terminate');
  });

  it('info, result, revoke and the task list find a task bridged under a seed task_id by its Celery id; not for another user', async () => {
    /** What the Celery bridge submits for a message whose task_id argument differs from its id. */
    const bridged = async (method: string, input: Record<string, unknown>) => {
      const taskId = uid('seed');
      const celeryId = randomUUID();
      const request = { task_name: method, user_id: user, task_id: taskId, mode: 'test', service: 'probe' };
      await ge.main.app.submitWire({
        queue: 'fast_tasks',
        request: { ...request, input_data: input },
        celery: { id: celeryId },
      });
      return { taskId, celeryId };
    };
    const done = await bridged('echo', { n: 7 });
    const result = await ann.get(`/flower/api/task/result/${done.celeryId}?timeout=20`);
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ 'task-id': done.celeryId, state: 'SUCCESS' });
    expect(result.body.result).toMatchObject({ status: 'completed', result: { echo: { n: 7 } } });
    const info = await ann.get(`/flower/api/task/info/${done.celeryId}`);
    expect(info.status).toBe(200);
    expect(Object.keys(info.body).sort()).toEqual(INFO_KEYS);
    // Flower names the task by the Celery id it was asked with.
    expect(info.body).toMatchObject({
      uuid: done.celeryId,
      'task-id': done.celeryId,
      name: FAST,
      state: 'SUCCESS',
    });
    expect((await ann.get(`/flower/api/task/info/${done.taskId}`)).body).toMatchObject({
      uuid: done.taskId,
      'task-id': done.taskId,
    });
    expect((await root.get(`/flower/api/task/info/${done.celeryId}`)).status).toBe(200);
    // The task list keys it by its Celery id too, as Flower does.
    const listed = (await ann.get('/flower/api/tasks?limit=100')).body as Loose;
    expect(listed[done.celeryId]).toMatchObject({ uuid: done.celeryId, root_id: done.celeryId });
    expect(listed[done.taskId]).toBeUndefined();
    // Another user's Celery id answers as a missing task, as its task id does.
    expect((await bob.get(`/flower/api/task/info/${done.celeryId}`)).status).toBe(404);
    expect((await bob.get(`/flower/api/task/result/${done.celeryId}`)).body).toEqual({
      'task-id': done.celeryId,
      state: 'PENDING',
    });

    const running = await bridged('sleep', { ms: 60_000 });
    await stateOf(ann, running.celeryId, ['STARTED']);
    expect((await bob.post(`/flower/api/task/revoke/${running.celeryId}?terminate=true`)).status).toBe(404);
    expect((await ann.task(running.taskId)).body.status).toBe('running');
    const revoke = await ann.post(`/flower/api/task/revoke/${running.celeryId}?terminate=true`);
    expect(revoke.status).toBe(200);
    expect(revoke.body).toEqual({ message: `Revoked '${running.celeryId}'` });
    expect((await stateOf(ann, running.celeryId, ['REVOKED', 'SUCCESS', 'FAILURE'])).state).toBe('REVOKED');
    expect((await ann.task(running.taskId)).body.status).toBe('cancelled');
  });

  it("workers: each live worker in Flower's shape, its running task in active; status and workername", async () => {
    const applied = await apply(ann, FAST, { args: seedArgs(user, 'sleep', { ms: 60_000 }) });
    const id = applied.body['task-id'] as string;
    await stateOf(ann, id, ['STARTED']);
    try {
      const res = await root.get('/flower/api/workers');
      expect(res.status).toBe(200);
      const names = Object.keys(res.body);
      expect(names.length).toBeGreaterThan(0);
      const worker = res.body[names[0]!];
      expect(Object.keys(worker).sort()).toEqual(WORKER_KEYS);
      expect(Object.keys(worker.stats)).toEqual(expect.arrayContaining(STATS_KEYS));
      expect(worker.stats.pool['max-concurrency']).toBeGreaterThan(0);
      expect(worker.registered).toEqual([FAST, HEAVY]);
      expect(worker.active_queues.map((q: Loose) => q.name)).toEqual(['fast_tasks', 'heavy_tasks']);
      for (const q of worker.active_queues) expect(Object.keys(q).sort()).toEqual(QUEUE_KEYS);
      const active = Object.values(res.body).flatMap((w: Loose) => w.active);
      const mine = active.find((t: Loose) => t.id === id);
      expect(mine).toBeDefined();
      expect(Object.keys(mine).sort()).toEqual(ACTIVE_KEYS);
      expect(mine).toMatchObject({ name: FAST, delivery_info: { routing_key: 'fast_tasks' } });

      const status = await root.get('/flower/api/workers?status=true&refresh=1');
      expect(status.body).toEqual(Object.fromEntries(names.map((n) => [n, true])));
      const one = await root.get(`/flower/api/workers?workername=${encodeURIComponent(names[0]!)}`);
      expect(Object.keys(one.body)).toEqual([names[0]]);
      const missing = await root.get('/flower/api/workers?workername=celery@nowhere');
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('WORKER_NOT_FOUND');
      const bad = await root.get('/flower/api/workers?refresh=perhaps');
      expect(bad.status).toBe(400);
      expect(bad.body.error.details.issues[0].field).toBe('refresh');
    } finally {
      await ann.post(`/flower/api/task/revoke/${id}?terminate=true`);
    }
  });

  it("tasks: own tasks by id in Flower's shape, with its filters, paging and sort; admins see all", async () => {
    const lister = uid('lee');
    const lee = await ge.api(lister);
    const ids: string[] = [];
    for (const [i, name] of [FAST, FAST, HEAVY].entries()) {
      const res = await apply(lee, name, { args: seedArgs(lister, 'echo', { i }) });
      ids.push(res.body['task-id']);
    }
    const failed = (await apply(lee, FAST, { args: seedArgs(lister, 'fail', {}) })).body['task-id'] as string;
    for (const id of ids) await stateOf(lee, id, ['SUCCESS']);
    await stateOf(lee, failed, ['FAILURE']);

    const all = await lee.get('/flower/api/tasks');
    expect(all.status).toBe(200);
    expect(Object.keys(all.body).sort()).toEqual([...ids, failed].sort());
    for (const [id, task] of Object.entries(all.body as Record<string, Loose>)) {
      expect(Object.keys(task).sort()).toEqual(TASK_KEYS);
      expect(task.uuid).toBe(id);
    }
    // Newest first.
    expect(Object.keys(all.body)[0]).toBe(failed);

    const keys = async (query: string, api: Api = lee) => {
      const res = await api.get(`/flower/api/tasks?${query}`);
      expect(res.status, query).toBe(200);
      return Object.keys(res.body);
    };
    expect(await keys('state=FAILURE')).toEqual([failed]);
    expect((await keys('state=SUCCESS')).sort()).toEqual([...ids].sort());
    expect(await keys('state=All&taskname=All')).toHaveLength(4);
    expect(await keys(`taskname=${HEAVY}`)).toEqual([ids[2]]);
    expect(await keys('taskname=tasks.add')).toEqual([]);
    expect(await keys('limit=2')).toEqual([failed, ids[2]]);
    expect(await keys('limit=2&offset=1')).toEqual([ids[2], ids[1]]);
    expect(await keys('sort_by=received')).toEqual([ids[0], ids[1], ids[2], failed]);
    expect((await keys('sort_by=name'))[0]).toBe(ids[2]); // execute_heavy_task sorts before execute_task
    expect((await keys('sort_by=-name')).at(-1)).toBe(ids[2]);
    const worker = (await lee.task(ids[0]!)).body.worker as string;
    expect(await keys(`workername=${encodeURIComponent(worker)}`)).toHaveLength(4);
    expect(await keys('workername=celery@nowhere')).toEqual([]);
    expect(await keys('received_start=2000-01-01%2000:00&received_end=2000-01-02%2000:00')).toEqual([]);
    expect(await keys('received_start=2000-01-01%2000:00')).toHaveLength(4);

    // Users see their own; admins everyone's.
    expect(await keys('limit=1000', bob)).not.toContain(failed);
    expect(await keys('limit=1000', root)).toEqual(expect.arrayContaining([...ids, failed]));

    for (const [query, field] of [
      ['state=DONE', 'state'],
      ['limit=0', 'limit'],
      ['sort_by=colour', 'sort_by'],
      ['received_start=yesterday', 'received_start'],
      ['search=add', '(root)'],
    ]) {
      const res = await lee.get(`/flower/api/tasks?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.details.issues[0].field, query).toBe(field);
    }
  });

  it('result: an unknown id is PENDING, as Celery says; a bad timeout is refused', async () => {
    expect((await ann.get('/flower/api/task/result/no-such-task')).body).toEqual({
      'task-id': 'no-such-task',
      state: 'PENDING',
    });
    const bad = await ann.get('/flower/api/task/result/no-such-task?timeout=soon');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.issues[0].field).toBe('timeout');
    expect((await ann.get('/flower/api/task/info/no-such-task')).status).toBe(404);
  });

  it('documents every Flower route under the flower tag', async () => {
    const doc = (await ann.get('/openapi.json')).body;
    const paths = Object.keys(doc.paths).filter((p) => p.startsWith('/flower/api/'));
    expect(paths.sort()).toEqual(
      [
        '/flower/api/queues/length',
        '/flower/api/task/async-apply/{name}',
        '/flower/api/task/info/{id}',
        '/flower/api/task/result/{id}',
        '/flower/api/task/revoke/{id}',
        '/flower/api/task/types',
        '/flower/api/tasks',
        '/flower/api/workers',
      ].sort(),
    );
    for (const p of paths)
      for (const op of Object.values(doc.paths[p] as Record<string, Loose>))
        expect(op.tags).toEqual(['flower']);
    expect(doc.tags.map((t: Loose) => t.name)).toContain('flower');
  });
});
