// Logs never carry a task's input, result or a token: storage errors that hold the SQL parameters
// (PGlite's `params` is the whole job) or the JSON around a bad byte (`where`) are logged cut down
// to name, code, message and stack, bounded in size (issue 11 item 5).
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { DestinationStream } from 'pino';
import { createLogger, LOG_ERROR_MAX_CHARS, type Logger } from '../src/core/logger.js';
import { Gateway } from '../src/gateway/server.js';
import { ServiceRegistry } from '../src/registry/registry.js';
import { registerBuiltinServices } from '../src/services/builtin.js';
import { SECRET, request, token } from './gateway-harness.js';
import { TestEnv, testConfig } from './harness.js';

const MiB = 1024 * 1024;

/** A logger at info that keeps what it writes, as the CLI's would write it to stderr. */
function capturingLogger(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void lines.push(line) };
  return { logger: createLogger('info', 'aiecs', destination), text: () => lines.join('') };
}

/** 1 MiB of input made of one marker, so that any stretch of it in a log is found. */
function bigInput(): { marker: string; text: string } {
  const marker = `in${randomBytes(4).toString('hex')}`;
  return { marker, text: marker.repeat(Math.ceil(MiB / marker.length)) };
}

/** The storage error a store gives for input its JSON cannot hold (a NUL), with 1 MiB of input. */
async function storageError(env: TestEnv, text: string): Promise<Error> {
  const queue = await env.app().queue('fast_tasks');
  const error = await queue.add('analyze_text', { input_data: { text: `${text}\u0000` } } as never).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the store must refuse a NUL in JSON').toBeInstanceOf(Error);
  return error as Error;
}

describe.each(['embedded', 'postgres'] as const)('log redaction on %s', (kind) => {
  const envs: TestEnv[] = [];
  const gateways: Gateway[] = [];
  afterAll(async () => {
    for (const g of gateways) await g.close().catch(() => undefined);
    for (const env of envs) await env.cleanup().catch(() => undefined);
  });

  it('logs a storage error without the input it was given, in a few kilobytes', async () => {
    const env = await TestEnv.create(kind);
    envs.push(env);
    const { marker, text } = bigInput();
    const error = await storageError(env, text);
    const { logger, text: output } = capturingLogger();
    logger.error({ err: error }, 'could not add the task');
    logger.warn({ err: error.message }, 'could not add the task');
    logger.error(error);
    const logged = output();
    expect(logged).toContain('could not add the task');
    expect(logged.length).toBeLessThan(10 * LOG_ERROR_MAX_CHARS);
    expect(logged).not.toContain(marker.slice(0, 6));
  });

  it('logs an unhandled storage error in a request without its input or the caller token', async () => {
    const env = await TestEnv.create(kind, { AIECS_JWT_SECRET: SECRET });
    envs.push(env);
    const { marker, text } = bigInput();
    const error = await storageError(env, text);
    const app = env.app();
    // The NUL itself is refused at the edge; any storage error met on the request path is logged here.
    app.submitWire = () => Promise.reject<never>(error);
    const { logger, text: output } = capturingLogger();
    const gateway = new Gateway({
      app,
      store: await app.store(),
      config: testConfig({ AIECS_JWT_SECRET: SECRET }),
      logger,
      // With the built-in services, as `aiecs gateway` runs it: the submit reaches the store.
      registry: registerBuiltinServices(new ServiceRegistry()),
    });
    gateways.push(gateway);
    const url = await gateway.listen(0, '127.0.0.1');
    const tok = await token('log-user');
    for (let i = 0; i < 3; i++) {
      const res = await request(url, '/api/tasks', {
        token: tok,
        body: { task_name: 'analyze_text', mode: 'chat', service: 'text_analyzer', input_data: { text } },
      });
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe('INTERNAL');
    }
    const logged = output();
    expect(logged).toContain('unhandled error in request');
    expect(logged.length).toBeLessThan(3 * 10 * LOG_ERROR_MAX_CHARS);
    expect(logged).not.toContain(marker.slice(0, 6));
    expect(logged).not.toContain(tok.split('.')[2]);
  });
});

describe('log redaction of error objects and fields', () => {
  it('keeps name, code, message and stack of an error, bounded, and drops what else it carries', () => {
    const input = 'input-text-'.repeat(100_000);
    const stub = Object.assign(new Error(`bad value ${'x'.repeat(5_000)}`), {
      code: '22P05',
      query: `INSERT INTO jobs VALUES ($1) -- ${input}`,
      parameters: [input],
      params: [input],
      where: `JSON data, line 1: ...${input.slice(0, 60)}`,
      detail: input.slice(0, 80),
      cause: Object.assign(new Error('socket closed'), { params: [input] }),
    });
    const { logger, text } = capturingLogger();
    logger.error({ err: stub }, 'storage error');
    const line = JSON.parse(text()) as { err: Record<string, unknown> };
    expect(Object.keys(line.err).sort()).toEqual(['cause', 'code', 'message', 'stack', 'type']);
    expect(line.err.code).toBe('22P05');
    expect(String(line.err.message).length).toBeLessThan(LOG_ERROR_MAX_CHARS + 50);
    expect(String(line.err.stack)).toContain('log-redaction.test');
    expect(line.err.cause).toEqual(expect.objectContaining({ message: 'socket closed' }));
    expect(text()).not.toContain('input-text-');
    expect(text().length).toBeLessThan(10 * LOG_ERROR_MAX_CHARS);
  });

  it('writes no task input, result, token or authorization header', () => {
    const { logger, text } = capturingLogger();
    logger.info(
      {
        task: { input_data: { text: 'private-input' }, result: { answer: 'private-result' } },
        input_data: 'private-input',
        token: 'private-token',
        auth: { token: 'private-token', authorization: 'Bearer private-token' },
        authorization: 'Bearer private-token',
        req: { headers: { authorization: 'Bearer private-token' } },
        task_id: 'kept-task-id',
      },
      'request',
    );
    expect(text()).toContain('kept-task-id');
    expect(text()).not.toMatch(/private-(input|result|token)/);
  });

  it('censors a copy: the object logged is left as it was, and child bindings are censored too', () => {
    const { logger, text } = capturingLogger();
    const logged = {
      task: { task_id: 'kept-task-id', input_data: 'private-input' },
      req: { url: '/api/tasks', headers: { cookie: 'private-cookie', host: 'kept-host' } },
    };
    logger.child({ token: 'private-token', worker: 'kept-worker' }).info(logged, 'request');
    expect(logged.task.input_data).toBe('private-input');
    expect(logged.req.headers.cookie).toBe('private-cookie');
    const line = JSON.parse(text()) as Record<string, Record<string, unknown>>;
    expect(line).toMatchObject({
      token: '[redacted]',
      worker: 'kept-worker',
      task: { task_id: 'kept-task-id', input_data: '[redacted]' },
      req: { url: '/api/tasks', headers: { cookie: '[redacted]', host: 'kept-host' } },
    });
  });
});
