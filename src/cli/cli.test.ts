/**
 * The built `aiecs` command, run as users run it: exit codes, one-line errors, and the demo end
 * to end. Needs `npm run build` first (the test script does that).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../dist/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cwd: string;
let broker: string;

/** The environment without store or log settings of whoever runs the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of ['AIECS_BROKER_URL', 'CELERY_BROKER_URL', 'REDIS_URL', 'AIECS_SERVICES'])
    delete env[name];
  if (!extra.AIECS_LOG_LEVEL) delete env.AIECS_LOG_LEVEL;
  return env;
}

function aiecs(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd, env: cleanEnv(options.env), timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing; run \`npm run build\` first`);
  cwd = mkdtempSync(join(tmpdir(), 'aiecs-cli-test-'));
  broker = `embedded:${join(cwd, 'store')}`;
});

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
});

describe('aiecs (built)', () => {
  it('--help exits 0 and lists the commands', async () => {
    const run = await aiecs(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['worker', 'up', 'submit', 'status', 'cancel', 'workers', 'demo']) {
      expect(run.stdout).toContain(command);
    }
  });

  it('--version prints the version', async () => {
    const run = await aiecs(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('0.1.0');
  });

  it('submit with bad JSON in --input exits 2 with one line on stderr', async () => {
    const run = await aiecs([
      'submit',
      '--broker',
      broker,
      '--mode',
      'chat',
      '--service',
      'text_analyzer',
      '--task',
      'analyze_text',
      '--input',
      '{text: nope',
    ]);
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr).toMatch(/^aiecs: --input is not valid JSON/);
    expect(run.stdout).toBe('');
  });

  it('an unknown flag exits 2 with one line on stderr', async () => {
    const run = await aiecs(['workers', '--broker', broker, '--frobnicate']);
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^aiecs: unknown option '--frobnicate'/)]);
  });

  it('a bad number exits 2 naming the flag', async () => {
    const run = await aiecs(['worker', '--broker', broker, '-c', 'fast_tasks=lots']);
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr).toContain('--concurrency');
  });

  it('bad configuration exits 2 with one line, no stack', async () => {
    const run = await aiecs(['workers'], { env: { CELERY_TASK_TIME_LIMIT: 'soon' } });
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(/^aiecs: invalid configuration: CELERY_TASK_TIME_LIMIT/),
    ]);
  });

  it('status of an unknown id exits 1', async () => {
    const run = await aiecs(['status', 'no-such-task', '--broker', broker]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe('aiecs: no task with id no-such-task');
  });

  it('demo runs four tasks to their expected ends and exits 0', async () => {
    const run = await aiecs(['demo'], { timeoutMs: 85_000 });
    expect(run.code, run.stderr).toBe(0);
    for (const status of ['completed', 'timed_out', 'cancelled']) expect(run.stdout).toContain(status);
    const table = lines(run.stdout).filter((l) => / ok$/.test(l));
    expect(table).toHaveLength(4);
    expect(run.stdout).toContain('all tasks ended as expected');
  }, 90_000);
});

describe('aiecs worker + submit on Redis', () => {
  it('runs a submitted task and drains on SIGTERM', async () => {
    const redis = ['--broker', inject('redisUrl'), '--namespace', `cli_${process.pid}`];
    const worker = spawn(process.execPath, [MAIN, 'worker', ...redis, '-Q', 'fast_tasks', '-c', '4'], {
      cwd,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let ready = '';
    worker.stdout.on('data', (chunk: Buffer) => (ready += chunk.toString()));
    const exited = new Promise<number | null>((done) => worker.on('exit', (code) => done(code)));
    try {
      for (let i = 0; i < 200 && !ready.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(ready).toMatch(/^aiecs worker: store redis:\/\/.*queues fast_tasks\(async x4\)\n$/);

      const run = await aiecs([
        'submit',
        ...redis,
        '--mode',
        'chat',
        '--service',
        'text_analyzer',
        '--task',
        'analyze_text',
        '--input',
        '{"text":"What a lovely, helpful tool."}',
        '--wait',
        '--timeout',
        '20',
        '--json',
      ]);
      expect(run.code, run.stderr).toBe(0);
      expect(lines(run.stdout)).toHaveLength(1);
      const record = JSON.parse(run.stdout) as { status: string; result: { sentiment: { label: string } } };
      expect(record.status).toBe('completed');
      expect(record.result.sentiment.label).toBe('positive');

      const failed = await aiecs([
        'submit',
        ...redis,
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
      ]);
      expect(failed.code).toBe(1);
      expect((JSON.parse(failed.stdout) as { status: string }).status).toBe('failed');

      const workers = await aiecs(['workers', ...redis, '--json']);
      expect(JSON.parse(workers.stdout)).toHaveLength(1);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 60_000);
});
