// Task templates over HTTP (issue 16): GET /api/templates, POST /api/tasks and /api/tasks/batch
// with {"template": "name@v", "input_data": {...}}: the input checked before queuing (400 naming
// input_data.<path>), unknown names and versions (404 TEMPLATE_NOT_FOUND), version pinning,
// defaults and overrides, the record's `template`, and the OpenAPI entries; embedded and Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TemplateDefinition } from '../src/core/template-registry.js';
import { GATEWAY_KINDS, GatewayEnv, uid, type Api, type Loose } from './gateway-harness.js';

const v1: TemplateDefinition = {
  name: 'shout',
  version: 1,
  mode: 'test',
  service: 'probe',
  task_name: 'echo',
  input_schema: { type: 'object', properties: { n: { type: 'integer' } } },
  context: { language: 'en', tone: 'calm' },
  options: { priority: 40 },
  description: 'the first one',
};
const v2: TemplateDefinition = {
  ...v1,
  version: 2,
  input_schema: {
    type: 'object',
    properties: {
      text: { type: 'string', minLength: 1 },
      meta: { type: 'object', properties: { tags: { type: 'array', items: { type: 'string' } } } },
    },
    required: ['text'],
  },
  options: { priority: 60 },
  description: undefined,
};

const fields = (body: Loose): string[] =>
  (body.error.details.issues as Array<{ field: string }>).map((i) => i.field).sort();

describe.each(GATEWAY_KINDS)('templates over HTTP on %s', (kind) => {
  let ge: GatewayEnv;
  let user: string;
  let a: Api;

  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
    ge.main.app.templates.register(v1).register(v2);
    user = uid('tpl');
    a = await ge.api(user);
  });
  afterAll(() => ge?.cleanup());

  const listed = async () =>
    ((await a.get('/api/tasks?limit=200')).body.tasks as Loose[]).map((t) => t.task_id);

  it('lists every version with its input schema and defaults, the latest marked', async () => {
    const res = await a.get('/api/templates');
    expect(res.status).toBe(200);
    const shout = (res.body.templates as Loose[]).filter((t) => t.name === 'shout');
    expect(shout.map((t) => [t.ref, t.latest])).toEqual([
      ['shout@1', false],
      ['shout@2', true],
    ]);
    expect(shout[0]).toMatchObject({
      mode: 'test',
      service: 'probe',
      task_name: 'echo',
      queue: 'fast_tasks',
      context: { language: 'en', tone: 'calm' },
      options: { priority: 40 },
      description: 'the first one',
      input_schema: v1.input_schema,
    });
  });

  it('runs the named version (v1 after v2 exists), the latest without @v, and keeps it in the record', async () => {
    const one = await a.submit({ template: 'shout@1', input_data: { n: 3 } });
    expect(one.status).toBe(202);
    expect(one.body).toMatchObject({ status: 'pending', queue: 'fast_tasks', template: 'shout@1' });
    const latest = await a.submit({ template: 'shout', input_data: { text: 'hi' } });
    expect(latest.body.template).toBe('shout@2');
    const [r1, r2] = await Promise.all([a.settled(one.body.task_id), a.settled(latest.body.task_id)]);
    expect(r1).toMatchObject({ status: 'completed', template: 'shout@1', priority: 40, user_id: user });
    expect(r1.result.echo).toEqual({ n: 3 });
    expect(r1.context).toEqual({ language: 'en', tone: 'calm' });
    expect(r2).toMatchObject({ status: 'completed', template: 'shout@2', priority: 60 });
    const page = (await a.get('/api/tasks?limit=200')).body.tasks as Loose[];
    expect(page.find((t) => t.task_id === one.body.task_id)?.template).toBe('shout@1');
  });

  it('fills defaults the request does not give and lets the request override them', async () => {
    const res = await a.submit({
      template: 'shout@1',
      input_data: { n: 1 },
      context: { tone: 'loud' },
      priority: 5,
      heavy: true,
    });
    expect(res.status).toBe(202);
    expect(res.body.queue).toBe('heavy_tasks');
    const record = await a.settled(res.body.task_id);
    expect(record).toMatchObject({ priority: 5, queue: 'heavy_tasks', template: 'shout@1' });
    expect(record.context).toEqual({ language: 'en', tone: 'loud' });
  });

  it('refuses bad input before queuing, naming the nested fields (400)', async () => {
    const before = await listed();
    const res = await a.submit({ template: 'shout@2', input_data: { text: '', meta: { tags: ['a', 3] } } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(fields(res.body)).toEqual(['input_data.meta.tags.1', 'input_data.text']);
    // The template gives the method: a body naming one is refused, as is a malformed reference.
    const named = await a.submit({ template: 'shout@2', task_name: 'fail', input_data: { text: 'x' } });
    expect(named.status).toBe(400);
    expect(fields(named.body)).toEqual(['(root)']);
    expect(named.body.error.message).toContain('task_name');
    const malformed = await a.submit({ template: 'shout@v2', input_data: {} });
    expect(malformed.status).toBe(400);
    expect(fields(malformed.body)).toEqual(['template']);
    expect(await listed()).toEqual(before);
  });

  it('answers 404 TEMPLATE_NOT_FOUND for an unknown name or version', async () => {
    const version = await a.submit({ template: 'shout@7', input_data: {} });
    expect(version.status).toBe(404);
    expect(version.body.error.code).toBe('TEMPLATE_NOT_FOUND');
    expect(version.body.error.message).toContain('its versions: 1, 2');
    const name = await a.submit({ template: 'whisper', input_data: {} });
    expect(name.status).toBe(404);
    expect(name.body.error.code).toBe('TEMPLATE_NOT_FOUND');
  });

  it('takes template items in a batch, naming a bad item by its index', async () => {
    const ok = await a.post('/api/tasks/batch', {
      tasks: [
        { template: 'shout@1', input_data: { n: 1 } },
        { task_name: 'echo', mode: 'test', service: 'probe', input_data: { plain: true } },
      ],
    });
    expect(ok.status).toBe(202);
    const records = await Promise.all((ok.body.tasks as Loose[]).map((t) => a.settled(t.task_id)));
    expect(records.map((r) => r.template)).toEqual(['shout@1', undefined]);
    const before = await listed();
    const bad = await a.post('/api/tasks/batch', {
      tasks: [
        { template: 'shout@1', input_data: { n: 1 } },
        { template: 'shout@1', input_data: { n: 'one' } },
      ],
    });
    expect(bad.status).toBe(400);
    expect(fields(bad.body)).toEqual(['tasks[1].input_data.n']);
    const unknown = await a.post('/api/tasks/batch', {
      tasks: [{ template: 'shout@1' }, { template: 'shout@9' }],
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details.field).toBe('tasks[1].template');
    expect(await listed()).toEqual(before);
  });

  it('documents the template routes in OpenAPI', async () => {
    const doc = (await a.get('/openapi.json')).body;
    expect(doc.paths['/api/templates'].get.summary).toContain('templates');
    const submit = doc.paths['/api/tasks'].post;
    expect(Object.keys(submit.responses)).toContain('404');
    const bodies = submit.requestBody.content['application/json'].schema.oneOf as Loose[];
    expect(bodies.some((b) => 'template' in (b.properties ?? {}))).toBe(true);
  });
});
