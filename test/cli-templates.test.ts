// Templates from the command line (built dist): `aiecs submit --template name@v` on a shared store
// with AIECS_TEMPLATES_FILE (the record keeps the version; bad input, an unknown template and
// --template beside --mode are usage errors, exit 2), and `aiecs gateway --templates` refusing a
// bad file whole before it listens, naming the entry and field.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { AiecsApp } from '../src/engine/app.js';
import { testConfig } from './harness.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../dist/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function aiecs(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const clean: NodeJS.ProcessEnv = { ...process.env, AIECS_LOG_LEVEL: 'silent', ...env };
  for (const name of ['AIECS_BROKER_URL', 'CELERY_BROKER_URL', 'REDIS_URL', 'AIECS_SERVICES', 'PORT'])
    if (!(name in env)) delete clean[name];
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { env: clean, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** A template on a built-in service, so the CLI's check passes with no worker up. */
const summarize = {
  name: 'summarize',
  version: 1,
  mode: 'chat',
  service: 'text_analyzer',
  task_name: 'analyze_text',
  input_schema: {
    type: 'object',
    properties: { text: { type: 'string', minLength: 1 } },
    required: ['text'],
  },
  options: { priority: 33 },
};

describe('templates on the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aiecs-cli-templates-'));
  const namespace = `clitpl_${process.pid}`;
  let redis: string;
  let store: string[];
  const good = join(dir, 'templates.json');
  const bad = join(dir, 'bad.yaml');

  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing; run \`npm run build\` first`);
    redis = inject('redisUrl');
    store = ['--broker', redis, '--namespace', namespace];
    writeFileSync(good, JSON.stringify([summarize, { ...summarize, version: 2 }]));
    writeFileSync(
      bad,
      [
        '- name: summarize',
        '  version: 1',
        '  mode: chat',
        '  service: text_analyzer',
        '  task_name: [oops]',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    const client = new Redis(redis);
    const keys = await client.keys(`${namespace}:*`);
    if (keys.length) await client.del(...keys);
    client.disconnect();
  });

  it('submits by a pinned version, and the record keeps it', async () => {
    const run = await aiecs(
      [
        'submit',
        ...store,
        '--template',
        'summarize@1',
        '--input',
        '{"text": "fine"}',
        '--user',
        'u1',
        '--json',
      ],
      { AIECS_TEMPLATES_FILE: good },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const submitted = JSON.parse(run.stdout) as { task_id: string; queue: string };
    expect(submitted.queue).toBe('fast_tasks');
    const app = new AiecsApp({ broker: redis, namespace, config: testConfig(), logger: silentLogger });
    try {
      const record = await app.getTask(submitted.task_id);
      expect(record).toMatchObject({
        template: 'summarize@1',
        priority: 33,
        user_id: 'u1',
        task_name: 'analyze_text',
      });
    } finally {
      await app.close();
    }
  });

  it('refuses bad input, an unknown template and --template with --mode, exit 2', async () => {
    const env = { AIECS_TEMPLATES_FILE: good };
    const input = await aiecs(
      ['submit', ...store, '--template', 'summarize', '--input', '{"text": ""}'],
      env,
    );
    expect(input.code).toBe(2);
    expect(input.stderr).toContain('input_data.text');
    const unknown = await aiecs(['submit', ...store, '--template', 'summarize@4', '--input', '{}'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no template summarize@4; its versions: 1, 2');
    const both = await aiecs(
      ['submit', ...store, '--template', 'summarize', '--mode', 'chat', '--input', '{}'],
      env,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('leave out --mode, --service and --task');
    // Without a template the method's flags are still required.
    const plain = await aiecs(['submit', ...store, '--service', 's', '--task', 't', '--input', '{}']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("required option '--mode <mode>' not specified");
  });

  it('aiecs gateway --templates refuses a bad file whole, naming the entry and field', async () => {
    const run = await aiecs(['gateway', ...store, '--port', '0', '--templates', bad], {
      AIECS_JWT_SECRET: 'cli-templates-secret-0123456789abcdef',
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`invalid templates file ${bad}: summarize@1.task_name`);
  });

  it("aiecs templates lists a file's templates (table or JSON), and refuses a bad file or none", async () => {
    const listed = await aiecs(['templates', '--templates', good]);
    expect(listed.code, listed.stderr).toBe(0);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TEMPLATE\s+LATEST\s+RUNS\s+QUEUE\s+OPTIONS$/);
    expect(lines.slice(2)).toEqual([
      expect.stringMatching(/^summarize@1\s+chat\/text_analyzer\.analyze_text\s+fast_tasks\s+priority=33$/),
      expect.stringMatching(
        /^summarize@2\s+yes\s+chat\/text_analyzer\.analyze_text\s+fast_tasks\s+priority=33$/,
      ),
    ]);

    const json = await aiecs(['templates', '--json'], { AIECS_TEMPLATES_FILE: good });
    expect(json.code, json.stderr).toBe(0);
    const { templates } = JSON.parse(json.stdout) as { templates: Array<{ ref: string; latest: boolean }> };
    expect(templates.map((t) => [t.ref, t.latest])).toEqual([
      ['summarize@1', false],
      ['summarize@2', true],
    ]);

    const refused = await aiecs(['templates', '--templates', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`invalid templates file ${bad}: summarize@1.task_name`);
    const none = await aiecs(['templates']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no templates file: give --templates FILE or set AIECS_TEMPLATES_FILE/);
  });
});
