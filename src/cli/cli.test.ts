/**
 * The built `aiecs` command, run as users run it: exit codes, one-line errors, and the demo end
 * to end. Needs `npm run build` first (the test script does that).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../dist/cli/main.js');
const MODULE_LOG = resolve(fileURLToPath(import.meta.url), '../../../test/fixtures/module-log.mjs');
const INDEX = pathToFileURL(resolve(fileURLToPath(import.meta.url), '../../../dist/index.js')).href;

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
  for (const name of [
    'AIECS_BROKER_URL',
    'CELERY_BROKER_URL',
    'REDIS_URL',
    'AIECS_SERVICES',
    'AIECS_LOG_FORMAT',
    'AIECS_JWT_SECRET',
    'AIECS_JWKS_URL',
    'PORT',
  ])
    if (!(name in extra)) delete env[name];
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

/** Listens on `port` (0: any free one) so that nothing else can; rejects when it is taken. */
function holdPort(port: number): Promise<{ server: Server; port: number }> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      done({ server, port: typeof address === 'object' && address ? address.port : port });
    });
  });
}
const release = (held: { server: Server } | undefined) =>
  new Promise<void>((done) => (held ? held.server.close(() => done()) : done()));

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing; run \`npm run build\` first`);
  cwd = mkdtempSync(join(tmpdir(), 'aiecs-cli-test-'));
  broker = `embedded:${join(cwd, 'store')}`;
  // Two service modules, as users pass them: `--services ./a.mjs ./b.mjs`.
  for (const name of ['a', 'b']) {
    writeFileSync(
      join(cwd, `${name}.mjs`),
      `import { registerService } from '${INDEX}';\n` +
        `registerService('extra', '${name}', { run: () => ({ from: '${name}' }) });\n`,
    );
  }
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

  it('a mistyped flag is reported as itself, with a hint, before any missing one', async () => {
    const run = await aiecs(['submit', '--mdoe', 'chat', '--service', 's', '--task', 't', '--input', '{}']);
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toEqual(["aiecs: unknown option '--mdoe' (Did you mean --mode?)"]);
    // Without a typo, a missing required flag is still named.
    const missing = await aiecs(['submit', '--service', 's', '--task', 't', '--input', '{}']);
    expect(missing.code).toBe(2);
    expect(lines(missing.stderr)).toEqual(["aiecs: required option '--mode <mode>' not specified"]);
    const token = await aiecs(['token']);
    expect(lines(token.stderr)).toEqual(["aiecs: required option '--user <id>' not specified"]);
  });

  it('gateway without a secret says so in one line, without a doubled prefix', async () => {
    const run = await aiecs(['gateway', '--broker', inject('redisUrl')]);
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(/^aiecs: the gateway needs AIECS_JWT_SECRET or AIECS_JWKS_URL/),
    ]);
  });

  it('up on a busy port says so in one line before opening the store or starting a worker', async () => {
    const held = await holdPort(0);
    try {
      const expected = `aiecs: port ${held.port} is in use (another aiecs up?); pass --port N or set PORT`;
      // Named by the flag, or by PORT; several service modules after one --services.
      for (const [args, env] of [
        [['--port', String(held.port)], {}],
        [[], { PORT: String(held.port) }],
      ] as const) {
        const store = join(cwd, `busy-${Object.keys(env).length}`);
        const run = await aiecs(
          ['up', '--broker', `embedded:${store}`, '--services', './a.mjs', './b.mjs', ...args],
          {
            env,
          },
        );
        expect(run.code).toBe(1);
        expect(run.stdout).toBe('');
        expect(lines(run.stderr)).toEqual([expected]);
        expect(existsSync(store)).toBe(false);
      }
    } finally {
      await release(held);
    }
  });

  it('gateway on a busy port says so in one line', async () => {
    const held = await holdPort(0);
    try {
      const run = await aiecs(
        [
          'gateway',
          '--broker',
          inject('redisUrl'),
          '--port',
          String(held.port),
          '--services',
          './a.mjs',
          './b.mjs',
        ],
        { env: { AIECS_JWT_SECRET: 'cli-test-secret' } },
      );
      expect(run.code).toBe(1);
      expect(lines(run.stderr)).toEqual([
        `aiecs: port ${held.port} is in use (another aiecs gateway or up?); pass --port N or set PORT`,
      ]);
    } finally {
      await release(held);
    }
  });

  it('submit refuses an unknown service on the embedded store, listing the registered ones', async () => {
    const run = await aiecs(
      [
        'submit',
        '--broker',
        broker,
        '--mode',
        'chat',
        '--service',
        'no_such_service',
        '--task',
        'analyze_text',
        '--input',
        '{"text":"hi"}',
      ],
      // The store's first start (initdb) takes a while on a busy machine.
      { timeoutMs: 90_000 },
    );
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(
        /^aiecs: no service registered as chat\/no_such_service; registered: .*chat\/text_analyzer/,
      ),
    ]);
  }, 100_000);

  it('a short-lived command prints no log lines, only its one error line', async () => {
    // Nothing listens there: the store client retries and gives up.
    const nobody = await holdPort(0);
    await release(nobody);
    const run = await aiecs(['workers', '--broker', `redis://127.0.0.1:${nobody.port}`]);
    expect(run.code).not.toBe(0);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^aiecs: .*127\.0\.0\.1/)]);
    expect(run.stderr).not.toContain('{');
  });

  it('status of an unknown id exits 1', async () => {
    const run = await aiecs(['status', 'no-such-task', '--broker', broker]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe('aiecs: no task with id no-such-task');
  });

  it('demo runs four tasks to their expected ends and exits 0, whatever holds PORT or 8000', async () => {
    // The README tour runs the demo while `npm start` holds the port: it must not listen at all.
    const held = await holdPort(0);
    // 8000 is the default PORT: held here, or already held by someone else, which is as good.
    const default8000 = await holdPort(8000).catch(() => undefined);
    try {
      const run = await aiecs(['demo'], { timeoutMs: 85_000, env: { PORT: String(held.port) } });
      expect(run.code, run.stderr).toBe(0);
      for (const status of ['completed', 'timed_out', 'cancelled']) expect(run.stdout).toContain(status);
      const table = lines(run.stdout).filter((l) => / ok$/.test(l));
      expect(table).toHaveLength(4);
      expect(run.stdout).toContain('all tasks ended as expected');
      // No log lines (a provider without a key is no news in a demo).
      expect(run.stderr).toBe('');
    } finally {
      await release(held);
      await release(default8000);
    }
  }, 90_000);
});

describe('aiecs worker + submit on Redis', () => {
  it('loads neither the Celery bridge nor the history consumer without --celery or a history', async () => {
    const log = join(cwd, `modules-${process.pid}.log`);
    const worker = spawn(
      process.execPath,
      [
        '--import',
        MODULE_LOG,
        MAIN,
        'worker',
        '--broker',
        inject('redisUrl'),
        '--namespace',
        `mods_${process.pid}`,
      ],
      { cwd, env: { ...cleanEnv(), MODULE_LOG: log }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let ready = '';
    worker.stdout.on('data', (chunk: Buffer) => (ready += chunk.toString()));
    const exited = new Promise<number | null>((done) => worker.on('exit', (code) => done(code)));
    try {
      for (let i = 0; i < 200 && !/^ {2}history: /m.test(ready); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(ready).toMatch(/^ {2}history: task history off/m);
    } finally {
      worker.kill('SIGTERM');
      await exited;
    }
    const loaded = readFileSync(log, 'utf8').split('\n');
    expect(loaded.some((url) => url.endsWith('/dist/worker/worker.js'))).toBe(true);
    expect(
      loaded.filter((url) =>
        /\/worker\/celery\/|\/history-(consumer|entries)\.js$|\/event-follower\.js$/.test(url),
      ),
    ).toEqual([]);
  }, 60_000);

  it('runs a submitted task and drains on SIGTERM', async () => {
    const redis = ['--broker', inject('redisUrl'), '--namespace', `cli_${process.pid}`];
    const worker = spawn(
      process.execPath,
      [MAIN, 'worker', ...redis, '-Q', 'fast_tasks', '-c', '4', '--services', './a.mjs', './b.mjs'],
      { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let ready = '';
    let logs = '';
    worker.stdout.on('data', (chunk: Buffer) => (ready += chunk.toString()));
    worker.stderr.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const exited = new Promise<number | null>((done) => worker.on('exit', (code) => done(code)));
    try {
      // The ready line, then the line that says task history is off (Redis, no AIECS_HISTORY_URL).
      const readyLines = () => ready.split('\n').length - 1;
      for (let i = 0; i < 200 && readyLines() < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(ready).toMatch(
        /^aiecs worker: store redis:\/\/.*queues fast_tasks\(async x4\)\n {2}history: task history off \(.*AIECS_HISTORY_URL.*\)\n$/,
      );

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
      const failedRecord = JSON.parse(failed.stdout) as { status: string; task_id: string };
      expect(failedRecord.status).toBe('failed');

      // `status` exits as `--wait` does: 1 for a task that failed, 0 for one that completed.
      expect((await aiecs(['status', failedRecord.task_id, ...redis])).code).toBe(1);
      const completedId = (JSON.parse(run.stdout) as { task_id: string }).task_id;
      expect((await aiecs(['status', completedId, ...redis])).code).toBe(0);

      // Both modules given after one --services were loaded.
      for (const name of ['a', 'b']) {
        const extra = await aiecs([
          'submit',
          ...redis,
          '--mode',
          'extra',
          '--service',
          name,
          '--task',
          'run',
          '--input',
          '{}',
          '--wait',
          '--timeout',
          '20',
          '--json',
        ]);
        expect(extra.code, extra.stderr).toBe(0);
        expect(JSON.parse(extra.stdout)).toMatchObject({ status: 'completed', result: { from: name } });
      }

      // An unknown service is refused up front, as the gateway does, naming what the workers run.
      const unknown = await aiecs([
        'submit',
        ...redis,
        '--mode',
        'extra',
        '--service',
        'c',
        '--task',
        'run',
        '--input',
        '{}',
      ]);
      expect(unknown.code).toBe(2);
      expect(unknown.stdout).toBe('');
      expect(lines(unknown.stderr)).toEqual([
        expect.stringMatching(/^aiecs: no service registered as extra\/c; registered: .*extra\/a, extra\/b/),
      ]);

      const workers = await aiecs(['workers', ...redis, '--json']);
      expect(JSON.parse(workers.stdout)).toHaveLength(1);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // Not a terminal: the worker's log lines are JSON, one per line.
    expect(lines(logs).length).toBeGreaterThan(0);
    for (const line of lines(logs)) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(logs).toContain('"msg":"worker ready"');
  }, 60_000);
});
