import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowProducer, Job, Queue } from 'bullmq';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TaskCancelledError, TaskFailedError } from '../src/core/errors.js';
import type { TaskRecord } from '../src/core/task.js';
import { workflowLeaves, type WorkflowTree } from '../src/core/workflow.js';
import type { AiecsApp } from '../src/engine/app.js';
import { chain, chord, group } from '../src/index.js';
import { STORE_KINDS, TestEnv, killAll, killEmbeddedMidRun, probe, until } from './harness.js';

/** The records of a tree read, in tree order. */
const records = (tree: WorkflowTree): Array<TaskRecord | null> =>
  workflowLeaves(tree).map((leaf) => leaf.task);

const echoed = (record: TaskRecord) => (record.result as { echo: Record<string, unknown> }).echo;

describe.each(STORE_KINDS)('workflows on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  async function setUp(): Promise<AiecsApp> {
    env = await TestEnv.create(kind);
    const app = env.app();
    await env.worker();
    return app;
  }

  it('chains steps across both queues: each gets the previous result, step counts along', async () => {
    const app = await setUp();
    const h = await chain(
      app.executeTask.s(probe('echo', { a: 1 })),
      app.executeHeavyTask.s(probe('echo', { b: 2 })),
      app.executeTask.s(probe('echo', { c: 3 })),
    ).delay();
    const last = (await h.get({ timeout: 60 })) as TaskRecord;
    expect(last.task_id).toBe(h.id);
    expect(echoed(last)).toMatchObject({ c: 3, previous: { echo: { b: 2, previous: { echo: { a: 1 } } } } });

    const read = await app.readWorkflow(h.id);
    expect(read?.root_id).toBe(h.id);
    const steps = records(read!.tree) as TaskRecord[];
    expect(steps.map((r) => [r.status, r.step, r.queue])).toEqual([
      ['completed', 0, 'fast_tasks'],
      ['completed', 1, 'heavy_tasks'],
      ['completed', 2, 'fast_tasks'],
    ]);
    // The flow's edges: each step waits for the one before; the root waits for nothing after it.
    expect(steps.map((r) => [r.root_id, r.parent_id])).toEqual([
      [h.id, steps[1]!.task_id],
      [h.id, steps[2]!.task_id],
      [h.id, null],
    ]);
    // Any member leads to the same tree.
    expect((await app.readWorkflow(steps[0]!.task_id))?.root_id).toBe(h.id);
  });

  it("hands a step's input on in-process when this worker ran the step before, and reads the store otherwise", async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    // Heavy tasks on one worker, fast ones on another: each hand-off is within one of them or not.
    await env.worker({ worker: { queues: ['heavy_tasks'] } });
    await env.worker({ worker: { queues: ['fast_tasks'] } });
    const reads = vi.spyOn(Job.prototype, 'getChildrenValues');
    try {
      const h = await chain(
        app.executeHeavyTask.s(probe('echo', { a: { z: 1, y: [1, 'two', null] } })),
        app.executeTask.s(probe('echo', { b: 2 })),
        app.executeTask.s(probe('echo', { c: 3 })),
      ).delay();
      const last = (await h.get({ timeout: 60 })) as TaskRecord;
      expect(echoed(last)).toMatchObject({
        c: 3,
        previous: { echo: { b: 2, previous: { echo: { a: { z: 1, y: [1, 'two', null] } } } } },
      });
      // The second step's input came from the other worker, through the store; the third's from
      // the worker that had just run the second.
      expect(reads).toHaveBeenCalledTimes(1);
    } finally {
      reads.mockRestore();
    }
  });

  it('stops a chain at a failing step: the later steps end cancelled (upstream_failed), never pending', async () => {
    const app = await setUp();
    const h = await chain(
      app.executeTask.s(probe('echo', { a: 1 })),
      app.executeTask.s(probe('fail', { message: 'step one broke' })),
      app.executeTask.s(probe('echo', { never: true })),
      app.executeTask.s(probe('echo', { never: true })),
    ).delay();
    const error = await h.get({ timeout: 60 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskCancelledError);
    const steps = records((await h.tree()).tree) as TaskRecord[];
    expect(steps.map((r) => r.status)).toEqual(['completed', 'failed', 'cancelled', 'cancelled']);
    const failedId = steps[1]!.task_id;
    expect(steps[2]!.error).toMatchObject({
      code: 'E004',
      type: 'UpstreamFailedError',
      details: { reason: 'upstream_failed', upstream_task_id: failedId },
    });
    expect(String(steps[2]!.error!.details!.upstream_error)).toContain('step one broke');
    // The step after names the step just before it: the end travels up the chain.
    expect(steps[3]!.error!.details).toMatchObject({ upstream_task_id: steps[2]!.task_id });
    // Never run: no start, no attempt spent.
    expect(steps[2]).toMatchObject({ result: null, started_at: null, attempt: 0 });
  });

  it('gives a group its records in submission order, with partial failure visible per member', async () => {
    const app = await setUp();
    const h = await group([
      app.executeTask.s(probe('echo', { i: 0 })),
      app.executeTask.s(probe('fail', { message: 'member 1 broke' })),
      app.executeHeavyTask.s(probe('echo', { i: 2 })),
      app.executeTask.s(probe('echo', { i: 3 })),
    ]).delay();
    const members = (await h.get({ timeout: 60 })) as TaskRecord[];
    expect(members.map((r) => r.status)).toEqual(['completed', 'failed', 'completed', 'completed']);
    expect(members.map((r) => (r.status === 'completed' ? echoed(r).i : null))).toEqual([0, null, 2, 3]);
    expect(members[1]!.error!.message).toContain('member 1 broke');
    expect(h.id).toBe(members[0]!.task_id);
    expect(members.every((r) => r.root_id === h.id)).toBe(true);
  });

  it("adds a group of tasks on one queue with that queue's bulk add, and any other tree as flows", async () => {
    const app = await setUp();
    const flows = vi.spyOn(FlowProducer.prototype, 'addBulk');
    const bulk = vi.spyOn(Queue.prototype, 'addBulk');
    try {
      const flat = await group([
        app.executeTask.s(probe('echo', { i: 0 })),
        app.executeTask.s(probe('echo', { i: 1 }), { countdown: 0.2, priority: 50 }),
        app.executeTask.s(probe('echo', { i: 2 })),
      ]).delay();
      expect(flows).not.toHaveBeenCalled();
      expect(bulk).toHaveBeenCalledTimes(1);
      const members = (await flat.get({ timeout: 60 })) as TaskRecord[];
      expect(members.map((r) => [r.status, echoed(r).i, r.root_id])).toEqual(
        [0, 1, 2].map((i) => ['completed', i, flat.id]),
      );
      expect(members[1]).toMatchObject({ priority: 50 });
      // The delayed member started after the others were queued, at least its countdown later.
      expect(Date.parse(members[1]!.started_at!) - Date.parse(members[1]!.created_at)).toBeGreaterThanOrEqual(
        200,
      );

      // Across both queues: flows, queued whole in one call.
      const mixed = await group([
        app.executeTask.s(probe('echo', { i: 0 })),
        app.executeHeavyTask.s(probe('echo', { i: 1 })),
      ]).delay();
      expect(flows).toHaveBeenCalledTimes(1);
      expect(((await mixed.get({ timeout: 60 })) as TaskRecord[]).map((r) => r.status)).toEqual([
        'completed',
        'completed',
      ]);
    } finally {
      flows.mockRestore();
      bulk.mockRestore();
    }
  });

  it('runs a chord callback on every result in order, and fails it (never runs it) when a member fails', async () => {
    const app = await setUp();
    const ok = await chord(
      [0, 1, 2].map((i) => app.executeTask.s(probe('echo', { i }))),
      app.executeHeavyTask.s(probe('echo', { sum: true })),
    ).delay();
    const callback = (await ok.get({ timeout: 60 })) as TaskRecord;
    expect(callback.task_id).toBe(ok.id);
    const results = echoed(callback).results as Array<{ echo: { i: number } }>;
    expect(results.map((r) => r.echo.i)).toEqual([0, 1, 2]);

    const bad = await chord(
      [
        app.executeTask.s(probe('echo', { i: 0 })),
        app.executeTask.s(probe('fail', { message: 'member broke' })),
      ],
      app.executeTask.s(probe('echo', { never: true })),
    ).delay();
    const error = await bad.get({ timeout: 60 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    const record = (error as { record: TaskRecord }).record;
    const member = (bad.children as { chord: { header: Array<{ task: string }> } }).chord.header[1]!.task;
    expect(record).toMatchObject({ status: 'failed', result: null, started_at: null, attempt: 0 });
    expect(record.error).toMatchObject({
      type: 'ChordMemberFailedError',
      code: 'E003',
      details: { member_task_id: member },
    });
    expect(String(record.error!.details!.member_error)).toContain('member broke');
  });

  it('nests: a chain starting with a group of chains, and a chord whose header holds chains', async () => {
    const app = await setUp();
    const s = (tag: string) => app.executeTask.s(probe('echo', { tag }));
    const h1 = await chain(
      group([chain(s('a1'), s('a2')), chain(s('b1'), s('b2')), s('c')]),
      s('join'),
    ).delay();
    const join = (await h1.get({ timeout: 60 })) as TaskRecord;
    const previous = echoed(join).previous as Array<{
      echo: { tag: string; previous?: { echo: { tag: string } } };
    }>;
    expect(previous.map((p) => p.echo.tag)).toEqual(['a2', 'b2', 'c']);
    expect(previous[0]!.echo.previous!.echo.tag).toBe('a1');

    const h2 = await chord([chain(s('x1'), s('x2')), group([s('y'), s('z')])], s('body')).delay();
    const body = (await h2.get({ timeout: 60 })) as TaskRecord;
    const results = echoed(body).results as unknown[];
    expect(results).toMatchObject([
      { echo: { tag: 'x2' } },
      [{ echo: { tag: 'y' } }, { echo: { tag: 'z' } }],
    ]);
    const all = records((await h2.tree()).tree) as TaskRecord[];
    expect(all).toHaveLength(5);
    expect(all.every((r) => r.status === 'completed' && r.root_id === h2.id)).toBe(true);
  });

  it('cancels every unfinished member when the root of a running chain is cancelled', async () => {
    const app = await setUp();
    const h = await chain(
      app.executeTask.s(probe('sleep', { ms: 30_000 })),
      app.executeTask.s(probe('echo', { never: true })),
      app.executeTask.s(probe('echo', { never: true })),
    ).delay();
    const first = (h.children as { chain: Array<{ task: string }> }).chain[0]!.task;
    await until(async () => (await app.getTask(first))?.status === 'running', 20_000, 'first step running');
    const result = await app.cancel(h.id);
    expect(result.workflow?.cancelled.sort()).toEqual(
      (h.children as { chain: Array<{ task: string }> }).chain.map((c) => c.task).sort(),
    );
    await expect(h.get({ timeout: 30 })).rejects.toBeInstanceOf(TaskCancelledError);
    await until(
      async () => records((await h.tree()).tree).every((r) => r?.status === 'cancelled'),
      20_000,
      'every step cancelled',
    );
  });

  it('cancels only a member, unless asked for its tree', async () => {
    const app = await setUp();
    const h = await group([0, 1, 2].map(() => app.executeTask.s(probe('sleep', { ms: 30_000 })))).delay();
    const ids = (h.children as { group: Array<{ task: string }> }).group.map((m) => m.task);
    const alone = await app.cancel(ids[1]!);
    expect(alone.workflow).toBeUndefined();
    await until(async () => (await app.getTask(ids[1]!))?.status === 'cancelled', 20_000, 'member cancelled');
    expect((await app.getTask(ids[2]!))?.status).not.toBe('cancelled');
    const all = await app.cancel(ids[2]!, { tree: true });
    expect(all.workflow?.root_id).toBe(h.id);
    expect(all.workflow?.cancelled.sort()).toEqual([ids[0], ids[2]].sort());
    const members = (await h.get({ timeout: 30 })) as TaskRecord[];
    expect(members.map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });

  it('completes a 1,000-member group', async () => {
    const app = await setUp();
    const h = await group(
      Array.from({ length: 1000 }, (_, i) => app.executeTask.s(probe('echo', { i }))),
    ).delay();
    const members = (await h.get({ timeout: 120 })) as TaskRecord[];
    expect(members).toHaveLength(1000);
    expect(members.every((r) => r.status === 'completed')).toBe(true);
    expect(members.map((r) => echoed(r).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  }, 180_000);
});

describe.each(STORE_KINDS)('a chain whose worker is SIGKILLed mid-step on %s', (kind) => {
  let env: TestEnv | undefined;
  let dir = '';
  const procs: ChildProcess[] = [];
  afterEach(async () => {
    await killAll(procs);
    await env?.cleanup();
    env = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const lines = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  it('still finishes, each step once in its record', async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-wf-kill-'));
    const log = join(dir, 'runs.log');
    const ids = ['k-0', 'k-1', 'k-2'];
    const leaf = (id: string, task_name: string, input_data: Record<string, unknown>) => ({
      task: {
        queue: 'fast_tasks' as const,
        request: { task_name, task_id: id, user_id: 'u', mode: 'test', service: 'probe', input_data },
      },
    });
    const tree = {
      chain: [
        leaf('k-0', 'echo', { a: 1 }),
        leaf('k-1', 'sleep', { ms: 2_500, log }),
        leaf('k-2', 'echo', { c: 3 }),
      ],
    };
    let steps: TaskRecord[];
    const started = () => lines(log).length > 0;
    if (kind === 'embedded') {
      const { value } = await killEmbeddedMidRun<WorkflowTree>(
        procs,
        `embedded:${join(dir, 'store')}`,
        { WORKFLOW: JSON.stringify(tree) },
        started,
        { WAIT_ROOT: 'k-2' },
        'tree',
      );
      steps = records(value) as TaskRecord[];
    } else {
      env = await TestEnv.create(kind);
      const app = env.app();
      const { handle: h } = await env.killWorkerMidRun(() => app.submitWorkflow(tree), started);
      await h.get({ timeout: 60 });
      steps = records((await h.tree()).tree) as TaskRecord[];
    }
    expect(steps.map((r) => [r.task_id, r.status])).toEqual(ids.map((id) => [id, 'completed']));
    // The killed run was a redelivery; the step finished once, and the next step got its result.
    expect(steps[1]).toMatchObject({ attempt: 1, redeliveries: 1 });
    expect(steps.map((r) => r.attempt)).toEqual([1, 1, 1]);
    expect(lines(log).filter((l) => l.startsWith('finish'))).toHaveLength(1);
    expect(echoed(steps[2]!).previous).toMatchObject({ slept: 2_500 });
  }, 150_000);
});
