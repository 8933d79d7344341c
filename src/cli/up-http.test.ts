import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
// The data directory's own secret and the --broker flag decide here, whatever the caller's environment says.
const env: NodeJS.ProcessEnv = { ...process.env, AIECS_LOG_LEVEL: 'warn' };
for (const name of [
  'AIECS_JWT_SECRET',
  'AIECS_JWKS_URL',
  'AIECS_BROKER_URL',
  'CELERY_BROKER_URL',
  'REDIS_URL',
])
  delete env[name];

describe('aiecs up on the embedded store, with commands reaching it over HTTP', () => {
  let dir: string;
  let up: ChildProcess;
  let out = '';
  const runWith = (extraEnv: NodeJS.ProcessEnv, ...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args, '--broker', `embedded:${join(dir, 'store')}`], {
      env: { ...env, ...extraEnv },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const run = (...args: string[]) => runWith({}, ...args);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-up-'));
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
    up.kill('SIGTERM');
    await new Promise((r) => up.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the gateway URL and a working token', async () => {
    const url = /gateway (http:\/\/\S+)/.exec(out)?.[1];
    const token = /token: (\S+)/.exec(out)?.[1];
    expect(url).toBeDefined();
    const res = await fetch(`${url}/api/services`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { services: Array<{ mode: string; service: string }> };
    expect(body.services.map((s) => `${s.mode}/${s.service}`)).toContain('chat/text_analyzer');
  });

  it('prints the dashboard link with an admin token for "you" in its fragment', async () => {
    const url = /gateway (http:\/\/\S+)/.exec(out)?.[1];
    const link = /dashboard: (\S+)/.exec(out)?.[1];
    expect(link?.startsWith(`${url}/dashboard/#token=`)).toBe(true);
    const admin = link!.slice(link!.indexOf('#token=') + '#token='.length);
    const me = await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${admin}` } });
    expect(await me.json()).toMatchObject({ user_id: 'you', admin: true });
  });

  it('submits and waits, reads status and cancels through the running process', () => {
    const done = run(
      'submit',
      '--mode',
      'chat',
      '--service',
      'text_analyzer',
      '--task',
      'analyze_text',
      '--input',
      '{"text":"What a wonderful, happy day."}',
      '--wait',
      '--json',
    );
    expect(done.status, done.stderr).toBe(0);
    const record = JSON.parse(done.stdout.trim()) as {
      task_id: string;
      status: string;
      result: { sentiment: { label: string } };
    };
    expect(record.status).toBe('completed');
    expect(record.result.sentiment.label).toBe('positive');
    const status = run('status', record.task_id, '--json');
    expect(JSON.parse(status.stdout.trim())).toMatchObject({ task_id: record.task_id, status: 'completed' });
    expect(status.status).toBe(0);

    const slow = run(
      'submit',
      '--mode',
      'util',
      '--service',
      'sleeper',
      '--task',
      'sleep',
      '--input',
      '{"seconds":30}',
      '--json',
    );
    const { task_id } = JSON.parse(slow.stdout.trim()) as { task_id: string };
    const cancel = run('cancel', task_id, '--json');
    expect(cancel.status, cancel.stderr).toBe(0);
    const waited = run(
      'submit',
      '--mode',
      'util',
      '--service',
      'sleeper',
      '--task',
      'sleep',
      '--input',
      '{"seconds":30}',
      '--task-id',
      task_id,
      '--wait',
      '--json',
    );
    expect(JSON.parse(waited.stdout.trim())).toMatchObject({ status: 'cancelled' });
    expect(waited.status).toBe(1);
    // `status` of a task that ended badly exits 1, as `--wait` does.
    expect(run('status', task_id).status).toBe(1);
    expect(run('status', 'no-such-task').status).toBe(1);
  });

  it('status of a failed task exits 1', () => {
    const failed = run(
      'submit',
      '--mode',
      'util',
      '--service',
      'sleeper',
      '--task',
      'sleep',
      '--input',
      '{"seconds":-1}',
      '--wait',
      '--json',
    );
    const { task_id, status } = JSON.parse(failed.stdout.trim()) as { task_id: string; status: string };
    expect(status).toBe('failed');
    const shown = run('status', task_id);
    expect(shown.stdout).toMatch(/^status +failed/m);
    expect(shown.status).toBe(1);
  });

  it('refuses an unknown service in one line listing the registered ones, exit 2', () => {
    const refused = run('submit', '--mode', 'chat', '--service', 'nope', '--task', 'x', '--input', '{}');
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim()).toMatch(
      /^aiecs: no service registered as chat\/nope; registered: .*chat\/text_analyzer[^\n]*$/,
    );
  });

  it('says which secret the gateway refused, and what to do, when AIECS_JWT_SECRET differs', () => {
    const refused = runWith({ AIECS_JWT_SECRET: 'not-the-secret-up-uses' }, 'status', 'some-task');
    expect(refused.status).toBe(1);
    const url = /gateway (http:\/\/\S+)/.exec(out)?.[1] ?? '';
    expect(refused.stderr.split('\n').filter(Boolean)).toEqual([
      `aiecs: the gateway at ${url} refused the token signed with AIECS_JWT_SECRET; unset it to use ` +
        "the embedded store's own secret, or set it to the secret the gateway uses (invalid token)",
    ]);
  });

  it('mints tokens with the secret aiecs up keeps', () => {
    const minted = run('token', '--user', 'bob', '--admin', '--ttl', '10m');
    expect(minted.status).toBe(0);
    const [, payload] = minted.stdout.trim().split('.');
    expect(JSON.parse(Buffer.from(payload!, 'base64url').toString())).toMatchObject({
      sub: 'bob',
      admin: true,
    });
  });

  it('runs aiecs schedule through the running process; aiecs beat, which needs the store, says so', () => {
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
