// The HTTP edge: text no store can keep refused alike on every store (never a 500), task ids up to
// the longest valid one readable by URL, one cap for countdown and eta, a batch's errors naming the
// item, and every error the server sends — Fastify's and Node's own included — in the one shape.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreKind } from '../src/engine/store.js';
import { MAX_DELAY_S, TASK_ID_MAX_LENGTH } from '../src/core/task.js';
import { mintToken } from '../src/gateway/auth.js';
import { GatewayEnv, SECRET, request, tryConnect, uid, type ApiResponse } from './gateway-harness.js';

const NUL = 'contains a NUL character (U+0000)';
/** A built-in service: the gateway knows it without a worker, and the tasks stay pending. */
const task = (input_data: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  task_name: 'analyze_text',
  mode: 'chat',
  service: 'text_analyzer',
  input_data,
  ...extra,
});

/** The one documented error shape, with this status and code. */
function expectError(res: ApiResponse, status: number, code: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  expect(res.body).toEqual({
    error: { code, message: expect.any(String), details: expect.any(Object) },
  });
  expect(res.body.error.message).not.toMatch(/\n/);
}

const STORES: StoreKind[] = ['embedded', 'postgres', 'redis'];

describe.each(STORES)('gateway edge on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind, {}, { worker: false });
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('refuses NUL and unpaired surrogates in input_data, context and user_id with 400 naming the field', async () => {
    const user = uid('nul');
    const a = await ge.api(user);
    const cases: Array<[Record<string, unknown>, string]> = [
      [task({ text: 'a\u0000b' }), `input_data.text: ${NUL}`],
      [task({}, { context: { meta: { 'k\u0000': 1 } } }), `context.meta: key "k\\u0000" ${NUL}`],
      [task({ list: ['ok', 'x\ud800'] }), 'input_data.list[1]: contains an unpaired surrogate (U+D800)'],
      [task({}, { context: { s: '\udfff' } }), 'context.s: contains an unpaired surrogate (U+DFFF)'],
    ];
    for (const [body, expected] of cases) {
      const res = await a.submit(body);
      expectError(res, 400, 'VALIDATION_ERROR');
      expect(res.body.error.message).toContain(expected);
      // The countdown takes the schema's path through the submit checks, not the fast one.
      const slow = await a.submit({ ...body, countdown: 60 });
      expectError(slow, 400, 'VALIDATION_ERROR');
      expect(slow.body.error.message).toContain(expected);
    }
    const admin = await ge.api(uid('root'), { admin: true });
    const asUser = await admin.submit(task({}, { user_id: 'bad\u0000user' }));
    expectError(asUser, 400, 'VALIDATION_ERROR');
    expect(asUser.body.error.message).toContain(`user_id: ${NUL}`);
    const list = await admin.get(`/api/tasks?user_id=${encodeURIComponent('x\u0000')}`);
    expectError(list, 400, 'VALIDATION_ERROR');
    expect(list.body.error.message).toContain(`user_id: ${NUL}`);

    // A batch names the item; none of it is queued.
    const ids = [uid('b'), uid('b'), uid('b')];
    const tasks = ids.map((id) => task({}, { task_id: id }));
    tasks[2] = task({ text: '\u0000' }, { task_id: ids[2] });
    const batch = await a.post('/api/tasks/batch', { tasks });
    expectError(batch, 400, 'VALIDATION_ERROR');
    expect(batch.body.error.details.issues).toEqual([{ field: 'tasks[2].input_data.text', message: NUL }]);
    for (const id of ids) expect((await a.task(id)).status).toBe(404);

    // What every store keeps is accepted, and read back as sent.
    const text = 'pairs 😀 𝄞, controls \u0001\t, look-alikes \\u0000 \\ud800';
    const ok = await a.submit(task({ text }, { countdown: 3600 }));
    expect(ok.status).toBe(202);
    expect((await a.task(ok.body.task_id)).body.input_data).toEqual({ text });
  });

  it('refuses a token whose sub holds a NUL or an unpaired surrogate with 401, on HTTP and socket.io', async () => {
    for (const sub of ['user\u0000x', 'user\ud800']) {
      const tok = await mintToken(SECRET, sub);
      for (const res of [
        await request(ge.url, '/api/tasks', { token: tok }),
        await request(ge.url, '/api/tasks', { token: tok, body: task({ text: 'hi' }) }),
        await request(ge.url, '/api/tasks/batch', { token: tok, body: { tasks: [task()] } }),
      ]) {
        expectError(res, 401, 'UNAUTHORIZED');
        expect(res.body.error.message).toMatch(/^invalid token: sub contains/);
      }
      const socket = await tryConnect(ge.url, tok);
      expect(socket.client).toBeUndefined();
      expect(socket.error?.data).toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });
});

describe('gateway edge: ids, schedules, batches and error shapes', () => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create('redis', {}, { worker: false });
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('reads and cancels a task whose id has the longest valid length', async () => {
    const a = await ge.api(uid('long'));
    const id = `${uid('id')}-`.padEnd(TASK_ID_MAX_LENGTH, 'x');
    expect(id).toHaveLength(TASK_ID_MAX_LENGTH);
    const submitted = await a.submit(task({}, { task_id: id, countdown: 3600 }));
    expect(submitted.status).toBe(202);
    const read = await a.task(id);
    expect(read.status).toBe(200);
    expect(read.body.task_id).toBe(id);
    const cancel = await a.cancel(id);
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({ task_id: id, status: 'cancelled', cancelled: true });
    // One longer is no task id: refused at submit, and too long for the URL, in our shape.
    const longer = `${id}y`;
    const refused = await a.submit(task({}, { task_id: longer }));
    expectError(refused, 400, 'VALIDATION_ERROR');
    expect(refused.body.error.message).toContain(`task_id: must be at most ${TASK_ID_MAX_LENGTH} characters`);
    expectError(await a.task(longer), 414, 'URI_TOO_LONG');
    expectError(await a.cancel(longer), 414, 'URI_TOO_LONG');
  });

  it('caps eta at one year as it caps countdown, naming the field as the body has it', async () => {
    const a = await ge.api(uid('eta'));
    const far = new Date(Date.now() + (MAX_DELAY_S + 86400) * 1000).toISOString();
    const eta = await a.submit(task({}, { eta: far }));
    expectError(eta, 400, 'VALIDATION_ERROR');
    expect(eta.body.error.details.issues).toEqual([
      { field: 'eta', message: `must be at most one year (${MAX_DELAY_S} s) from now` },
    ]);
    const countdown = await a.submit(task({}, { countdown: MAX_DELAY_S + 1 }));
    expectError(countdown, 400, 'VALIDATION_ERROR');
    expect(countdown.body.error.details.issues).toEqual([
      { field: 'countdown', message: `must be at most one year (${MAX_DELAY_S} s)` },
    ]);
    const both = await a.submit(task({}, { eta: new Date().toISOString(), countdown: 5 }));
    expect(both.body.error.details.issues).toEqual([
      { field: 'countdown', message: 'give countdown or eta, not both' },
      { field: 'eta', message: 'give countdown or eta, not both' },
    ]);
    const batch = await a.post('/api/tasks/batch', { tasks: [task(), task({}, { eta: far })] });
    expect(batch.body.error.details.issues).toEqual([
      { field: 'tasks[1].eta', message: `must be at most one year (${MAX_DELAY_S} s) from now` },
    ]);
    const near = await a.submit(task({}, { eta: new Date(Date.now() + 3_600_000).toISOString() }));
    expect(near.status).toBe(202);
  });

  it('names the bad item of a batch in 400, 403 and 422 answers, and queues none of it', async () => {
    const user = uid('batch');
    const a = await ge.api(user);
    const fresh = () => [uid('g'), uid('g'), uid('g'), uid('g')];
    const none = async (ids: string[]) => {
      for (const id of ids) expect((await a.task(id)).status, id).toBe(404);
    };

    let ids = fresh();
    let tasks = ids.map((id) => task({}, { task_id: id }));
    tasks[3] = { ...task({}, { task_id: ids[3] }), service: 'nope' };
    const service = await a.post('/api/tasks/batch', { tasks });
    expectError(service, 422, 'SERVICE_NOT_FOUND');
    expect(service.body.error.message).toMatch(/^tasks\[3\]\.service: no service registered as chat\/nope/);
    expect(service.body.error.details).toMatchObject({ field: 'tasks[3].service', service: 'nope' });
    await none(ids);

    ids = fresh();
    tasks = ids.map((id) => task({}, { task_id: id }));
    tasks[1] = task({}, { task_id: ids[1], task_name: 'no_such_method' });
    tasks[2] = { ...task({}, { task_id: ids[2] }), mode: 'nope' };
    const method = await a.post('/api/tasks/batch', { tasks });
    expectError(method, 422, 'SERVICE_NOT_FOUND');
    expect(method.body.error.message).toMatch(
      /^tasks\[1\]\.task_name: service chat\/text_analyzer has no method no_such_method/,
    );
    expect(method.body.error.details.issues.map((i: { field: string }) => i.field)).toEqual([
      'tasks[1].task_name',
      'tasks[2].service',
    ]);
    await none(ids);

    // Bad fields anywhere come first (400, every one named), before who (403) and what (422).
    ids = fresh();
    tasks = ids.map((id) => task({}, { task_id: id }));
    tasks[0] = { ...task({}, { task_id: ids[0] }), service: 'nope' };
    tasks[2] = task({}, { task_id: ids[2], step: -1 });
    const field = await a.post('/api/tasks/batch', { tasks });
    expectError(field, 400, 'VALIDATION_ERROR');
    expect(field.body.error.details.issues.map((i: { field: string }) => i.field)).toEqual(['tasks[2].step']);

    tasks = ids.map((id) => task({}, { task_id: id }));
    tasks[2] = task({}, { task_id: ids[2], user_id: uid('someone') });
    const forbidden = await a.post('/api/tasks/batch', { tasks });
    expectError(forbidden, 403, 'FORBIDDEN');
    expect(forbidden.body.error.message).toMatch(/^tasks\[2\]\.user_id: cannot submit tasks as user/);
    await none(ids);

    // A lone submit keeps its message as it was.
    const single = await a.submit({ ...task(), service: 'nope' });
    expectError(single, 422, 'SERVICE_NOT_FOUND');
    expect(single.body.error.message).toMatch(/^no service registered as chat\/nope/);
  });

  it('answers an unknown route 404 and a known path with another method 405, with Allow', async () => {
    const a = await ge.api(uid('shape'));
    const notFound = await a.get('/api/nothing-here');
    expectError(notFound, 404, 'NOT_FOUND');
    expect(notFound.body.error.message).toBe('no route GET /api/nothing-here');
    expectError(await request(ge.url, '/nothing?x=1'), 404, 'NOT_FOUND');

    const deleted = await a.request('/api/tasks/some-id', { method: 'DELETE' });
    expectError(deleted, 405, 'METHOD_NOT_ALLOWED');
    expect(deleted.headers.get('allow')).toBe('GET, HEAD');
    expect(deleted.body.error.details.allowed).toEqual(['GET', 'HEAD']);
    const put = await a.request('/api/tasks', { method: 'PUT', body: task() });
    expectError(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    expectError(await a.request('/api/tasks/x/cancel'), 405, 'METHOD_NOT_ALLOWED');
  });

  it('answers a bad URL encoding 400 in the documented shape', async () => {
    const a = await ge.api(uid('shape'));
    const badEncoding = await a.get('/api/tasks/%E0%A4%A');
    expectError(badEncoding, 400, 'BAD_REQUEST');
    expect(badEncoding.body.error.message).toBe('malformed URL: invalid percent-encoding');
  });

  it('answers a malformed or empty JSON body 400, naming what is wrong', async () => {
    const a = await ge.api(uid('shape'));
    const json = await a.request('/api/tasks', { method: 'POST', raw: '{"task_name": ' });
    expectError(json, 400, 'BAD_REQUEST');
    expect(json.body.error.message).toBe('malformed request: invalid JSON body');
    const empty = await a.request('/api/tasks', {
      method: 'POST',
      raw: '',
      headers: { 'content-type': 'application/json' },
    });
    expectError(empty, 400, 'BAD_REQUEST');
    expect(empty.body.error.message).toBe(
      'malformed request: the body is empty but content-type is application/json',
    );
  });

  it('answers another content type 415 and a body over the limit 413, saying what is allowed', async () => {
    const a = await ge.api(uid('shape'));
    const media = await a.request('/api/tasks', {
      method: 'POST',
      raw: 'task_name=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectError(media, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(media.body.error.message).toBe(
      'unsupported content-type application/x-www-form-urlencoded; send application/json',
    );
    const limit = ge.env.config.maxInputBytes + 64 * 1024;
    const big = await a.request('/api/tasks', {
      method: 'POST',
      raw: JSON.stringify(task({ blob: 'x'.repeat(limit) })),
    });
    expectError(big, 413, 'PAYLOAD_TOO_LARGE');
    expect(big.body.error.message).toBe(`request body is over the limit of ${limit} bytes`);
  });

  it('answers what Node refuses before Fastify sees a request in the documented shape: 431 and malformed HTTP', async () => {
    const { port } = new URL(ge.url);
    const headers = await rawHttp(
      Number(port),
      `GET /api/tasks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`,
    );
    expect(headers.status).toBe(431);
    expect(headers.body).toEqual({
      error: { code: 'HEADERS_TOO_LARGE', message: expect.stringContaining('headers'), details: {} },
    });
    const garbage = await rawHttp(Number(port), 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(garbage.body).toEqual({
      error: { code: 'BAD_REQUEST', message: 'malformed HTTP request', details: {} },
    });
  });
});

/** Sends raw bytes; resolves with the status and JSON body of the response. */
function rawHttp(port: number, payload: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(text);
      if (!m) return reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      try {
        resolve({ status: Number(m[1]), body: JSON.parse(m[2]!) });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    socket.write(payload);
  });
}
