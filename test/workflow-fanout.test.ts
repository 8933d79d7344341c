// Fan-out in a workflow (docs/design.md §9): a group or chord after a step, a chain of groups.
// The first follower takes the step's jobs natively; the others wait through hidden await jobs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskCancelledError, TaskFailedError } from '../src/core/errors.js';
import { QUEUE_KINDS, type TaskRecord } from '../src/core/task.js';
import type { WorkflowIds, WorkflowTree } from '../src/core/workflow.js';
import type { AiecsApp } from '../src/engine/app.js';
import { chain, chord, group } from '../src/index.js';
import { STORE_KINDS, TEST_ENV, TestEnv, killAll, probe, until } from './harness.js';

const EMBEDDED_PROCESS = fileURLToPath(new URL('./fixtures/embedded-process.mjs', import.meta.url));

function records(tree: WorkflowTree): Array<TaskRecord | null> {
  if ('task_id' in tree) return [tree.task];
  if ('chain' in tree) return tree.chain.flatMap(records);
  if ('group' in tree) return tree.group.flatMap(records);
  return [...tree.chord.header.flatMap(records), ...records(tree.chord.body)];
}

function ids(tree: WorkflowIds): string[] {
  if ('task' in tree) return [tree.task];
  if ('chain' in tree) return tree.chain.flatMap(ids);
  if ('group' in tree) return tree.group.flatMap(ids);
  return [...tree.chord.header.flatMap(ids), ...ids(tree.chord.body)];
}

const echoed = (record: TaskRecord) => (record.result as { echo: Record<string, unknown> }).echo;
const tagOf = (result: unknown) => (result as { echo: { tag: string } }).echo.tag;

/** Every job of both queues, by state: a workflow that ended leaves none waiting, delayed or held. */
async function unfinished(app: AiecsApp): Promise<number> {
  let n = 0;
  for (const kind of QUEUE_KINDS) {
    const counts = await (
      await app.queue(kind)
    ).getJobCounts('wait', 'prioritized', 'delayed', 'active', 'waiting-children');
    n += Object.values(counts).reduce((a, b) => a + b, 0);
  }
  return n;
}

describe.each(STORE_KINDS)('fan-out in workflows on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  async function setUp(): Promise<AiecsApp> {
    env = await TestEnv.create(kind);
    const app = env.app();
    await env.worker();
    return app;
  }

  it('runs a group after a step: each member gets the step result, the next step every member in order', async () => {
    const app = await setUp();
    const s = (tag: string) => app.executeTask.s(probe('echo', { tag }));
    const h = await chain(
      s('a'),
      group([s('b'), app.executeHeavyTask.s(probe('echo', { tag: 'c' })), s('e')]),
      s('d'),
    ).delay();
    const d = (await h.get({ timeout: 60 })) as TaskRecord;
    expect((echoed(d).previous as unknown[]).map(tagOf)).toEqual(['b', 'c', 'e']);
    const read = await app.readWorkflow(h.id);
    const [a, b, c, e] = records(read!.tree) as TaskRecord[];
    for (const member of [b, c, e]) expect(tagOf(echoed(member!).previous)).toBe('a');
    expect([a, b, c, e, d].map((r) => r!.status)).toEqual(Array(5).fill('completed'));
    // The tree holds the members only; each names the task that waits for it, never a hidden job.
    expect(JSON.stringify(read)).not.toContain('~');
    expect([a, b, c, e].map((r) => r!.parent_id)).toEqual([b!.task_id, d.task_id, d.task_id, d.task_id]);
    expect(d.parent_id).toBeNull();
    await until(async () => (await unfinished(app)) === 0, 20_000, 'nothing left queued');
  });

  it('runs a chain of groups: each member of the second gets every result of the first, in order', async () => {
    const app = await setUp();
    const s = (tag: string) => app.executeTask.s(probe('echo', { tag }));
    const h = await chain(group([s('a1'), s('a2')]), group([s('b1'), s('b2'), s('b3')])).delay();
    const members = (await h.get({ timeout: 60 })) as TaskRecord[];
    expect(members.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    for (const member of members)
      expect((echoed(member).previous as unknown[]).map(tagOf)).toEqual(['a1', 'a2']);
    const [a1, a2] = records((await h.tree()).tree) as TaskRecord[];
    // Collected for the first follower: it is named as what waits for them.
    expect([a1!.parent_id, a2!.parent_id]).toEqual([members[0]!.task_id, members[0]!.task_id]);
  });

  it('runs a chord after a step', async () => {
    const app = await setUp();
    const s = (tag: string) => app.executeTask.s(probe('echo', { tag }));
    const h = await chain(s('a'), chord([s('b'), s('c')], s('cb'))).delay();
    const cb = (await h.get({ timeout: 60 })) as TaskRecord;
    const results = echoed(cb).results as Array<{ echo: { tag: string; previous: unknown } }>;
    expect(results.map(tagOf)).toEqual(['b', 'c']);
    expect(results.map((r) => tagOf(r.echo.previous))).toEqual(['a', 'a']);
  });

  it('ends every later member when the step before a fan-out fails, none pending', async () => {
    const app = await setUp();
    const s = (tag: string) => app.executeTask.s(probe('echo', { tag }));
    const broke = () => app.executeTask.s(probe('fail', { message: 'a broke' }));
    const h1 = await chain(broke(), group([s('b'), s('c')]), s('d')).delay();
    await expect(h1.get({ timeout: 60 })).rejects.toBeInstanceOf(TaskCancelledError);
    const [a, b, c, d] = records((await h1.tree()).tree) as TaskRecord[];
    expect([a, b, c, d].map((r) => r!.status)).toEqual(['failed', 'cancelled', 'cancelled', 'cancelled']);
    // The member fed through an await job ends as its natively fed sibling does, naming the step.
    for (const member of [b, c]) {
      expect(member!.error).toMatchObject({
        code: 'E004',
        type: 'UpstreamFailedError',
        details: { reason: 'upstream_failed', upstream_task_id: a!.task_id },
      });
      expect(String(member!.error!.details!.upstream_error)).toContain('a broke');
      expect(member).toMatchObject({ result: null, started_at: null, attempt: 0 });
    }
    expect(d!.error!.details).toMatchObject({ upstream_task_id: b!.task_id });

    const h2 = await chain(broke(), chord([s('b'), s('c')], s('cb'))).delay();
    const error = await h2.get({ timeout: 60 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as { record: TaskRecord }).record.error).toMatchObject({
      type: 'ChordMemberFailedError',
      code: 'E003',
    });
    const members = records((await h2.tree()).tree) as TaskRecord[];
    expect(members.map((r) => r.status)).toEqual(['failed', 'cancelled', 'cancelled', 'failed']);

    // A chain of groups whose first group has a failure: every follower names that member.
    const h3 = await chain(group([s('a1'), broke()]), group([s('b1'), s('b2')])).delay();
    const followers = (await h3.get({ timeout: 60 })) as TaskRecord[];
    const failed = (h3.children as { chain: Array<{ group: Array<{ task: string }> }> }).chain[0]!.group[1]!
      .task;
    expect(followers.map((r) => [r.status, r.error?.details?.upstream_task_id])).toEqual([
      ['cancelled', failed],
      ['cancelled', failed],
    ]);
    await until(async () => (await unfinished(app)) === 0, 20_000, 'nothing left queued');
  });

  it('cancels every member of a fan-out with its root, the hidden jobs with them', async () => {
    const app = await setUp();
    const s = (tag: string) => app.executeTask.s(probe('echo', { tag }));
    const h = await chain(
      app.executeTask.s(probe('sleep', { ms: 30_000 })),
      group([s('b'), s('c'), s('e')]),
      s('d'),
    ).delay();
    const first = ids(h.children)[0]!;
    await until(async () => (await app.getTask(first))?.status === 'running', 20_000, 'first step running');
    const result = await app.cancel(h.id);
    expect(result.workflow?.cancelled.sort()).toEqual(ids(h.children).sort());
    await until(
      async () => records((await h.tree()).tree).every((r) => r?.status === 'cancelled'),
      20_000,
      'every member cancelled',
    );
    await until(async () => (await unfinished(app)) === 0, 20_000, 'nothing left queued');
  });
});

describe.each(STORE_KINDS)(
  'a fan-out whose worker is SIGKILLed before it wakes the followers on %s',
  (kind) => {
    let env: TestEnv | undefined;
    let dir = '';
    const procs: ChildProcess[] = [];
    afterEach(async () => {
      await killAll(procs);
      await env?.cleanup();
      env = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    it('still releases every follower, on the step result', async () => {
      dir = mkdtempSync(join(tmpdir(), 'aiecs-fanout-kill-'));
      const leaf = (id: string, task_name: string, input_data: Record<string, unknown>) => ({
        task: {
          queue: 'fast_tasks' as const,
          request: { task_name, task_id: id, user_id: 'u', mode: 'test', service: 'probe', input_data },
        },
      });
      const tree = {
        chain: [
          leaf('f-a', 'sleep', { ms: 300 }),
          { group: [leaf('f-b', 'echo', { tag: 'b' }), leaf('f-c', 'echo', { tag: 'c' })] },
          leaf('f-d', 'echo', { tag: 'd' }),
        ],
      };
      // The worker that completes f-a dies in the same turn, before it can wake f-c's await job.
      const killer = { KILL_ON_COMPLETED: 'f-a' };
      let members: TaskRecord[];
      if (kind === 'embedded') {
        const broker = `embedded:${join(dir, 'store')}`;
        const first = spawn(process.execPath, [EMBEDDED_PROCESS], {
          env: { ...process.env, ...TEST_ENV, ...killer, BROKER: broker, WORKFLOW: JSON.stringify(tree) },
          stdio: 'ignore',
        });
        procs.push(first);
        const signal = await new Promise((r) => first.once('exit', (_code, sig) => r(sig)));
        expect(signal).toBe('SIGKILL');
        const second = spawn(process.execPath, [EMBEDDED_PROCESS], {
          env: { ...process.env, ...TEST_ENV, BROKER: broker, WAIT_ROOT: 'f-d' },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        procs.push(second);
        let out = '';
        second.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        await new Promise((r) => second.once('exit', r));
        const line = out.split('\n').find((l) => l.startsWith('tree '));
        expect(line, out).toBeDefined();
        members = records(JSON.parse(line!.slice('tree '.length)) as WorkflowTree) as TaskRecord[];
      } else {
        env = await TestEnv.create(kind);
        const app = env.app();
        const victim = await env.workerProcess(killer);
        const h = await app.submitWorkflow(tree);
        const signal = await new Promise((r) => victim.proc.once('exit', (_code, sig) => r(sig)));
        expect(signal).toBe('SIGKILL');
        expect((await app.getTask('f-a'))?.status).toBe('completed');
        await env.worker();
        await h.get({ timeout: 90 });
        members = records((await h.tree()).tree) as TaskRecord[];
      }
      expect(members.map((r) => [r.task_id, r.status])).toEqual([
        ['f-a', 'completed'],
        ['f-b', 'completed'],
        ['f-c', 'completed'],
        ['f-d', 'completed'],
      ]);
      expect(members[0]!.attempt).toBe(1);
      for (const member of members.slice(1, 3)) expect(echoed(member).previous).toMatchObject({ slept: 300 });
    }, 150_000);
  },
);
