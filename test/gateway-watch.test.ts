// The dashboard's live feeds over socket.io: `watch_tasks` (batched task changes, each user's own,
// an admin's all) and `watch_stats` (admins only; the figures count what ran).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskChange } from '../src/gateway/task-watch.js';
import {
  GATEWAY_KINDS,
  GatewayEnv,
  TERMINAL,
  probe,
  token,
  uid,
  until,
  type Client,
  type Loose,
} from './gateway-harness.js';

/** Records every `task_changes` frame a socket gets. */
function recordChanges(client: Client): TaskChange[][] {
  const frames: TaskChange[][] = [];
  client.socket.on('task_changes', (frame: { changes: TaskChange[] }) => frames.push(frame.changes));
  return frames;
}

const latest = (frames: TaskChange[][], taskId: string) =>
  frames
    .flat()
    .filter((c) => c.task_id === taskId)
    .at(-1);

describe.each(GATEWAY_KINDS)('watch_tasks on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('sends each user their own tasks, an admin everyone’s, latest state per task per frame', async () => {
    const [ann, bob] = [uid('ann'), uid('bob')];
    const admin = await ge.client({ token: await token(uid('root'), { admin: true }) });
    const annSocket = await ge.client(ann);
    const bobSocket = await ge.client(bob);
    const frames = {
      admin: recordChanges(admin),
      ann: recordChanges(annSocket),
      bob: recordChanges(bobSocket),
    };
    for (const c of [admin, annSocket, bobSocket])
      expect(await c.emitWithAck('watch_tasks', {})).toEqual({ ok: true });

    const annApi = await ge.api(ann);
    const bobApi = await ge.api(bob);
    const annIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await annApi.submit(probe('progress_steps', { steps: 4, ms: 5 }));
      expect(res.status).toBe(202);
      annIds.push(res.body.task_id);
    }
    const bobId = (await bobApi.submit(probe('echo', { x: 1 }))).body.task_id as string;
    const all = [...annIds, bobId];
    await until(
      async () => all.every((id) => TERMINAL.has(latest(frames.admin, id)?.status ?? '')),
      30_000,
      'the admin to see every task end',
    );
    await until(
      async () => annIds.every((id) => latest(frames.ann, id)?.status === 'completed'),
      30_000,
      'ann to see her tasks end',
    );
    await until(
      async () => latest(frames.bob, bobId)?.status === 'completed',
      30_000,
      'bob to see his task end',
    );

    // Isolation: a user's frames hold only their own tasks.
    expect(frames.ann.flat().every((c) => c.user_id === ann)).toBe(true);
    expect(frames.bob.flat().every((c) => c.user_id === bob)).toBe(true);
    expect(frames.ann.flat().some((c) => c.task_id === bobId)).toBe(false);
    // One change per task per frame: the latest in that window.
    for (const frame of [...frames.admin, ...frames.ann])
      expect(new Set(frame.map((c) => c.task_id)).size).toBe(frame.length);
    // A new task shows first as pending (unless its whole life fell in one window).
    const first = frames.admin.flat().find((c) => c.task_id === annIds[0]);
    expect(first).toBeDefined();
    const done = latest(frames.admin, annIds[0]!)!;
    expect(done).toMatchObject({
      task_id: annIds[0],
      user_id: ann,
      task_name: 'progress_steps',
      queue: 'fast_tasks',
      mode: 'test',
      service: 'probe',
      status: 'completed',
      progress: 100,
      attempt: 1,
    });
    expect(typeof done.timestamp).toBe('number');
    // Its submit time, so a table can place a task it first sees already ended.
    const record = (await annApi.task(annIds[0]!)).body as { created_at: string };
    expect(done.created_at).toBe(Date.parse(record.created_at));
    // A new task appears as pending (one held back a second cannot have moved on within a frame).
    const held = (await annApi.submit(probe('echo', { x: 3 }, { countdown: 1 }))).body.task_id as string;
    await until(
      async () => latest(frames.ann, held)?.status === 'pending',
      30_000,
      'the held task as pending',
    );
    await until(
      async () => latest(frames.admin, held)?.status === 'completed',
      30_000,
      'the held task to end',
    );

    // unwatch_tasks stops the frames.
    expect(await annSocket.emitWithAck('unwatch_tasks', {})).toEqual({ ok: true });
    const before = frames.ann.length;
    const later = (await annApi.submit(probe('echo', { x: 2 }))).body.task_id as string;
    await until(async () => latest(frames.admin, later)?.status === 'completed', 30_000, 'the later task');
    await new Promise((r) => setTimeout(r, 600));
    expect(frames.ann.length).toBe(before);
  });
});

describe('watch_stats on embedded', () => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create('embedded');
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('is refused to a non-admin', async () => {
    const user = await ge.client(uid('ann'));
    const reply = await user.emitWithAck('watch_stats', {});
    expect(reply).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });

  it('sends admins frames whose figures count the tasks that ran', async () => {
    const admin = await ge.client({ token: await token(uid('root'), { admin: true }) });
    const frames: Loose[] = [];
    admin.socket.on('stats', (frame: Loose) => frames.push(frame));
    const ack = await admin.emitWithAck('watch_stats', {});
    expect(ack).toMatchObject({ ok: true, interval_ms: 2000 });
    expect(Array.isArray(ack.history)).toBe(true);

    const api = await ge.api(uid('bob'));
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await api.submit(probe('echo', { i }))).body.task_id);
    ids.push((await api.submit(probe('fail', {}))).body.task_id);
    for (const id of ids) await api.settled(id);

    const counted = () => {
      let completed = 0;
      let failed = 0;
      for (const f of frames) {
        completed += f.point.queues.fast_tasks.completed;
        failed += f.point.queues.fast_tasks.failed;
      }
      return { completed, failed };
    };
    await until(
      async () => counted().completed >= 4 && counted().failed >= 1,
      20_000,
      'the points to count the tasks',
    );
    expect(counted()).toEqual({ completed: 4, failed: 1 });
    const last = frames.at(-1)!;
    expect(last.totals).toMatchObject({
      completed: 4,
      failed: 1,
      timed_out: 0,
      cancelled: 0,
      pending: 0,
      running: 0,
    });
    expect(last.queues.map((q: Loose) => q.name).sort()).toEqual(['fast_tasks', 'heavy_tasks']);
    expect(last.queues[0]).toMatchObject({ paused: false });
    expect(last.workers.length).toBeGreaterThan(0);
    expect(last.workers[0]).toMatchObject({ alive: true });
    expect(last.workers[0].rss_bytes).toBeGreaterThan(0);
    expect(last.tokens).toEqual({ prompt: 0, completion: 0, total: 0 });
    const p95s = frames.map((f) => f.point.queues.fast_tasks.p95_ms);
    expect(p95s.some((v) => v >= 0)).toBe(true);

    // The history a new watcher gets holds the points sent so far.
    const again = await admin.emitWithAck('watch_stats', {});
    expect(again.history.length).toBeGreaterThanOrEqual(frames.length);
    expect(await admin.emitWithAck('unwatch_stats', {})).toEqual({ ok: true });
  });
});
