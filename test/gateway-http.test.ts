// The gateway's HTTP API against a real server: every error status and its body, batches that are
// accepted whole or not at all, listing with cursors and filters, the catalog, health and OpenAPI.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { AiecsApp } from '../src/engine/app.js';
import { mintToken } from '../src/gateway/auth.js';
import { Gateway } from '../src/gateway/server.js';
import {
  GATEWAY_KINDS,
  GatewayEnv,
  SECRET,
  api,
  connectClient,
  probe,
  request,
  responseBodies,
  sleep,
  token,
  tryConnect,
  uid,
  until,
} from './gateway-harness.js';
import { testConfig } from './harness.js';
import { freePort } from '../bench/lifecycle.js';

const MiB = 1024 * 1024;

/** A token with `alg: none` and no signature, claiming to be `user`. */
function unsignedToken(user: string): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: user, exp: Math.floor(Date.now() / 1000) + 3600, admin: true })}.`;
}

/** Nothing a client sees carries a stack trace or source paths. */
function expectNoStack(text: string): void {
  expect(text).not.toMatch(/"stack"|\n\s+at |\bat .+:\d+:\d+|\.(ts|js|mjs):\d+/);
}

describe.each(GATEWAY_KINDS)('gateway HTTP API on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('answers /healthz, /readyz and a valid-looking OpenAPI 3.1 document', async () => {
    const health = await request(ge.url, '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    const ready = await request(ge.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', store: kind });

    const doc = await request(ge.url, '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\.1\./);
    expect(doc.body.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    for (const path of ['/api/tasks', '/api/tasks/batch', '/api/tasks/{id}', '/api/tasks/{id}/cancel'])
      expect(Object.keys(doc.body.paths)).toContain(path);
    const body = doc.body.paths['/api/tasks'].post.requestBody.content['application/json'].schema;
    // A plain task or a template's (issue 16; test/gateway-templates.test.ts checks the second).
    const schema = body.oneOf[0];
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['task_name', 'mode', 'service', 'input_data', 'context', 'task_id', 'user_id']),
    );
    expect(schema.required).toEqual(expect.arrayContaining(['task_name', 'mode', 'service']));
    expect(doc.body.paths['/api/tasks'].post.responses).toHaveProperty('202');
    expect(doc.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('answers 400 for malformed JSON and invalid fields, naming the field', async () => {
    const user = uid('v');
    const a = await ge.api(user);
    const malformed = await a.request('/api/tasks', { method: 'POST', raw: '{"task_name": "echo",' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('BAD_REQUEST');

    const invalid = await a.submit(probe('echo', {}, { task_name: '9 lives', step: -1 }));
    expect(invalid.status).toBe(400);
    expect(invalid.body).toEqual({
      error: {
        code: 'VALIDATION_ERROR',
        message: expect.stringContaining('task_name'),
        details: { issues: expect.any(Array) },
      },
    });
    const fields = (invalid.body.error.details.issues as Array<{ field: string; message: string }>).map(
      (i) => i.field,
    );
    expect(fields).toEqual(expect.arrayContaining(['task_name', 'step']));
    for (const issue of invalid.body.error.details.issues) expect(typeof issue.message).toBe('string');
    expect(invalid.body.error.message).toContain('step');

    const unknownField = await a.submit(probe('echo', {}, { colour: 'red' }));
    expect(unknownField.status).toBe(400);
    expect(JSON.stringify(unknownField.body.error.details.issues)).toContain('colour');

    const missing = await a.submit({ task_name: 'echo', mode: 'test' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details.issues).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'service' })]),
    );

    const wrongType = await a.request('/api/tasks', {
      method: 'POST',
      raw: 'task_name=echo',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(wrongType.status).toBe(415);
    expect(wrongType.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 401 for a missing, expired, forged or unsigned token, over HTTP and socket.io', async () => {
    const user = uid('auth');
    const tokens = {
      expired: await token(user, { ttlS: -60 }),
      forged: await mintToken('another-secret-that-is-long-enough-0123456789', user),
      unsigned: unsignedToken(user),
      garbage: 'not.a.jwt',
    };
    const none = await request(ge.url, '/api/tasks');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHORIZED');
    for (const [name, tok] of Object.entries(tokens)) {
      const res = await request(ge.url, '/api/tasks', { token: tok });
      expect(res.status, name).toBe(401);
      expect(res.body.error.code, name).toBe('UNAUTHORIZED');
      const submit = await request(ge.url, '/api/tasks', { token: tok, body: probe('echo') });
      expect(submit.status, name).toBe(401);
      const socket = await tryConnect(ge.url, tok);
      expect(socket.client, name).toBeUndefined();
      expect(socket.error?.data, name).toMatchObject({ code: 'UNAUTHORIZED' });
    }
    expect((await request(ge.url, '/api/tasks', { token: tokens.expired })).body.error.message).toMatch(
      /expired/,
    );
    const noToken = await tryConnect(ge.url, '');
    expect(noToken.error?.data).toMatchObject({ code: 'UNAUTHORIZED' });
    // The valid token works.
    expect((await request(ge.url, '/api/tasks', { token: await token(user) })).status).toBe(200);
  });

  it('answers 403 for submitting as another user, 404 alike for unknown and foreign tasks', async () => {
    const alice = uid('alice');
    const bob = uid('bob');
    const [aa, ab] = [await ge.api(alice), await ge.api(bob)];
    const forbidden = await aa.submit(probe('echo', {}, { user_id: bob }));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
    const own = await aa.submit(probe('echo', {}, { user_id: alice }));
    expect(own.status).toBe(202);
    const id = own.body.task_id as string;
    // An admin may submit on someone's behalf.
    const admin = await ge.api(uid('root'), { admin: true });
    const onBehalf = await admin.submit(probe('echo', {}, { user_id: bob }));
    expect(onBehalf.status).toBe(202);
    expect((await ab.task(onBehalf.body.task_id)).status).toBe(200);

    const unknownId = `nope-${id.slice(-10)}`;
    const unknown = await ab.task(unknownId);
    const foreign = await ab.task(id);
    expect(unknown.status).toBe(404);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('TASK_NOT_FOUND');
    expect(foreign.text.replaceAll(id, 'ID')).toBe(unknown.text.replaceAll(unknownId, 'ID'));
    expect([...foreign.headers.keys()].sort()).toEqual([...unknown.headers.keys()].sort());
    const foreignCancel = await ab.cancel(id);
    const unknownCancel = await ab.cancel(unknownId);
    expect(foreignCancel.status).toBe(404);
    expect(foreignCancel.text.replaceAll(id, 'ID')).toBe(unknownCancel.text.replaceAll(unknownId, 'ID'));
    expect((await aa.task(id)).status).toBe(200);
    expect((await ab.task('bad:id')).status).toBe(404);
  });

  it('answers 409 for a conflicting task_id and 200 for the identical request again', async () => {
    const a = await ge.api(uid('idem'));
    const taskId = uid('fixed');
    const body = probe('echo', { n: 1 }, { task_id: taskId });
    const first = await a.submit(body);
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ task_id: taskId, status: 'pending', queue: 'fast_tasks' });
    const again = await a.submit(body);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ task_id: taskId, queue: 'fast_tasks' });
    const conflict = await a.submit(probe('echo', { n: 2 }, { task_id: taskId }));
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('TASK_CONFLICT');
    // The same id on the other queue is the same task id too.
    const heavy = await a.submit(probe('echo', { n: 1 }, { task_id: taskId, heavy: true }));
    expect(heavy.status).toBe(409);
    // Another user reusing the id conflicts too, and learns nothing about the task.
    const other = await ge.api(uid('other'));
    const stolen = await other.submit(body);
    expect([409]).toContain(stolen.status);
    expect(stolen.text).not.toContain('"n":1');
    expect((await a.settled(taskId)).result).toMatchObject({ echo: { n: 1 } });
  });

  it('answers 413 for a body or input over the limit', async () => {
    const a = await ge.api(uid('big'));
    const huge = await a.submit(probe('echo', { blob: 'x'.repeat(MiB + 100 * 1024) }));
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    // A body under Fastify's limit whose input is still over AIECS_MAX_INPUT_BYTES.
    const over = await a.submit(probe('echo', { blob: 'x'.repeat(MiB) }));
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const fits = await a.submit(probe('echo', { blob: 'x'.repeat(MiB - 1024) }, { countdown: 3600 }));
    expect(fits.status).toBe(202);
  });

  it('answers 422 for an unknown service or method, listing what is registered', async () => {
    const a = await ge.api(uid('svc'));
    const service = await a.submit({ task_name: 'echo', mode: 'nope', service: 'missing' });
    expect(service.status).toBe(422);
    expect(service.body.error.code).toBe('SERVICE_NOT_FOUND');
    expect(service.body.error.message).toContain('nope/missing');
    expect(service.body.error.message).toContain('test/probe');
    expect(service.body.error.details.registered).toContain('test/probe');
    const method = await a.submit(probe('no_such_method'));
    expect(method.status).toBe(422);
    expect(method.body.error.code).toBe('SERVICE_NOT_FOUND');
    expect(method.body.error.message).toContain('no_such_method');
    expect(method.body.error.message).toContain('echo');
    expect(method.body.error.details.registered).toContain('test/probe');
  });

  it('answers 429 with Retry-After past a user’s rate, leaving other users alone', async () => {
    const limited = await ge.addGateway({ AIECS_RATE_LIMIT_PER_S: '2', AIECS_RATE_LIMIT_BURST: '3' });
    const alice = api(limited.url, await token(uid('fast')));
    // Twenty at once: the burst (3) goes through, then about 2 a second; far from all of them.
    const results = await Promise.all(Array.from({ length: 20 }, () => alice.get('/api/tasks?limit=1')));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    const refused = results.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(10);
    for (const r of refused) {
      expect(r.body.error.code).toBe('RATE_LIMITED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    const bob = api(limited.url, await token(uid('calm')));
    expect((await bob.get('/api/tasks?limit=1')).status).toBe(200);
    // The limit is per second: it lets the user in again once tokens are back.
    await until(async () => (await alice.get('/api/tasks?limit=1')).status === 200, 10_000, 'refill');
  });

  it('accepts a batch of 1,000 and refuses a batch with one bad item as a whole', async () => {
    const user = uid('batch');
    const a = await ge.api(user);
    const big = await a.post('/api/tasks/batch', {
      tasks: Array.from({ length: 1000 }, (_, i) => probe('echo', { i }, { countdown: 3600 })),
    });
    expect(big.status).toBe(202);
    const ids = (big.body.tasks as Array<{ task_id: string; status: string }>).map((t) => t.task_id);
    expect(new Set(ids).size).toBe(1000);
    for (const id of [ids[0]!, ids[499]!, ids[999]!]) expect((await a.task(id)).body.status).toBe('pending');

    const tooMany = await a.post('/api/tasks/batch', {
      tasks: Array.from({ length: 1001 }, () => probe('echo')),
    });
    expect(tooMany.status).toBe(400);

    const good = (n: number) => Array.from({ length: n }, () => uid('good'));
    const none = async (ids: string[]) => {
      for (const id of ids) expect((await a.task(id)).status, id).toBe(404);
    };
    // A bad field: 400 naming tasks[i].field.
    let goodIds = good(5);
    let tasks: Array<Record<string, unknown>> = goodIds.map((id) => probe('echo', {}, { task_id: id }));
    tasks[3] = probe('echo', {}, { task_id: goodIds[3], step: 'two' });
    const bad = await a.post('/api/tasks/batch', { tasks });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    expect(bad.body.error.message).toContain('tasks[3].step');
    expect(bad.body.error.details.issues).toEqual([expect.objectContaining({ field: 'tasks[3].step' })]);
    await none(goodIds);
    // An input over the limit.
    goodIds = good(3);
    tasks = goodIds.map((id) => probe('echo', {}, { task_id: id }));
    tasks[1] = probe('echo', { blob: 'x'.repeat(MiB) }, { task_id: goodIds[1] });
    const large = await a.post('/api/tasks/batch', { tasks });
    expect(large.status).toBe(400);
    expect(large.body.error.details.issues).toEqual([
      expect.objectContaining({ field: expect.stringMatching(/^tasks\[1\]\.input_data/) }),
    ]);
    await none(goodIds);
    // An unknown service, and a foreign owner.
    goodIds = good(3);
    tasks = goodIds.map((id) => probe('echo', {}, { task_id: id }));
    tasks[2] = { task_name: 'echo', mode: 'nope', service: 'missing', task_id: goodIds[2] };
    expect((await a.post('/api/tasks/batch', { tasks })).status).toBe(422);
    await none(goodIds);
    tasks[2] = probe('echo', {}, { task_id: goodIds[2], user_id: uid('someone') });
    expect((await a.post('/api/tasks/batch', { tasks })).status).toBe(403);
    await none(goodIds);
    // The same id twice in one batch.
    goodIds = good(2);
    tasks = [...goodIds, goodIds[0]!].map((id) => probe('echo', {}, { task_id: id }));
    const twice = await a.post('/api/tasks/batch', { tasks });
    expect(twice.status).toBe(400);
    expect(twice.body.error.details.issues).toEqual([expect.objectContaining({ field: 'tasks[2].task_id' })]);
    await none(goodIds);
    // The same id on both queues in one batch.
    goodIds = good(2);
    tasks = [
      probe('echo', {}, { task_id: goodIds[0] }),
      probe('echo', {}, { task_id: goodIds[1] }),
      probe('echo', {}, { task_id: goodIds[0], heavy: true }),
    ];
    expect((await a.post('/api/tasks/batch', { tasks })).status).toBe(400);
    await none(goodIds);
    // An id that already names another request: 409, and nothing else of the batch is queued.
    const existing = uid('exists');
    expect((await a.submit(probe('echo', { v: 1 }, { task_id: existing, countdown: 3600 }))).status).toBe(
      202,
    );
    goodIds = good(3);
    tasks = goodIds.map((id) => probe('echo', {}, { task_id: id, countdown: 3600 }));
    tasks[1] = probe('echo', { v: 2 }, { task_id: existing, countdown: 3600 });
    const conflict = await a.post('/api/tasks/batch', { tasks });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('TASK_CONFLICT');
    await none([goodIds[0]!, goodIds[2]!]);
    expect((await a.task(existing)).body.input_data).toEqual({ v: 1 });
    // The identical request again is no conflict.
    tasks[1] = probe('echo', { v: 1 }, { task_id: existing, countdown: 3600 });
    const same = await a.post('/api/tasks/batch', { tasks });
    expect(same.status).toBe(202);
    expect((same.body.tasks as Array<{ task_id: string }>).map((t) => t.task_id).sort()).toEqual(
      [goodIds[0]!, existing, goodIds[2]!].sort(),
    );
  });

  it('lists own tasks newest first with cursor paging and filters; admins list anyone’s', async () => {
    const lister = uid('lister');
    const a = await ge.api(lister);
    const prefix = uid('ls');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await a.submit(probe('echo', { i }, { task_id: `${prefix}-${i}` }));
      expect(res.status).toBe(202);
      ids.push(res.body.task_id);
      await sleep(2);
    }
    for (const id of ids) await a.settled(id);

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const res = await a.get(`/api/tasks?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      pages.push((res.body.tasks as Array<{ task_id: string }>).map((t) => t.task_id));
      cursor = res.body.next_cursor;
    } while (cursor && pages.length < 10);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual([...ids].reverse());

    const filt = uid('filt');
    const f = await ge.api(filt);
    const made = {
      echo: [(await f.submit(probe('echo'))).body.task_id, (await f.submit(probe('echo'))).body.task_id],
      fail: [(await f.submit(probe('fail'))).body.task_id],
      steps: [(await f.submit(probe('progress_steps', { steps: 2 }))).body.task_id],
    };
    for (const id of Object.values(made).flat()) await f.settled(id);
    const list = async (who: typeof f, query: string) => {
      const res = await who.get(`/api/tasks?${query}`);
      expect(res.status, query).toBe(200);
      return (res.body.tasks as Array<{ task_id: string }>).map((t) => t.task_id).sort();
    };
    expect(await list(f, 'status=failed')).toEqual(made.fail);
    expect(await list(f, 'task_name=echo')).toEqual([...made.echo].sort());
    expect(await list(f, 'status=completed&task_name=progress_steps')).toEqual(made.steps);
    expect(await list(f, 'status=completed')).toEqual([...made.echo, ...made.steps].sort());
    expect(await list(f, 'status=running')).toEqual([]);
    expect((await f.get('/api/tasks?status=bogus')).status).toBe(400);
    expect((await f.get('/api/tasks?limit=0')).status).toBe(400);
    expect((await f.get(`/api/tasks?user_id=${lister}`)).status).toBe(403);
    expect(await list(f, `user_id=${filt}`)).toHaveLength(4);

    const admin = await ge.api(uid('root'), { admin: true });
    expect(await list(admin, `user_id=${lister}`)).toEqual([...ids].sort());
    expect(await list(admin, `user_id=${filt}&status=failed`)).toEqual(made.fail);
    const everyone = await list(admin, 'limit=200');
    expect(everyone).toEqual(expect.arrayContaining([...ids, ...made.echo]));
  });

  it('lists the services with their methods', async () => {
    const a = await ge.api(uid('cat'));
    const res = await a.get('/api/services');
    expect(res.status).toBe(200);
    const probeService = (
      res.body.services as Array<{ mode: string; service: string; methods: string[] }>
    ).find((s) => s.mode === 'test' && s.service === 'probe');
    expect(probeService?.methods).toEqual(
      expect.arrayContaining(['echo', 'sleep', 'fail', 'progress_steps', 'stream_tokens']),
    );
    expect((await request(ge.url, '/api/services')).status).toBe(401);
  });

  it('never shows a stack trace in any response body above', async () => {
    // Records of failed tasks hold the worker's stack; clients get the message only.
    const a = await ge.api(uid('stack'));
    const id = (await a.submit(probe('fail', { message: 'kaboom' }))).body.task_id as string;
    const record = await a.settled(id);
    expect(record.error).toMatchObject({ code: 'E003', type: 'TypeError', message: 'kaboom' });
    await a.get('/api/tasks?status=failed');
    await a.get('/api/no-such-route');
    expect(responseBodies.length).toBeGreaterThan(50);
    for (const text of responseBodies) expectNoStack(text);
  });
});

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

describe.skipIf(!hasRedisServer)('gateway readiness with its Redis going away', () => {
  // A private redis-server that this test stops and starts again (the shared one must stay up).
  let redis: ChildProcess | undefined;
  let gateway: Gateway | undefined;
  let app: AiecsApp | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'aiecs-gw-redis-'));
  const killRedis = () => {
    if (redis && redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
  };
  process.once('exit', killRedis);
  const startRedis = (port: number) => {
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
  };
  afterAll(async () => {
    // Closing waits on Redis connections: do it while the server is up, then stop it.
    await Promise.race([
      (async () => {
        await gateway?.close();
        await app?.close();
      })(),
      sleep(30_000),
    ]);
    killRedis();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /readyz 503 while the store is down, 200 once it is back, and relays events again', async () => {
    const port = await freePort();
    startRedis(port);
    const url = `redis://127.0.0.1:${port}`;
    const config = testConfig({ AIECS_JWT_SECRET: SECRET });
    app = new AiecsApp({ broker: url, namespace: 'gw_ready', config, logger: silentLogger });
    const store = await app.store();
    gateway = new Gateway({ app, store, config, logger: silentLogger });
    const base = await gateway.listen(0, '127.0.0.1');
    expect((await request(base, '/readyz')).status).toBe(200);

    const down = redis!;
    const exited = new Promise((r) => down.once('exit', r));
    killRedis();
    await exited;
    const unavailable = await until(
      async () => {
        const res = await request(base, '/readyz');
        return res.status === 503 ? res : undefined;
      },
      20_000,
      '/readyz to report the store down',
    );
    expect(unavailable.body).toMatchObject({ status: 'unavailable', store: 'redis' });
    expectNoStack(unavailable.text);
    // Liveness does not depend on the store, nor does the socket side.
    expect((await request(base, '/healthz')).status).toBe(200);
    const user = uid('ready');
    const client = await connectClient(base, await token(user));
    expect(await client.emitWithAck('ping')).toBe('pong');

    startRedis(port);
    await until(async () => (await request(base, '/readyz')).status === 200, 30_000, 'store back');
    // Events flow again once the bridge's connections are back (a task added while they were
    // still reconnecting is not announced live, so keep adding until one is).
    let last = 0;
    await until(
      async () => {
        if (client.progress.length > 0) return true;
        if (Date.now() - last > 1_000) {
          last = Date.now();
          await app!
            .submitWire({
              queue: 'fast_tasks',
              request: { task_name: 'nothing', mode: 'none', service: 'none', user_id: user },
            })
            .catch(() => undefined);
        }
        return false;
      },
      60_000,
      'events to be relayed again',
    );
    expect(client.progress[0]).toMatchObject({ status: 'pending', user_id: user });
    client.close();
  });
});
