// The dashboard's actions and lists over HTTP on every store: retry (a new attempt under the same
// id, the ended run kept, events flowing again), queue pause and resume, and the task list's
// filters with cursor paging.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS } from './harness.js';
import { GatewayEnv, probe, sleep, uid, until, type Api, type Loose } from './gateway-harness.js';

describe.each(STORE_KINDS)('dashboard actions on %s', (kind) => {
  let ge: GatewayEnv;
  let dir: string;
  let admin: Api;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
    dir = mkdtempSync(join(tmpdir(), 'aiecs-actions-'));
    admin = await ge.api(uid('root'), { admin: true });
  });
  afterAll(async () => {
    await ge?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('retries a failed task: same id, a new attempt, the ended run kept, events seen live', async () => {
    const user = uid('ann');
    const api = await ge.api(user);
    const socket = await ge.client(user);
    // Fails on its first run (with one attempt, for good), succeeds on the next.
    const log = join(dir, `${uid('run')}.log`);
    const submitted = await api.submit(probe('crash_once', { log, ms: 1, fail_times: 0 }, { attempts: 1 }));
    expect(submitted.status).toBe(202);
    const id = submitted.body.task_id as string;
    expect((await socket.subscribe(id)).ok).toBe(true);
    const failed = await api.settled(id);
    expect(failed).toMatchObject({ status: 'failed', attempt: 1, max_attempts: 1, runs: [] });
    await until(async () => socket.progressOf(id).some((e) => e.status === 'failed'), 15_000, 'failed event');

    const retried = await api.post(`/api/tasks/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ task_id: id, status: 'pending', attempt: 2 });

    const done = await until<Loose>(
      async () => {
        const res = await api.task(id);
        return res.body.status === 'completed' ? res.body : undefined;
      },
      30_000,
      'the retried task to complete',
    );
    // A retry is an attempt beyond the budget: the record shows attempt 2 of max_attempts 1.
    expect(done).toMatchObject({
      task_id: id,
      status: 'completed',
      attempt: 2,
      max_attempts: 1,
      error: null,
    });
    expect(done.result).toMatchObject({ runs: 2 });
    expect(done.runs).toHaveLength(1);
    expect(done.runs[0]).toMatchObject({ attempt: 1, status: 'failed' });
    expect(done.runs[0].error.message).toContain('run 1 failed');
    expect(typeof done.runs[0].finished_at).toBe('string');

    // The socket saw the end, the retry's pending word and the new run, each event once by seq
    // (it had both the replay of what it subscribed to and the live events), in seq order.
    await until(
      async () => socket.progressOf(id).some((e) => e.status === 'completed'),
      15_000,
      'completed event',
    );
    const bySeq = new Map(socket.progressOf(id).map((e) => [e.seq, e]));
    const events = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    expect(events.map((e) => e.status)).toEqual([
      'pending',
      'running',
      'failed',
      'pending',
      'running',
      'completed',
    ]);
    expect(events.slice(2).map((e) => e.attempt)).toEqual([1, 1, 2, 2]);
    // Arrival order is seq order.
    const arrived = socket.progressOf(id).filter((e) => e.seq > events[2]!.seq);
    expect(arrived.map((e) => e.status)).toEqual(['pending', 'running', 'completed']);
  });

  it('refuses to retry a task that has not failed, and another user’s task', async () => {
    const user = uid('bob');
    const api = await ge.api(user);
    const id = (await api.submit(probe('echo', { x: 1 }))).body.task_id as string;
    await api.settled(id);
    const refused = await api.post(`/api/tasks/${id}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('TASK_NOT_RETRYABLE');
    expect(refused.body.error.message).toContain('completed');
    const other = await ge.api(uid('eve'));
    expect((await other.post(`/api/tasks/${id}/retry`)).status).toBe(404);
  });

  it('retries a task cancelled before it ran: the old cancel does not stop the new run', async () => {
    const user = uid('cat');
    const api = await ge.api(user);
    const id = (await api.submit(probe('echo', { x: 2 }, { countdown: 3600 }))).body.task_id as string;
    expect((await api.cancel(id)).body).toMatchObject({ status: 'cancelled', cancelled: true });
    // A worker drains it from its queue; until then a retry is refused with the reason.
    await until(
      async () => {
        const res = await api.post(`/api/tasks/${id}/retry`);
        if (res.status === 409) return undefined;
        expect(res.status).toBe(202);
        return true;
      },
      30_000,
      'the cancelled task to be retryable',
    );
    const done = await api.settled(id);
    expect(done).toMatchObject({ status: 'completed', result: { echo: { x: 2 } } });
    expect(done.runs).toEqual([expect.objectContaining({ status: 'cancelled' })]);
  });

  it('pauses a queue (it holds its tasks) and resumes it (they run)', async () => {
    const api = await ge.api(uid('dan'));
    expect((await api.post('/api/queues/fast_tasks/pause')).status).toBe(403);
    const paused = await admin.post('/api/queues/fast_tasks/pause');
    expect(paused.status).toBe(200);
    expect(paused.body).toEqual({ queue: 'fast_tasks', paused: true });
    const queues = (await admin.get('/api/queues')).body.queues as Array<{ queue: string; paused: boolean }>;
    expect(queues.find((q) => q.queue === 'fast_tasks')?.paused).toBe(true);
    expect(queues.find((q) => q.queue === 'heavy_tasks')?.paused).toBe(false);

    const id = (await api.submit(probe('echo', { x: 3 }))).body.task_id as string;
    await sleep(1_500);
    expect((await api.task(id)).body.status).toBe('pending');

    const resumed = await admin.post('/api/queues/fast_tasks/resume');
    expect(resumed.body).toEqual({ queue: 'fast_tasks', paused: false });
    expect((await api.settled(id)).status).toBe('completed');
    expect((await admin.post('/api/queues/nope/pause')).body.error.code).toBe('QUEUE_NOT_FOUND');
  });

  it('filters the task list by status, queue, task name, mode, service and time, and pages it', async () => {
    const user = uid('flo');
    const api = await ge.api(user);
    const before = Date.now() - 1;
    const ids = { echo: [] as string[], held: [] as string[], heavy: [] as string[], failed: [] as string[] };
    for (let i = 0; i < 5; i++) ids.echo.push((await api.submit(probe('echo', { i }))).body.task_id);
    for (let i = 0; i < 3; i++)
      ids.held.push((await api.submit(probe('sleep', { i }, { countdown: 3600 }))).body.task_id);
    for (let i = 0; i < 2; i++)
      ids.heavy.push(
        (await api.submit(probe('sleep', { i }, { countdown: 3600, heavy: true }))).body.task_id,
      );
    for (let i = 0; i < 2; i++) ids.failed.push((await api.submit(probe('fail', { i }))).body.task_id);
    for (const id of [...ids.echo, ...ids.failed]) await api.settled(id);
    const after = Date.now() + 1;

    const list = async (query: string): Promise<string[]> => {
      const all: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 50; page++) {
        const res = await api.get(`/api/tasks?${query}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status, query).toBe(200);
        expect(res.body.tasks.length).toBeLessThanOrEqual(2);
        all.push(...res.body.tasks.map((t: { task_id: string }) => t.task_id));
        cursor = res.body.next_cursor;
        if (!cursor) break;
      }
      return all;
    };
    const newestFirst = (list: string[]) => [...list].reverse();
    expect(await list('task_name=echo')).toEqual(newestFirst(ids.echo));
    expect(await list('queue=heavy_tasks')).toEqual(newestFirst(ids.heavy));
    expect(await list('task_name=sleep&queue=fast_tasks')).toEqual(newestFirst(ids.held));
    expect(await list('status=failed')).toEqual(newestFirst(ids.failed));
    expect(await list('status=pending&queue=heavy_tasks')).toEqual(newestFirst(ids.heavy));
    expect(await list('mode=test&service=probe')).toHaveLength(12);
    expect(await list('service=nope')).toEqual([]);
    expect(await list(`since=${before}&until=${after}`)).toHaveLength(12);
    expect(await list(`since=${new Date(after).toISOString()}`)).toEqual([]);
    expect(await list(`until=${new Date(before).toISOString()}`)).toEqual([]);

    // Admins filter by user; users see only their own, and naming another is refused.
    const root = await ge.api(uid('root'), { admin: true });
    const byUser = await root.get(`/api/tasks?user_id=${user}&task_name=fail`);
    expect(byUser.body.tasks.map((t: { task_id: string }) => t.task_id)).toEqual(newestFirst(ids.failed));
    expect((await api.get('/api/tasks?user_id=someone-else')).status).toBe(403);
    expect((await api.get('/api/tasks?since=yesterday')).status).toBe(400);
    const other = await ge.api(uid('gus'));
    expect((await other.get('/api/tasks?task_name=echo')).body.tasks).toEqual([]);
  });
});
