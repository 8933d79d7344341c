// `aiecs schedule` on the embedded store while `aiecs up` owns it: the commands go through its
// /api/schedules (the store is that process's), and `aiecs beat`, which needs the store, says so.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const env: NodeJS.ProcessEnv = { ...process.env, AIECS_LOG_LEVEL: 'warn' };
for (const name of [
  'AIECS_JWT_SECRET',
  'AIECS_JWKS_URL',
  'AIECS_BROKER_URL',
  'CELERY_BROKER_URL',
  'REDIS_URL',
])
  delete env[name];

describe('aiecs schedule through a running aiecs up (embedded)', () => {
  let dir: string;
  let up: ChildProcess;
  let out = '';
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args, '--broker', `embedded:${join(dir, 'store')}`], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-up-sched-'));
    up = spawn(process.execPath, [CLI, 'up', '--broker', `embedded:${join(dir, 'store')}`, '--port', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`aiecs up did not start: ${out}`)), 60_000);
      up.stdout!.on('data', () => {
        if (out.includes('token:')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  });

  afterAll(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('adds, lists, pauses, runs now and removes a schedule over HTTP; beat needs the store', () => {
    const entry = {
      name: 'hourly',
      cron: '0 * * * *',
      task: {
        task_name: 'sleep',
        mode: 'util',
        service: 'sleeper',
        user_id: 'you',
        input_data: { seconds: 0 },
      },
    };
    const added = run('schedule', 'add', JSON.stringify(entry), '--json');
    expect(added.status, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'hourly', source: 'api', paused: false });
    expect(run('schedule', 'list').stdout).toMatch(/^hourly\s+cron 0 \* \* \* \*\s+util\/sleeper\.sleep/m);
    expect(run('schedule', 'pause', 'hourly').stdout).toBe('hourly: paused\n');
    const fired = run('schedule', 'run-now', 'hourly', '--json');
    expect(JSON.parse(fired.stdout)).toMatchObject({ schedule: 'hourly', queue: 'fast_tasks' });
    const id = (JSON.parse(fired.stdout) as { task_id: string }).task_id;
    expect(JSON.parse(run('status', id, '--json').stdout)).toMatchObject({ task_id: id, schedule: 'hourly' });
    expect(run('schedule', 'remove', 'hourly').stdout).toBe('hourly: removed\n');
    const missing = run('schedule', 'remove', 'hourly');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no schedule named hourly/);

    const file = join(dir, 'schedule.json');
    writeFileSync(file, JSON.stringify([entry]));
    const beat = run('beat', '--schedule', file);
    expect(beat.status).toBe(1);
    expect(beat.stderr).toMatch(/owned by the running `aiecs up`/);
  });
});
