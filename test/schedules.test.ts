/**
 * Periodic tasks on BullMQ job schedulers (issue 16): next run times (DST), pause/resume,
 * catch-up after downtime, fired tasks as ordinary tasks naming their schedule, a schedule file
 * refused whole, sync, and every tick exactly once with two workers and two `aiecs beat --watch`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleInvalidError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import { FAST_QUEUE } from '../src/core/task.js';
import type { AiecsApp } from '../src/engine/app.js';
import { isScheduledTaskId } from '../src/engine/schedules-fired.js';
import { Schedules } from '../src/engine/schedules.js';
import { checkSchedule, checkScheduleList } from '../src/gateway/schedule-schema.js';
import { readScheduleFile } from '../src/cli/schedule-file.js';
import { TEST_ENV, TestEnv, killAll, until } from './harness.js';

const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const task = (input: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  task_name: 'sleep',
  mode: 'test',
  service: 'probe',
  user_id: 'ops',
  input_data: { ms: 1, ...input },
  ...extra,
});
/** The due time BullMQ put in a fired task's id (repeat:beat:<name>:<ms>). */
const dueOf = (id: string) => Number(id.slice(id.lastIndexOf(':') + 1));
const firedIds = (log: string, name: string) =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`finish repeat:beat:${name}:`))
    .map((l) => l.split(' ')[1]!);

for (const kind of ['redis', 'embedded'] as const) {
  describe(`schedules on ${kind}`, () => {
    let env: TestEnv;
    let app: AiecsApp;
    let schedules: Schedules;
    let dir: string;
    const def = (entry: unknown) => checkSchedule(entry, env.config.maxInputBytes);

    beforeAll(async () => {
      env = await TestEnv.create(kind);
      app = env.app();
      schedules = new Schedules(await app.store(), env.config, silentLogger);
      dir = mkdtempSync(join(tmpdir(), 'aiecs-sched-'));
    });
    afterAll(async () => {
      await schedules?.close();
      await env?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it("computes a cron schedule's next run in its time zone across a DST change", async () => {
      // 03:00 in Berlin is 01:00Z once summer time has started (Sunday 30 March 2098) and 02:00Z
      // once it has ended (Sunday 26 October 2098); the day before each, the other way round.
      // The store's scheduler computes them from `start`: nothing is waited for.
      const cron = { cron: '0 3 * * *', tz: 'Europe/Berlin', task: task() };
      const cases = [
        ['2098-03-29T12:00:00Z', '2098-03-30T01:00:00.000Z'],
        ['2098-03-28T12:00:00Z', '2098-03-29T02:00:00.000Z'],
        ['2098-10-25T12:00:00Z', '2098-10-26T02:00:00.000Z'],
        ['2098-10-24T12:00:00Z', '2098-10-25T01:00:00.000Z'],
      ];
      for (const [start, next] of cases) {
        await schedules.put(def({ name: 'dst', ...cron, start }), 'api');
        expect((await schedules.get('dst')).next_run, start).toBe(next);
      }
      await schedules.remove('dst');
    });

    it('a paused schedule has no scheduler and no pending task; resume brings it back', async () => {
      await schedules.put(def({ name: 'nap', cron: '*/5 * * * *', task: task() }), 'api');
      const queue = await app.queue(FAST_QUEUE);
      const pendingOf = async () =>
        (await queue.getJobs(['waiting', 'delayed', 'prioritized'], 0, -1)).filter((j) =>
          j?.id?.startsWith('repeat:beat:nap:'),
        );
      expect((await schedules.get('nap')).next_run).not.toBeNull();
      expect(await pendingOf()).toHaveLength(1);

      const paused = await schedules.setPaused('nap', true);
      expect(paused).toMatchObject({ paused: true, next_run: null });
      expect(await queue.getJobScheduler('beat:nap')).toBeUndefined();
      expect(await pendingOf()).toHaveLength(0);
      // Paused survives a re-read (it is in the store, not in this process).
      const other = new Schedules(await app.store(), env.config, silentLogger);
      expect((await other.list()).find((s) => s.name === 'nap')).toMatchObject({ paused: true });
      await other.close();

      const resumed = await schedules.setPaused('nap', false);
      expect(resumed.paused).toBe(false);
      expect(Date.parse(resumed.next_run!)).toBeGreaterThan(Date.now());
      expect(await pendingOf()).toHaveLength(1);
      await schedules.remove('nap');
      expect(await pendingOf()).toHaveLength(0);
      await expect(schedules.get('nap')).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND' });
    });

    it("leaves a schedule's pending task to the schedule: purge skips it, a remove is refused", async () => {
      await schedules.put(def({ name: 'kept', cron: '*/5 * * * *', task: task() }), 'api');
      const queue = await app.queue(FAST_QUEUE);
      const pending = async () =>
        (await queue.getJobs(['waiting', 'delayed', 'prioritized'], 0, -1)).filter((j) =>
          j?.id?.startsWith('repeat:beat:kept:'),
        );
      // BullMQ makes a tick's task when the previous one is taken: without it the schedule would
      // stop for good. Its clean (what `aiecs purge` runs) and remove both leave it be.
      await queue.clean(0, 0, 'delayed');
      const [job] = await pending();
      expect(job).toBeDefined();
      await expect(queue.remove(job!.id!)).rejects.toThrow(/belongs to a job scheduler/);
      expect(await pending()).toHaveLength(1);
      await schedules.remove('kept');
      expect(await pending()).toHaveLength(0);
    });

    it('refuses a schedule file whole, naming the entry and the field, before anything changes', async () => {
      const file = join(dir, 'refused.json');
      writeFileSync(file, JSON.stringify([{ name: 'keep', every: 60, task: task() }]));
      expect((await schedules.sync(await readScheduleFile(file, env.config.maxInputBytes))).added).toEqual([
        'keep',
      ]);
      const bad = [
        { name: 'keep', every: 30, task: task() },
        { name: 'nouser', every: 5, task: { ...task(), user_id: undefined } },
        { every: 5, task: task() },
        { name: 'zone', cron: '0 3 * * *', tz: 'Mars/Olympus', task: task() },
        { name: 'eta', every: 5, task: task({}, { countdown: 5 }) },
      ];
      writeFileSync(file, JSON.stringify(bad));
      const error = await readScheduleFile(file, env.config.maxInputBytes).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ScheduleInvalidError);
      const fields = (error as ScheduleInvalidError).issues.map((i) => i.field);
      expect(fields).toEqual(
        expect.arrayContaining(['nouser.task.user_id', '[2].name', 'zone.tz', 'eta.task.countdown']),
      );
      expect(fields.some((f) => f.startsWith('keep'))).toBe(false);
      // A name twice is refused too, naming the second entry.
      const twice = [0, 1].map(() => ({ name: 'dup', every: 5, task: task() }));
      expect(() => checkScheduleList(twice, env.config.maxInputBytes)).toThrow(
        /\[1\]\.name: repeats the name of entry \[0\]/,
      );
      // Nothing changed: keep is still every 60 s.
      expect((await schedules.get('keep')).every).toBe(60);

      // YAML, and a sync that drops `keep` removes it but leaves schedules made through the API.
      await schedules.put(def({ name: 'byapi', every: 60, task: task() }), 'api');
      const yaml = join(dir, 'next.yaml');
      writeFileSync(
        yaml,
        '- name: other\n  every: 60\n  task: {task_name: sleep, mode: test, service: probe, user_id: ops, heavy: true}\n',
      );
      const result = await schedules.sync(await readScheduleFile(yaml, env.config.maxInputBytes));
      expect(result).toMatchObject({ added: ['other'], removed: ['keep'] });
      const names = (await schedules.list()).map((s) => [s.name, s.source, s.queue]);
      expect(names).toEqual([
        ['byapi', 'api', 'fast_tasks'],
        ['other', 'file', 'heavy_tasks'],
      ]);
      // A module exporting the list reads the same.
      const mjs = join(dir, 'next.mjs');
      writeFileSync(
        mjs,
        `export default [{ name: 'other', every: 60, task: ${JSON.stringify({ ...task(), input_data: undefined, heavy: true })} }];\n`,
      );
      expect((await readScheduleFile(mjs, env.config.maxInputBytes))[0]).toMatchObject({
        queue: 'heavy_tasks',
        spec: { name: 'other', every: 60 },
      });
      // The same file again changes nothing.
      expect(await schedules.sync(await readScheduleFile(yaml, env.config.maxInputBytes))).toMatchObject({
        added: [],
        updated: [],
        removed: [],
        unchanged: ['other'],
      });
      // `paused` in the file is an edit: the scheduler goes, and comes back when it is dropped.
      const [other] = await readScheduleFile(yaml, env.config.maxInputBytes);
      const pausedOther = { ...other!, spec: { ...other!.spec, paused: true } };
      expect((await schedules.sync([pausedOther])).updated).toEqual(['other']);
      expect(await schedules.get('other')).toMatchObject({ paused: true, next_run: null });
      expect((await schedules.sync([other!])).updated).toEqual(['other']);
      expect((await schedules.get('other')).paused).toBe(false);
      // A pause by hand stays while the file's entry is unchanged.
      await schedules.setPaused('other', true);
      expect((await schedules.sync([other!])).unchanged).toEqual(['other']);
      expect((await schedules.get('other')).paused).toBe(true);
      await schedules.sync([]);
      await schedules.remove('byapi');
      expect(await schedules.list()).toEqual([]);
    });

    it('fires ordinary tasks naming the schedule, listed under their user; run-now too', async () => {
      await env.worker();
      await schedules.put(def({ name: 'hourly', cron: '0 * * * *', task: task() }), 'api');
      const now = await schedules.runNow('hourly');
      const record = await app.waitFor(now.task_id, now.queue, { timeout: 30 });
      expect(record).toMatchObject({ status: 'completed', schedule: 'hourly', user_id: 'ops' });

      await schedules.put(def({ name: 'often', every: 0.5, limit: 2, task: task() }), 'api');
      const fired = await until(
        async () => {
          const page = await app.listTasks('ops', { limit: 50 });
          const mine = page.tasks.filter((t) => t.schedule === 'often' && t.status === 'completed');
          return mine.length === 2 ? mine : undefined;
        },
        30_000,
        'two runs of often',
      );
      for (const t of fired) expect(isScheduledTaskId(t.task_id)).toBe(true);
      // Its limit reached, the schedule says so.
      expect(await until(async () => (await schedules.get('often')).next_run === null || undefined)).toBe(
        true,
      );
      expect((await schedules.get('often')).runs).toBe(2);
      await schedules.remove('often');
      await schedules.remove('hourly');
    });
  });
}

describe.each(['redis', 'embedded'] as const)('schedules with workers coming and going on %s', (kind) => {
  let env: TestEnv;
  let dir: string;
  beforeAll(async () => {
    env = await TestEnv.create(kind);
    dir = mkdtempSync(join(tmpdir(), 'aiecs-sched-'));
  });
  afterAll(async () => {
    await env?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a tick missed while no worker ran fires once, not once per missed tick', async () => {
    const app = env.app();
    const schedules = new Schedules(await app.store(), env.config, silentLogger);
    const log = join(dir, 'catchup.log');
    writeFileSync(log, '');
    const every = 0.25;
    await schedules.put(
      checkSchedule({ name: 'catchup', every, task: task({ log }) }, env.config.maxInputBytes),
      'api',
    );
    const queue = await app.queue(FAST_QUEUE);
    const [first] = (await queue.getJobs(['waiting', 'prioritized', 'delayed'], 0, -1)).filter((j) =>
      j?.id?.startsWith('repeat:beat:catchup:'),
    );
    // No worker for many intervals: with one per tick, eight would be due by now.
    await until(async () => Date.now() > dueOf(first!.id!) + 8 * every * 1000 || undefined);
    const back = Date.now();
    await env.worker();
    const ids = await until(
      async () => {
        const done = firedIds(log, 'catchup');
        return done.length >= 3 ? done : undefined;
      },
      30_000,
      'three runs',
    );
    const missed = ids.filter((id) => dueOf(id) < back);
    expect(missed).toEqual([first!.id]);
    // The next tick is the first slot after the workers came back, then one per interval.
    const later = ids.filter((id) => dueOf(id) >= back).map(dueOf);
    expect(later.length).toBeGreaterThanOrEqual(2);
    expect(later[1]! - later[0]!).toBe(every * 1000);
    expect(new Set(ids).size).toBe(ids.length);
    await schedules.remove('catchup');
    await schedules.close();
  });
  it('fires every tick once with two workers and two syncers applying the same file', async () => {
    const app = env.app();
    const store = await app.store();
    const [a, b] = [0, 1].map(() => new Schedules(store, env.config, silentLogger));
    const log = join(dir, 'twice.log');
    writeFileSync(log, '');
    const entry = { name: 'twice', every: 0.5, task: task({ log }) };
    const list = checkScheduleList([entry], env.config.maxInputBytes);
    await env.worker();
    await env.worker();
    const results = await Promise.all([a!.sync(list), b!.sync(list)]);
    expect(results.map((r) => r.added.length).sort()).toEqual([0, 1]);
    await until(async () => firedIds(log, 'twice').length >= 6 || undefined, 30_000, 'six ticks');
    await Promise.all([a!.sync(list), b!.sync(list)]);
    await until(async () => firedIds(log, 'twice').length >= 8 || undefined, 30_000, 'eight ticks');
    await a!.sync([]);
    const starts = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('start '))
      .map((l) => l.split(' ')[1]!);
    expect(new Set(starts).size).toBe(starts.length);
    const dues = [...new Set(firedIds(log, 'twice'))].map(dueOf).sort((x, y) => x - y);
    for (let i = 1; i < dues.length; i++) expect(dues[i]! - dues[i - 1]!).toBe(500);
    await Promise.all([a!.close(), b!.close()]);
  });
});

describe('two workers and two `aiecs beat --watch` on redis', () => {
  let env: TestEnv;
  let dir: string;
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    env = await TestEnv.create('redis');
    dir = mkdtempSync(join(tmpdir(), 'aiecs-beat-'));
  });
  afterEach(async () => killAll(procs));
  afterAll(async () => {
    await env?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const beat = (file: string) => {
    const proc = spawn(
      process.execPath,
      [MAIN, '--broker', env.brokerUrl, '--namespace', env.namespace, 'beat', '--schedule', file, '--watch'],
      { env: { ...process.env, ...TEST_ENV, AIECS_LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    procs.push(proc);
    const out = { stdout: '', stderr: '' };
    proc.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
    return out;
  };

  const cli = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const proc = spawn(
        process.execPath,
        [MAIN, '--broker', env.brokerUrl, '--namespace', env.namespace, ...args],
        {
          env: { ...process.env, ...TEST_ENV },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      procs.push(proc);
      let stdout = '';
      let stderr = '';
      proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.once('exit', (code) => resolve({ code, stdout, stderr }));
    });

  it('aiecs schedule add, list, pause, resume, run-now, remove; beat refuses a bad file with exit 2', async () => {
    const entry = JSON.stringify({ name: 'cli', cron: '0 3 * * *', tz: 'Europe/Berlin', task: task() });
    const added = await cli('schedule', 'add', entry, '--json');
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'cli', source: 'api', paused: false });
    const listed = await cli('schedule', 'list');
    expect(listed.stdout).toMatch(
      /^cli\s+cron 0 3 \* \* \* Europe\/Berlin\s+test\/probe\.sleep\s+fast_tasks\s+\d{4}-/m,
    );
    expect((await cli('schedule', 'pause', 'cli')).stdout).toBe('cli: paused\n');
    expect((await cli('schedule', 'resume', 'cli')).stdout).toMatch(/^cli: resumed, next run \d{4}-/);
    const fired = JSON.parse((await cli('schedule', 'run-now', 'cli', '--json')).stdout) as {
      task_id: string;
    };
    const app = env.app();
    expect(await app.getTask(fired.task_id)).toMatchObject({ schedule: 'cli', user_id: 'ops' });
    expect((await cli('schedule', 'remove', 'cli')).stdout).toBe('cli: removed\n');
    const missing = await cli('schedule', 'pause', 'cli');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no schedule named cli/);

    const file = join(dir, 'bad.yaml');
    writeFileSync(file, '- name: bad\n  every: 5\n  task: {task_name: sleep, mode: test, service: probe}\n');
    const refused = await cli('beat', '--schedule', file);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/bad\.task\.user_id: is required/);
    expect((await cli('schedule', 'list', '--json')).stdout).toBe('[]\n');
  });

  it('fires every tick exactly once while both re-apply edits, and keeps the schedules on a bad edit', async () => {
    const log = join(dir, 'ticks.log');
    writeFileSync(log, '');
    const file = join(dir, 'schedule.json');
    const tick = { name: 'tick', every: 1, task: task({ log }) };
    writeFileSync(file, JSON.stringify([tick]));
    await env.worker();
    await env.worker();
    const beats = [beat(file), beat(file)];
    await until(async () => beats.every((b) => /watching/.test(b.stdout)) || undefined, 30_000, 'beats');
    expect(beats.map((b) => /1 added \(tick\)/.test(b.stdout)).sort()).toEqual([false, true]);

    // Both apply an edit (a second schedule), then a bad edit each refuses with one error.
    await until(async () => firedIds(log, 'tick').length >= 3 || undefined, 30_000, 'three ticks');
    writeFileSync(file, JSON.stringify([tick, { name: 'other', cron: '0 0 1 1 *', task: task() }]));
    // One of them adds it; the other, after it (the sync lease), finds it in place.
    const syncs = (b: { stdout: string }) => b.stdout.match(/: \d+ added/g)?.length ?? 0;
    await until(async () => beats.every((b) => syncs(b) >= 2) || undefined, 30_000, 'edit');
    expect(beats.map((b) => /1 added \(other\)/.test(b.stdout)).sort()).toEqual([false, true]);
    await until(async () => firedIds(log, 'tick').length >= 6 || undefined, 30_000, 'six ticks');
    writeFileSync(file, JSON.stringify([{ ...tick, every: 'often' }]));
    await until(async () => beats.every((b) => /tick\.every/.test(b.stderr)) || undefined, 30_000, 'refusal');
    for (const b of beats) expect(b.stderr).toMatch(/schedule file refused; the previous schedules stay/);
    // The issue's 15 s: fifteen ticks, each due one second after the one before.
    await until(async () => firedIds(log, 'tick').length >= 15 || undefined, 40_000, 'fifteen ticks');

    const app = env.app();
    const schedules = new Schedules(await app.store(), env.config, silentLogger);
    expect((await schedules.list()).map((s) => s.name)).toEqual(['other', 'tick']);
    // Every tick ran once: one start and one finish per task id, due times one second apart.
    const starts = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('start repeat:beat:tick:'))
      .map((l) => l.split(' ')[1]!);
    const ids = firedIds(log, 'tick');
    expect(new Set(starts).size).toBe(starts.length);
    expect(new Set(ids).size).toBe(ids.length);
    const dues = [...new Set(ids)].map(dueOf).sort((a, b) => a - b);
    for (let i = 1; i < dues.length; i++) expect(dues[i]! - dues[i - 1]!).toBe(1000);
    await schedules.sync([]);
    await schedules.close();
  });
});
