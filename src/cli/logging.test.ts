/**
 * Celery's log flags on the built `aiecs` command: `--loglevel`/`-l` (Celery's level names too),
 * `--logfile` (JSON lines appended to the file, nothing on the terminal) and `--log-format`.
 * Needs `npm run build` first (the test script does that).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../dist/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cwd: string;

/** The environment without the store or log settings of whoever runs the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env))
    if (/^(AIECS_|CELERY_)/.test(name) || name === 'REDIS_URL' || name === 'PORT') delete env[name];
  return { ...env, ...extra };
}

function aiecs(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd, env: cleanEnv(env), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

interface Entry {
  level: number;
  msg: string;
  [key: string]: unknown;
}

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing; run \`npm run build\` first`);
  cwd = mkdtempSync(join(tmpdir(), 'aiecs-log-test-'));
});

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
});

describe('aiecs log flags (built)', () => {
  it('--logfile appends JSON lines to the file, task ends included, and leaves the terminal alone', async () => {
    const file = join(cwd, 'demo.log');
    // A line already there stays: the file is appended to, never truncated.
    writeFileSync(file, '{"msg":"earlier"}\n');
    // The flags before and after the command name, as Celery users write them.
    const run = await aiecs(['--loglevel', 'DEBUG', 'demo', '--logfile', file], {}, 85_000);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('all tasks ended as expected');

    const written = lines(readFileSync(file, 'utf8'));
    expect(written[0]).toBe('{"msg":"earlier"}');
    const entries = written.map((line) => JSON.parse(line) as Entry);
    const ends = entries.filter((e) => /^Task (completed|failed|timed out|cancelled)$/.test(e.msg));
    expect(ends.map((e) => e.msg).sort()).toEqual([
      'Task cancelled',
      'Task completed',
      'Task completed',
      'Task timed out',
    ]);
    for (const end of ends) {
      expect(Object.keys(end)).toEqual(
        expect.arrayContaining([
          'task_id',
          'task_name',
          'user_id',
          'queue',
          'attempt',
          'status',
          'duration_ms',
          'worker',
        ]),
      );
    }
    expect(ends.find((e) => e.msg === 'Task timed out')).toMatchObject({ level: 50, status: 'timed_out' });
    expect(ends.find((e) => e.queue === 'heavy_tasks')).toMatchObject({ level: 30, status: 'completed' });
    // --loglevel DEBUG (Celery's spelling): debug lines are written too.
    expect(entries.some((e) => e.level === 20)).toBe(true);
  }, 90_000);

  it('-l warning keeps warnings and errors only; --log-format pretty writes human lines to stderr', async () => {
    const run = await aiecs(['demo', '-l', 'warning', '--log-format', 'pretty'], {}, 85_000);
    expect(run.code, run.stderr).toBe(0);
    const logged = lines(run.stderr);
    // Not a terminal, yet human lines: the flag wins over auto.
    for (const line of logged) expect(line).toMatch(/^\d\d:\d\d:\d\d (WARN |ERROR) /);
    expect(logged).toContainEqual(
      expect.stringMatching(/ WARN {2}default AI provider openai is not configured: /),
    );
    expect(logged).toContainEqual(
      expect.stringMatching(/ ERROR Task timed out {2}.*task_name=sleep .*status=timed_out duration_ms=\d+/),
    );
    expect(run.stderr).not.toContain('Task completed');
  }, 90_000);

  it('a bad --loglevel or --log-format is one line and exit 2', async () => {
    const level = await aiecs(['status', 'x', '--loglevel', 'loud']);
    expect(level.code).toBe(2);
    expect(lines(level.stderr)).toEqual([
      expect.stringMatching(
        /^aiecs: option '-l, --loglevel <level>' argument 'loud' is invalid\. Expected debug, info, warning/,
      ),
    ]);
    const format = await aiecs(['status', 'x', '--log-format', 'xml']);
    expect(format.code).toBe(2);
    expect(lines(format.stderr)).toEqual([expect.stringMatching(/^aiecs: .*--log-format.*xml.*json/)]);
  });

  it('a log file that cannot be opened is one line naming it, exit 2, before anything starts', async () => {
    const missing = join(cwd, 'no-such-dir', 'aiecs.log');
    for (const run of [
      await aiecs(['status', 'x', '--logfile', missing]),
      await aiecs(['status', 'x'], { AIECS_LOG_FILE: missing }),
    ]) {
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(lines(run.stderr)).toEqual([
        `aiecs: log file ${missing} cannot be opened for appending (ENOENT); check --logfile or AIECS_LOG_FILE`,
      ]);
    }
  });
});
