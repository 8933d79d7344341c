// /api/schedules over HTTP: admins only (401, 403), entries checked (422 naming the field), and a
// schedule's life: add (201) and replace (200), list with next runs, pause, resume, run now (an
// ordinary task naming its schedule, readable by its owner), fired tasks readable under their
// BullMQ ids, remove; and the routes in the OpenAPI document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GATEWAY_KINDS,
  GatewayEnv,
  request,
  token,
  uid,
  until,
  type Api,
  type Loose,
} from './gateway-harness.js';

const task = (user: string) => ({
  task_name: 'sleep',
  mode: 'test',
  service: 'probe',
  user_id: user,
  input_data: { ms: 1 },
});

describe.each(GATEWAY_KINDS)('/api/schedules on %s', (kind) => {
  let ge: GatewayEnv;
  let admin: Api;
  const root = uid('root');
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
    admin = await ge.api(root, { admin: true });
  });
  afterAll(async () => ge?.cleanup());

  it('answers 401 without a token and 403 to a user who is not an admin', async () => {
    const body = { name: 'nope', every: 60, task: task('ann') };
    for (const [method, path] of [
      ['GET', '/api/schedules'],
      ['POST', '/api/schedules'],
      ['POST', '/api/schedules/nope/pause'],
      ['POST', '/api/schedules/nope/run-now'],
      ['DELETE', '/api/schedules/nope'],
    ] as const) {
      const init = method === 'POST' ? { method, body } : { method };
      expect((await request(ge.url, path, init)).status).toBe(401);
      const user = await ge.api(uid('ann'));
      const refused = await user.request(path, init);
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('FORBIDDEN');
    }
    expect((await admin.get('/api/schedules')).body).toEqual({ schedules: [] });
  });

  it('refuses a bad schedule with 422 naming the field, before anything is stored', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'a', task: task('ann') }, 'cron'],
      [{ name: 'a', cron: 'every day', task: task('ann') }, 'cron'],
      [{ name: 'a', cron: '0 3 * * *', tz: 'Europe/Atlantis', task: task('ann') }, 'tz'],
      [{ name: 'a:b', every: 5, task: task('ann') }, 'name'],
      [{ name: 'a', every: 5, task: { ...task('ann'), step: -1 } }, 'task.step'],
      [{ name: 'a', every: 5, task: { ...task('ann'), eta: '2030-01-01T00:00:00Z' } }, 'task.eta'],
      [{ name: 'a', every: 5, task: { ...task('ann'), priority: 1000 } }, 'task.priority'],
      [{ name: 'a', every: 5, bogus: 1, task: task('ann') }, '(root)'],
    ];
    for (const [body, field] of cases) {
      const res = await admin.post('/api/schedules', body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.error.code).toBe('SCHEDULE_INVALID');
      expect(res.body.error.details.issues.map((i: Loose) => i.field)).toContain(field);
    }
    expect((await admin.get('/api/schedules')).body.schedules).toEqual([]);
  });

  it('adds, lists, pauses, resumes, runs now and removes a schedule', async () => {
    const owner = uid('ops');
    const added = await admin.post('/api/schedules', {
      name: 'nightly',
      cron: '0 3 * * *',
      tz: 'Europe/Berlin',
      task: task(owner),
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ name: 'nightly', source: 'api', paused: false, queue: 'fast_tasks' });
    expect(Date.parse(added.body.next_run)).toBeGreaterThan(Date.now());
    const replaced = await admin.post('/api/schedules', {
      name: 'nightly',
      cron: '0 4 * * *',
      tz: 'Europe/Berlin',
      task: { ...task(owner), heavy: true },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ cron: '0 4 * * *', queue: 'heavy_tasks' });
    expect((await admin.get('/api/schedules')).body.schedules.map((s: Loose) => s.name)).toEqual(['nightly']);

    expect((await admin.post('/api/schedules/nightly/pause')).body).toMatchObject({
      paused: true,
      next_run: null,
    });
    const resumed = await admin.post('/api/schedules/nightly/resume');
    expect(resumed.body.paused).toBe(false);
    expect(resumed.body.next_run).not.toBeNull();

    const fired = await admin.post('/api/schedules/nightly/run-now');
    expect(fired.status).toBe(202);
    expect(fired.body).toMatchObject({ queue: 'heavy_tasks', schedule: 'nightly' });
    const ownerApi = await ge.api(owner);
    const record = await ownerApi.settled(fired.body.task_id);
    expect(record).toMatchObject({ status: 'completed', schedule: 'nightly', user_id: owner });

    expect((await admin.request('/api/schedules/nightly', { method: 'DELETE' })).body).toEqual({
      name: 'nightly',
      removed: true,
    });
    const gone = await admin.post('/api/schedules/nightly/pause');
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('SCHEDULE_NOT_FOUND');
  });

  it("serves a fired task under its BullMQ id to its owner only; the admin's user by default", async () => {
    const res = await admin.post('/api/schedules', {
      name: 'once',
      every: 60,
      limit: 1,
      task: { ...task('x'), user_id: undefined },
    });
    expect(res.status).toBe(201);
    expect(res.body.task).toHaveProperty('user_id', root);
    const listed = await until<Loose>(
      async () => {
        const page = await admin.get('/api/tasks?limit=50');
        return page.body.tasks.find((t: Loose) => t.schedule === 'once' && t.status === 'completed');
      },
      30_000,
      'the fired task',
    );
    expect(listed.task_id).toMatch(/^repeat:beat:once:\d+$/);
    expect(listed.user_id).toBe(root);
    expect((await admin.task(listed.task_id)).body).toMatchObject({ status: 'completed', schedule: 'once' });
    // Its events can be followed over the socket too, under the same id.
    const socket = await ge.client({ token: await token(root, { admin: true }) });
    expect((await socket.subscribe(listed.task_id)).ok).toBe(true);
    const other = await ge.api(uid('eve'));
    expect((await other.task(listed.task_id)).status).toBe(404);
    await admin.request('/api/schedules/once', { method: 'DELETE' });
  });

  it('documents the routes in the OpenAPI document', async () => {
    const doc = (await request(ge.url, '/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/schedules',
        '/api/schedules/{name}',
        '/api/schedules/{name}/pause',
        '/api/schedules/{name}/resume',
        '/api/schedules/{name}/run-now',
      ]),
    );
    expect(doc.paths['/api/schedules'].post.responses['422']).toBeDefined();
  });
});
