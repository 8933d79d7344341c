/**
 * `aiecs workflow submit` and `aiecs status --tree`: the tree helpers, then the built command on
 * the embedded store (in process) and on Redis with a worker. Needs `npm run build` first.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WireWorkflowTree } from '../gateway/workflow-schema.js';
import { finalLeaves, formatTree, treeExitCode, treeLeaves } from './workflow.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../dist/cli/main.js');
const INDEX = pathToFileURL(resolve(fileURLToPath(import.meta.url), '../../../dist/index.js')).href;

const leaf = (id: string, status: string | null, extra: Record<string, unknown> = {}) =>
  ({
    task_id: id,
    queue: 'fast_tasks',
    status,
    task:
      status === null
        ? null
        : { task_id: id, status, mode: 'wf', service: 'steps', task_name: 'add', error: null, ...extra },
  }) as unknown as WireWorkflowTree;

describe('workflow tree helpers', () => {
  const tree = {
    chain: [
      { group: [leaf('a', 'completed'), leaf('b', 'completed')] },
      { chord: { header: [leaf('c', 'completed'), leaf('d', null)], body: leaf('e', 'running') } },
    ],
  } as WireWorkflowTree;

  it('lists the leaves in tree order and the final ones a wait needs', () => {
    expect(treeLeaves(tree).map((l) => l.task_id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(finalLeaves(tree).map((l) => l.task_id)).toEqual(['e']);
    expect(
      finalLeaves({
        group: [{ chain: [leaf('x', 'pending'), leaf('y', 'pending')] }, leaf('z', 'pending')],
      }).map((l) => l.task_id),
    ).toEqual(['y', 'z']);
  });

  it('prints one line per node, members indented', () => {
    expect(formatTree(tree)).toBe(
      [
        'chain',
        '  group',
        '    a  completed  wf/steps.add',
        '    b  completed  wf/steps.add',
        '  chord',
        '    header',
        '      c  completed  wf/steps.add',
        '      d  removed',
        '    body',
        '      e  running  wf/steps.add',
      ].join('\n'),
    );
    const failed = leaf('f', 'failed', { error: { code: 'E003', message: 'boom' } });
    expect(formatTree(failed)).toBe('f  failed  wf/steps.add  E003: boom');
  });

  it('exits 0 when every member completed, 1 when one did not, nothing while one runs', () => {
    expect(treeExitCode(tree)).toBeUndefined();
    expect(treeExitCode({ group: [leaf('a', 'completed'), leaf('b', null)] })).toBe(1);
    expect(treeExitCode({ group: [leaf('a', 'completed'), leaf('b', 'completed')] })).toBe(0);
    expect(treeExitCode({ chain: [leaf('a', 'completed'), leaf('b', 'cancelled')] })).toBe(1);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cwd: string;

function aiecs(args: string[]): Promise<Run> {
  const env = { ...process.env };
  for (const name of [
    'AIECS_BROKER_URL',
    'CELERY_BROKER_URL',
    'REDIS_URL',
    'AIECS_LOG_LEVEL',
    'AIECS_JWT_SECRET',
  ])
    delete env[name];
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { cwd, env, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');
const step = (by: number) => ({ mode: 'wf', service: 'steps', task_name: 'add', input_data: { by } });
const write = (name: string, value: unknown) => {
  writeFileSync(join(cwd, name), JSON.stringify(value));
  return name;
};

describe('aiecs workflow (built)', () => {
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing; run \`npm run build\` first`);
    cwd = mkdtempSync(join(tmpdir(), 'aiecs-wf-cli-'));
    // A chain step adds `by` to the previous step's n.
    writeFileSync(
      join(cwd, 'steps.mjs'),
      `import { registerService } from '${INDEX}';\n` +
        `registerService('wf', 'steps', {\n` +
        `  add: (input) => ({ n: (input.previous?.n ?? 0) + input.by }),\n` +
        `  fail: () => { throw new Error('on purpose'); },\n` +
        `});\n`,
    );
  });
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('refuses a bad file in one line naming the path, exit 2, before opening the store', async () => {
    const broker = ['--broker', `embedded:${join(cwd, 'store')}`];
    const bad = write('bad.json', { chain: [step(1), { ...step(2), mode: 'no mode!' }] });
    const run = await aiecs(['workflow', 'submit', bad, ...broker]);
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(/^aiecs: invalid workflow: chain\[1\]\.mode: /),
    ]);
    const notJson = await aiecs(['workflow', 'submit', 'missing.json', ...broker]);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^aiecs: FILE: cannot read missing\.json/);
  });

  it('queues on the embedded store in process: prints the root id; --wait is refused; status --tree shows it pending', async () => {
    const broker = ['--broker', `embedded:${join(cwd, 'store')}`];
    // The built-in services: no worker is needed to accept them.
    const text = {
      mode: 'chat',
      service: 'text_analyzer',
      task_name: 'analyze_text',
      input_data: { text: 'hi' },
    };
    const file = write('chain.json', { chain: [text, text] });
    const run = await aiecs(['workflow', 'submit', file, ...broker]);
    expect(run.code, run.stderr).toBe(0);
    const rootId = run.stdout.trim();
    expect(rootId).toMatch(/^[0-9a-f-]{36}$/);
    const wait = await aiecs(['workflow', 'submit', file, '--wait', ...broker]);
    expect(wait.code).toBe(2);
    expect(wait.stderr).toMatch(/^aiecs: --wait: no worker can run tasks/);
    const status = await aiecs(['status', rootId, '--tree', ...broker]);
    expect(status.code, status.stderr).toBe(0);
    expect(lines(status.stdout)).toEqual([
      `workflow ${rootId}`,
      'chain',
      expect.stringMatching(/^ {2}\S+ {2}pending {2}chat\/text_analyzer\.analyze_text$/),
      `  ${rootId}  pending  chat/text_analyzer.analyze_text`,
    ]);
    const unknown = await aiecs([
      'workflow',
      'submit',
      write('unknown.json', { group: [step(1)] }),
      ...broker,
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^aiecs: group\[0\]\.service: no service registered as wf\/steps/);
  });

  it('runs a chain with a worker on Redis: --wait prints the tree, exit 0; a failed step exits 1', async () => {
    const redis = ['--broker', inject('redisUrl'), '--namespace', `wfcli_${process.pid}`];
    const worker = spawn(
      process.execPath,
      [MAIN, 'worker', ...redis, '-c', '4', '--services', './steps.mjs'],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let ready = '';
    worker.stdout.on('data', (chunk: Buffer) => (ready += chunk.toString()));
    const exited = new Promise<number | null>((done) => worker.on('exit', (code) => done(code)));
    try {
      for (let i = 0; i < 200 && !ready.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
      const ok = await aiecs([
        'workflow',
        'submit',
        write('ok.json', { chain: [step(1), step(10), step(100)] }),
        ...redis,
        '--wait',
        '--timeout',
        '30',
        '--json',
      ]);
      expect(ok.code, ok.stderr).toBe(0);
      const read = JSON.parse(ok.stdout) as {
        root_id: string;
        tree: { chain: Array<{ task: { result: unknown } }> };
      };
      expect(read.tree.chain.map((s) => s.task.result)).toEqual([{ n: 1 }, { n: 11 }, { n: 111 }]);

      const failing = { chain: [step(1), { mode: 'wf', service: 'steps', task_name: 'fail' }, step(5)] };
      const bad = await aiecs([
        'workflow',
        'submit',
        write('fail.json', failing),
        ...redis,
        '--wait',
        '--timeout',
        '30',
      ]);
      expect(bad.code).toBe(1);
      const rows = lines(bad.stdout);
      expect(rows[0]).toMatch(/^workflow \S+$/);
      expect(rows.slice(1).map((r) => r.trim().split(/\s+/)[1])).toEqual([
        undefined,
        'completed',
        'failed',
        'cancelled',
      ]);
      const tree = await aiecs(['status', rows[0]!.split(' ')[1]!, '--tree', ...redis]);
      expect(tree.code).toBe(1);
    } finally {
      worker.kill('SIGTERM');
      await exited;
      const client = new Redis(inject('redisUrl'));
      const keys = await client.keys(`wfcli_${process.pid}:*`);
      if (keys.length) await client.del(...keys);
      client.disconnect();
    }
    expect(await exited).toBe(0);
  }, 90_000);
});
