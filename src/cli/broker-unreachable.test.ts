/**
 * The built `aiecs` command pointed at a store that is not there (issue 11 item 7): one line on
 * stderr that names the URL, what failed and where the URL came from, no log lines before it,
 * and exit code 1, as for any store failure. Needs `npm run build` first.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/lifecycle.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../dist/cli/main.js');
const cwd = mkdtempSync(join(tmpdir(), 'aiecs-cli-broker-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function aiecs(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, AIECS_STORE_TIMEOUT_MS: '1000' };
  for (const name of [
    'AIECS_BROKER_URL',
    'CELERY_BROKER_URL',
    'REDIS_URL',
    'AIECS_LOG_LEVEL',
    'AIECS_LOG_FORMAT',
  ])
    delete env[name];
  env.AIECS_JWT_SECRET = 'broker-test-secret-0123456789abcdef';
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { cwd, env, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const SUBMIT = [
  'submit',
  '--mode',
  'chat',
  '--service',
  'text_analyzer',
  '--task',
  'analyze_text',
  '--input',
  '{}',
];

describe('aiecs with a store that cannot be reached', () => {
  it.each([
    ['status', ['status', 'some-task']],
    ['submit', SUBMIT],
    ['worker', ['worker']],
  ])('%s on Redis says so in one line with a hint, and exits 1', async (_name, args) => {
    const port = await freePort();
    const run = await aiecs([...args, '--broker', `redis://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).not.toContain('{"level"');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    // The cause is what the connection met, not a bare timeout.
    expect(run.stderr).toMatch(
      new RegExp(
        `^aiecs: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} within 1000 ms \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\); check --broker or AIECS_BROKER_URL`,
      ),
    );
  });

  it.each([
    ['status', ['status', 'some-task']],
    ['submit', SUBMIT],
    ['worker', ['worker']],
  ])('%s on PostgreSQL says so in one line with a hint, and exits 1', async (_name, args) => {
    const port = await freePort();
    const run = await aiecs([...args, '--broker', `postgres://u:secret@127.0.0.1:${port}/x`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).not.toContain('{"level"');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `^aiecs: cannot connect to PostgreSQL at postgres://u:\\*\\*\\*@127\\.0\\.0\\.1:${port}/x \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\); check --broker or AIECS_BROKER_URL`,
      ),
    );
  });

  it('says that the running aiecs up cannot be reached when its gateway is gone', async () => {
    // What a killed `aiecs up` leaves: its secret and gateway address, under a pid that is alive.
    const dir = join(cwd, 'stale-up');
    const port = await freePort();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'jwt-secret'), 'stale-up-secret-0123456789abcdef0123\n');
    writeFileSync(
      join(dir, 'gateway.json'),
      JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid }),
    );
    const run = await aiecs(['status', 'some-task', '--broker', `embedded:${dir}`]);
    expect(run.code).toBe(1);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `^aiecs: cannot reach the running aiecs up at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); is it still running\\?`,
      ),
    );
  });
});
