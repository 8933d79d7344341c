import { Command, InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createTestTaskContext } from '../services/test-task-context.js';
import { sleeper } from '../services/sleeper.js';
import { refusedTokenMessage } from './local-gateway.js';
import {
  UsageError,
  addWorkerFlags,
  cliConfig,
  collectList,
  describeQueues,
  intFlag,
  numberFlag,
  parseConcurrency,
  parseJsonObject,
  parsePool,
  parseQueues,
  workerOverrides,
} from './options.js';
import { buildSubmission, type SubmitFlags } from './submit.js';

describe('-c / --concurrency', () => {
  it('takes one number for every queue', () => {
    expect(parseConcurrency('8')).toEqual({ fast_tasks: 8, heavy_tasks: 8 });
  });

  it('takes per-queue numbers', () => {
    expect(parseConcurrency('fast_tasks=200,heavy_tasks=4')).toEqual({ fast_tasks: 200, heavy_tasks: 4 });
    expect(parseConcurrency('heavy_tasks=3')).toEqual({ heavy_tasks: 3 });
  });

  it.each(['0', '-1', '1.5', 'x', 'fast_tasks=0', 'slow_tasks=2', 'fast_tasks=2=3', ''])(
    'rejects %j',
    (raw) => {
      expect(() => parseConcurrency(raw)).toThrow(InvalidArgumentError);
    },
  );
});

describe('--pool', () => {
  it('takes one kind for every queue or one per queue', () => {
    expect(parsePool('process')).toEqual({ fast_tasks: 'process', heavy_tasks: 'process' });
    expect(parsePool('fast_tasks=async,heavy_tasks=process')).toEqual({
      fast_tasks: 'async',
      heavy_tasks: 'process',
    });
  });

  it('rejects unknown pools and queues', () => {
    expect(() => parsePool('thread')).toThrow(/async or process/);
    expect(() => parsePool('medium_tasks=async')).toThrow(/medium_tasks/);
  });
});

describe('-Q / --queues', () => {
  it('takes known queue names, comma-separated, each once', () => {
    expect(parseQueues('fast_tasks')).toEqual(['fast_tasks']);
    expect(parseQueues('heavy_tasks, fast_tasks,heavy_tasks')).toEqual(['heavy_tasks', 'fast_tasks']);
  });

  it('rejects unknown or no queues', () => {
    expect(() => parseQueues('fast_tasks,celery')).toThrow(/unknown queue "celery"/);
    expect(() => parseQueues(' , ')).toThrow(/at least one/);
  });
});

describe('numbers and lists', () => {
  it('parses whole numbers and seconds with a minimum', () => {
    expect(intFlag()('0')).toBe(0);
    expect(intFlag(1)('12')).toBe(12);
    expect(() => intFlag(1)('0')).toThrow(InvalidArgumentError);
    expect(() => intFlag()('2.5')).toThrow(InvalidArgumentError);
    expect(numberFlag()('0.5')).toBe(0.5);
    expect(() => numberFlag()('-1')).toThrow(InvalidArgumentError);
    expect(() => numberFlag()('soon')).toThrow(InvalidArgumentError);
    expect(() => numberFlag()('')).toThrow(InvalidArgumentError);
  });

  it('collects repeatable, comma-separated lists', () => {
    expect(collectList('a.js, b.js', collectList('c.js'))).toEqual(['c.js', 'a.js', 'b.js']);
  });

  it('takes several --services after one flag, as the README shows', () => {
    const command = addWorkerFlags(new Command('worker').exitOverride());
    command.parse(['--services', './a.js', './b.js,./c.js', '--services', './d.js', '-c', '2'], {
      from: 'user',
    });
    expect(command.opts()).toMatchObject({
      services: ['./a.js', './b.js', './c.js', './d.js'],
      concurrency: { fast_tasks: 2, heavy_tasks: 2 },
    });
  });
});

describe('JSON flags', () => {
  it('parses an object', () => {
    expect(parseJsonObject('--input', '{"text":"hi"}')).toEqual({ text: 'hi' });
  });

  it('names the flag for bad JSON', () => {
    expect(() => parseJsonObject('--input', '{text: hi}')).toThrow(UsageError);
    expect(() => parseJsonObject('--input', '{text: hi}')).toThrow(/^--input is not valid JSON/);
    expect(() => parseJsonObject('--context', '[1, 2]')).toThrow(/^--context must be a JSON object/);
    expect(() => parseJsonObject('--context', 'null')).toThrow(/^--context/);
  });

  it('reads @file and - (stdin) through the reader', () => {
    const read = (source: string | number) =>
      source === 0 ? '{"from":"stdin"}' : `{"from":"${String(source)}"}`;
    expect(parseJsonObject('--input', '@in.json', read)).toEqual({ from: 'in.json' });
    expect(parseJsonObject('--input', '-', read)).toEqual({ from: 'stdin' });
    const missing = () => {
      throw new Error('ENOENT');
    };
    expect(() => parseJsonObject('--input', '@nope.json', missing)).toThrow(
      /^--input: cannot read nope\.json/,
    );
  });
});

describe('worker settings', () => {
  const base = loadConfig({
    CELERY_WORKER_CONCURRENCY: 'fast_tasks=50,heavy_tasks=2',
    AIECS_SERVICES: './a.js',
  }).worker;

  it('keeps the config when no flag is given', () => {
    expect(workerOverrides({}, base)).toEqual({});
  });

  it('merges per-queue flags over the config', () => {
    const out = workerOverrides(
      {
        queues: ['heavy_tasks'],
        concurrency: { heavy_tasks: 4 },
        pool: { fast_tasks: 'process' },
        maxTasksPerChild: 10,
        maxMemoryPerChild: 204800,
        services: ['./b.js'],
      },
      base,
    );
    expect(out).toEqual({
      queues: ['heavy_tasks'],
      concurrency: { fast_tasks: 50, heavy_tasks: 4 },
      pool: { fast_tasks: 'process', heavy_tasks: 'process' },
      maxTasksPerChild: 10,
      maxMemoryPerChildKiB: 204800,
      services: ['./b.js'],
    });
    expect(describeQueues({ ...base, ...out })).toBe('heavy_tasks(process x4)');
  });

  it('lets --broker override the environment', () => {
    const env = { AIECS_BROKER_URL: 'redis://env:6379', CELERY_BROKER_URL: 'redis://celery:6379' };
    expect(cliConfig({}, env).brokerUrl).toBe('redis://env:6379');
    expect(cliConfig({ broker: 'embedded:/tmp/x' }, env).brokerUrl).toBe('embedded:/tmp/x');
  });
});

describe('a token the running aiecs up refuses', () => {
  const url = 'http://127.0.0.1:8123';

  it('names AIECS_JWT_SECRET when the command signed with it', () => {
    const config = loadConfig({ AIECS_BROKER_URL: 'embedded:/tmp/s', AIECS_JWT_SECRET: 'x' });
    expect(refusedTokenMessage(config, url)).toBe(
      `the gateway at ${url} refused the token signed with AIECS_JWT_SECRET; unset it to use the ` +
        "embedded store's own secret, or set it to the secret the gateway uses",
    );
  });

  it("names the store's secret file when the command signed with that", () => {
    const config = loadConfig({ AIECS_BROKER_URL: 'embedded:/tmp/s' });
    expect(refusedTokenMessage(config, url)).toBe(
      `the gateway at ${url} refused the token signed with the embedded store's secret ` +
        '(/tmp/s/jwt-secret); set AIECS_JWT_SECRET to the secret the gateway was started with',
    );
  });
});

describe('submit flags', () => {
  const flags: SubmitFlags = {
    mode: 'chat',
    service: 'text_analyzer',
    task: 'analyze_text',
    input: '{"text":"hi"}',
    user: 'cli',
  };

  it('builds the wire request and options', () => {
    expect(
      buildSubmission({
        ...flags,
        heavy: true,
        taskId: 't-1',
        step: 2,
        priority: 7,
        timeLimit: 9,
        softTimeLimit: 4,
        countdown: 1,
      }),
    ).toEqual({
      queue: 'heavy_tasks',
      request: {
        task_name: 'analyze_text',
        user_id: 'cli',
        mode: 'chat',
        service: 'text_analyzer',
        input_data: { text: 'hi' },
        task_id: 't-1',
        step: 2,
      },
      options: { priority: 7, time_limit: 9, soft_time_limit: 4, countdown: 1 },
    });
    expect(buildSubmission(flags).queue).toBe('fast_tasks');
  });

  it('names the flag holding bad JSON', () => {
    expect(() => buildSubmission({ ...flags, context: '{' })).toThrow(/^--context is not valid JSON/);
  });
});

// The sleeper lives with the CLI's demo; its contract is small enough to check here.
describe('util/sleeper', () => {
  it('validates seconds', async () => {
    const { task } = createTestTaskContext();
    await expect(sleeper.sleep({ seconds: -1 }, {}, task)).rejects.toThrow(/input_data\.seconds/);
    await expect(sleeper.sleep({ seconds: '1' }, {}, task)).rejects.toThrow(/input_data\.seconds/);
    await expect(sleeper.sleep({ seconds: 3601 }, {}, task)).rejects.toThrow(/input_data\.seconds/);
  });

  it('sleeps, reporting progress', async () => {
    const ctx = createTestTaskContext();
    const result = await sleeper.sleep({ seconds: 0.05 }, {}, ctx.task);
    expect(result.slept_s).toBeGreaterThanOrEqual(0.04);
    expect(ctx.progress.at(-1)?.percent).toBe(100);
  });

  it('rejects with the abort reason as soon as the signal aborts', async () => {
    const ctx = createTestTaskContext();
    const reason = new Error('stop now');
    const started = Date.now();
    setTimeout(() => ctx.controller.abort(reason), 50);
    await expect(sleeper.sleep({ seconds: 30 }, {}, ctx.task)).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
