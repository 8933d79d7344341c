// A store outage on the request path (issue 11 item 7): while the store is gone or silent, /readyz
// and every /api/* request are answered with 503 STORE_UNAVAILABLE and a Retry-After (none waits
// for the store to come back: it only comes back after they were answered), and a submit either
// got 202 (the task exists) or an error that says whether the task may exist.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { inject } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { AiecsApp } from '../src/engine/app.js';
import { openStore } from '../src/engine/open-store.js';
import type { Store } from '../src/engine/store.js';
import { Gateway } from '../src/gateway/server.js';
import { ServiceRegistry } from '../src/registry/registry.js';
import { registerBuiltinServices } from '../src/services/builtin.js';
import { SECRET, api, request, token, until, type Api, type ApiResponse } from './gateway-harness.js';
import { testConfig } from './harness.js';
import { OwnRedis, TcpProxy } from './store-faults.js';

/** A task the gateway accepts on its own (the built-in services), with no worker to run it. */
const task = (extra: Record<string, unknown> = {}) => ({
  task_name: 'analyze_text',
  mode: 'chat',
  service: 'text_analyzer',
  input_data: { text: 'outage' },
  ...extra,
});

const ROLES = ['producer', 'worker'] as const;
type Role = (typeof ROLES)[number];

interface Deployment {
  url: string;
  user: Api;
  admin: Api;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A gateway on its own store connection: `producer` as `aiecs gateway` opens it, `worker` as `aiecs up`. */
async function deploy(brokerUrl: string, role: Role, namespace: string): Promise<Deployment> {
  const config = testConfig({ AIECS_JWT_SECRET: SECRET, AIECS_STORE_TIMEOUT_MS: '1000' });
  const store: Store = await openStore(brokerUrl, {
    logger: silentLogger,
    role,
    namespace,
    timeoutMs: config.storeTimeoutMs,
  });
  const app = new AiecsApp({ config, store, logger: silentLogger });
  // With the built-in services, as `aiecs gateway` runs it.
  const registry = registerBuiltinServices(new ServiceRegistry());
  const gateway = new Gateway({ app, store, config, logger: silentLogger, registry });
  cleanups.push(
    () => store.close(),
    () => app.close(),
    () => gateway.close(),
  );
  const url = await gateway.listen(0, '127.0.0.1');
  return {
    url,
    user: api(url, await token('outage-user')),
    admin: api(url, await token('outage-admin', { admin: true })),
  };
}

/** The documented 503: the one error shape, STORE_UNAVAILABLE, and when to try again. */
function expectUnavailable(res: ApiResponse, what: string): void {
  expect(res.status, `${what}: ${res.text}`).toBe(503);
  expect(res.headers.get('retry-after'), what).toMatch(/^[1-9]\d*$/);
  expect(res.body.error.code, what).toBe('STORE_UNAVAILABLE');
  expect(typeof res.body.error.message, what).toBe('string');
  expect(res.body.error.details.retry_after_s, what).toBe(Number(res.headers.get('retry-after')));
}

/** Every kind of request while the store is away; all must be answered before it comes back. */
async function duringOutage(d: Deployment, taskId: string, refusedId: string) {
  const [ready, read, list, submit, batch, cancel, services, workers] = await Promise.all([
    request(d.url, '/readyz'),
    d.user.task(taskId),
    d.user.get('/api/tasks'),
    d.user.submit(task({ task_id: refusedId })),
    d.user.post('/api/tasks/batch', { tasks: [task({ task_id: `${refusedId}-b` })] }),
    d.user.cancel(taskId),
    d.user.get('/api/services'),
    d.admin.get('/api/workers'),
  ]);
  expect(ready.status).toBe(503);
  expect(ready.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  expect(ready.body.status).toBe('unavailable');
  expectUnavailable(read, 'GET /api/tasks/:id');
  expectUnavailable(list, 'GET /api/tasks');
  expectUnavailable(submit, 'POST /api/tasks');
  expectUnavailable(batch, 'POST /api/tasks/batch');
  expectUnavailable(cancel, 'POST /api/tasks/:id/cancel');
  expectUnavailable(workers, 'GET /api/workers');
  // The catalog may answer from its two-second cache; if it asks the store, it is told the same.
  if (services.status !== 200) expectUnavailable(services, 'GET /api/services');
  return { submit };
}

/** After the store is back: it serves again, what was there is there, a refused submit is not. */
async function afterOutage(d: Deployment, taskId: string, refusedId: string): Promise<void> {
  await until(async () => (await request(d.url, '/readyz')).status === 200, 30_000, '/readyz to say ready');
  const read = await until(
    async () => {
      const res = await d.user.task(taskId);
      return res.status === 200 ? res : undefined;
    },
    30_000,
    'the task from before the outage',
  );
  expect(read.body.status).toBe('pending');
  expect((await d.user.task(refusedId)).status).toBe(404);
  expect((await d.user.task(`${refusedId}-b`)).status).toBe(404);
  const listed = await d.user.get('/api/tasks');
  expect(listed.status).toBe(200);
  expect(listed.body.tasks.map((t: { task_id: string }) => t.task_id)).toEqual([taskId]);
  // The refused id is free: submitting it now makes the task.
  expect((await d.user.submit(task({ task_id: refusedId }))).status).toBe(202);
}

const uid = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

describe.each(ROLES)('Redis outage, gateway on a %s connection', (role) => {
  it('answers every request with 503 while Redis is down, and serves again when it is back', async () => {
    const redis = await OwnRedis.start();
    cleanups.push(() => redis.close());
    const d = await deploy(redis.url, role, 'outage');
    const before = await d.user.submit(task());
    expect(before.status).toBe(202);
    const taskId = before.body.task_id as string;
    const refusedId = uid('refused');

    await redis.kill();
    await duringOutage(d, taskId, refusedId);

    await redis.start();
    await afterOutage(d, taskId, refusedId);
  });

  it('gives up on a silent Redis after the timeout, and says when a submit may still land', async () => {
    const redis = await OwnRedis.start();
    cleanups.push(() => redis.close());
    const d = await deploy(redis.url, role, 'silent');
    const before = await d.user.submit(task());
    expect(before.status).toBe(202);
    const taskId = before.body.task_id as string;

    redis.pause();
    // A chosen id is checked before it is added: given up during the check, nothing was sent.
    const refusedId = uid('refused');
    const chosen = await d.user.submit(task({ task_id: refusedId }));
    expectUnavailable(chosen, 'submit with a chosen id');
    expect(chosen.body.error.details.queued).toBeUndefined();
    // A generated id is added at once: given up during the add, the task may exist, and its id is told.
    const generated = await d.user.submit(task());
    expectUnavailable(generated, 'submit with a generated id');
    expect(generated.body.error.details.queued).toBe('unknown');
    const [maybeId] = generated.body.error.details.task_ids as string[];
    expect(generated.body.error.message).toContain(maybeId);
    expectUnavailable(await d.user.task(taskId), 'GET /api/tasks/:id');
    expect((await request(d.url, '/readyz')).status).toBe(503);

    redis.resume();
    await until(async () => (await request(d.url, '/readyz')).status === 200, 30_000, '/readyz to say ready');
    expect((await d.user.task(refusedId)).status).toBe(404);
    // What the message says to do: the add had reached Redis, so the task is there, and submitting
    // the same request with its id returns it instead of making a second one.
    expect((await d.user.task(maybeId!)).status).toBe(200);
    const again = await d.user.submit(task({ task_id: maybeId }));
    expect(again.status).toBe(200);
    expect(again.body.task_id).toBe(maybeId);
  });
});

describe.each(ROLES)('PostgreSQL outage, gateway on a %s connection', (role) => {
  const target = new URL(inject('postgresUrl'));

  async function deployBehindProxy(): Promise<{ d: Deployment; proxy: TcpProxy }> {
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.up();
    const schema = `t_outage_${randomBytes(4).toString('hex')}`;
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: target.toString() });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    });
    cleanups.push(() => proxy.close());
    const url = new URL(target.toString());
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    return { d: await deploy(url.toString(), role, schema), proxy };
  }

  it('answers every request with 503 while PostgreSQL is unreachable, and serves again after', async () => {
    const { d, proxy } = await deployBehindProxy();
    const before = await d.user.submit(task());
    expect(before.status).toBe(202);
    const taskId = before.body.task_id as string;
    const refusedId = uid('refused');

    await proxy.down();
    await duringOutage(d, taskId, refusedId);

    await proxy.up();
    await afterOutage(d, taskId, refusedId);
  });

  it('gives up on a PostgreSQL that does not answer, after the timeout', async () => {
    const { d, proxy } = await deployBehindProxy();
    const before = await d.user.submit(task());
    expect(before.status).toBe(202);
    const taskId = before.body.task_id as string;
    const refusedId = uid('refused');

    proxy.stall();
    await duringOutage(d, taskId, refusedId);

    proxy.flow();
    await afterOutage(d, taskId, refusedId);
  });
});
