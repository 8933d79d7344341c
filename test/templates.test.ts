// Task templates (issue 16): the registry's checks, a templates file refused whole naming the
// entry and field, and submits through the library (`app.template(...).delay`) on the embedded
// store and Redis: validation before queuing, version pinning, defaults, and the record's version.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { pathToFileURL, fileURLToPath } from 'node:url';
import {
  ConfigError,
  TemplateInvalidError,
  TemplateNotFoundError,
  ValidationError,
} from '../src/core/errors.js';
import { loadTemplateFile } from '../src/core/template-file.js';
import { TemplateRegistry, type TemplateDefinition } from '../src/core/template-registry.js';
import type { AiecsApp } from '../src/engine/app.js';
import { registerTemplate, ServiceRegistry } from '../src/registry/registry.js';
import { loadServiceModules } from '../src/registry/service-loader.js';
import { TestEnv } from './harness.js';

/** v1 and v2 of a template on the probe service's echo method; v2 needs `text`. */
const echo1: TemplateDefinition = {
  name: 'echo',
  version: 1,
  mode: 'test',
  service: 'probe',
  task_name: 'echo',
  input_schema: { type: 'object', properties: { n: { type: 'integer' } } },
  context: { language: 'en', style: 'short' },
  options: { priority: 42 },
};
const echo2: TemplateDefinition = {
  ...echo1,
  version: 2,
  input_schema: {
    type: 'object',
    properties: {
      text: { type: 'string', minLength: 1 },
      opts: {
        type: 'object',
        properties: {
          items: { type: 'array', items: { type: 'object', properties: { n: { type: 'integer' } } } },
        },
      },
    },
    required: ['text'],
    additionalProperties: false,
  },
  options: { priority: 7, heavy: true, time_limit: 60 },
};

const caught = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
};

describe('TemplateRegistry', () => {
  const registry = new TemplateRegistry().register(echo1).register(echo2);

  it('lists every version with the latest marked, and its input schema as JSON Schema', () => {
    const list = registry.list();
    expect(list.map((t) => [t.ref, t.latest, t.queue])).toEqual([
      ['echo@1', false, 'fast_tasks'],
      ['echo@2', true, 'heavy_tasks'],
    ]);
    expect(list[1]!.input_schema).toEqual(echo2.input_schema);
    expect(list[1]!.options).toEqual({ priority: 7, time_limit: 60 });
  });

  it("fills the input schema's defaults in where the input leaves a field out", () => {
    const withDefaults = new TemplateRegistry().register({
      ...echo1,
      input_schema: {
        type: 'object',
        properties: { text: { type: 'string' }, lang: { type: 'string', default: 'en' } },
        required: ['text'],
      },
    });
    expect(withDefaults.resolve('echo', { input_data: { text: 'a' } }).request.input_data).toEqual({
      text: 'a',
      lang: 'en',
    });
    expect(
      withDefaults.resolve('echo', { input_data: { text: 'a', lang: 'de', extra: 1 } }).request.input_data,
    ).toEqual({ text: 'a', lang: 'de', extra: 1 });
  });

  it('resolves a name to its latest version and name@v to that version', () => {
    expect(registry.resolve('echo', { input_data: { text: 'a' } }).ref).toBe('echo@2');
    expect(registry.resolve('echo@1', { input_data: { n: 1 } }).ref).toBe('echo@1');
  });

  it('names every failing input field under input_data, nested paths included', () => {
    const error = caught(() =>
      registry.resolve('echo@2', {
        input_data: { text: '', opts: { items: [{ n: 1 }, { n: 'x' }] }, extra: 1 },
      }),
    ) as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    const fields = error.issues.map((i) => i.field).sort();
    expect(fields).toEqual(['input_data', 'input_data.opts.items.1.n', 'input_data.text']);
    expect(error.issues.find((i) => i.field === 'input_data')!.message).toContain('extra');
    // A missing required field is named too.
    const missing = caught(() => registry.resolve('echo@2', { input_data: {} })) as ValidationError;
    expect(missing.issues.map((i) => i.field)).toEqual(['input_data.text']);
  });

  it('refuses an unknown name or version with TemplateNotFoundError listing the versions', () => {
    const version = caught(() => registry.resolve('echo@3', {})) as TemplateNotFoundError;
    expect(version).toBeInstanceOf(TemplateNotFoundError);
    expect(version.code).toBe('TEMPLATE_NOT_FOUND');
    expect(version.message).toContain('its versions: 1, 2');
    expect(caught(() => registry.get('nope'))).toBeInstanceOf(TemplateNotFoundError);
    expect((caught(() => registry.get('no pe@x')) as ValidationError).issues[0]!.field).toBe('template');
  });

  it('fills defaults the request does not give; the request wins where it gives them', () => {
    const plain = registry.resolve('echo@1', { user_id: 'u', input_data: { n: 1 } });
    expect(plain.request.context).toEqual({ language: 'en', style: 'short' });
    expect(plain.options).toEqual({ priority: 42 });
    expect(plain.queue).toBe('fast_tasks');
    const given = registry.resolve(
      'echo@1',
      { user_id: 'u', input_data: {}, context: { style: 'long' } },
      { priority: 3, attempts: 2 },
      true,
    );
    expect(given.request.context).toEqual({ language: 'en', style: 'long' });
    expect(given.options).toEqual({ priority: 3, attempts: 2 });
    expect(given.queue).toBe('heavy_tasks');
    // What the template names is its own: a request cannot run another method through it.
    const other = caught(() =>
      registry.resolve('echo@1', { task_name: 'fail', mode: 'x' }),
    ) as ValidationError;
    expect(other.issues.map((i) => i.field).sort()).toEqual(['mode', 'task_name']);
  });

  it('takes a zod schema in code and lists it as JSON Schema', () => {
    const r = new TemplateRegistry().register({
      ...echo1,
      name: 'zodded',
      input_schema: z.object({ text: z.string().min(2) }),
    });
    expect(r.get('zodded').input_schema).toMatchObject({ type: 'object', required: ['text'] });
    const error = caught(() => r.resolve('zodded', { input_data: { text: 'a' } })) as ValidationError;
    expect(error.issues.map((i) => i.field)).toEqual(['input_data.text']);
  });

  it('refuses a bad definition naming the template and field', () => {
    const error = caught(() =>
      new TemplateRegistry().register({
        ...echo1,
        name: 'bad',
        version: 3,
        input_schema: { type: 'string' },
        options: { priority: 500, soft_time_limit: 20, time_limit: 10 },
      }),
    ) as TemplateInvalidError;
    expect(error).toBeInstanceOf(TemplateInvalidError);
    const fields = error.issues.map((i) => i.field).sort();
    expect(fields).toEqual(['bad@3.options.priority', 'bad@3.options.soft_time_limit']);
    const schema = caught(() =>
      new TemplateRegistry().register({ ...echo1, input_schema: { type: 'string' } }),
    ) as TemplateInvalidError;
    expect(schema.issues.map((i) => i.field)).toEqual(['echo@1.input_schema']);
    const version = caught(() =>
      new TemplateRegistry().register({ ...echo1, version: 0 }),
    ) as TemplateInvalidError;
    expect(version.issues.map((i) => i.field)).toEqual(['template.version']);
  });

  it('keeps an old version working until it is removed', () => {
    const r = new TemplateRegistry().register(echo1).register(echo2);
    expect(r.unregister('echo', 1)).toBe(true);
    expect(caught(() => r.get('echo@1'))).toBeInstanceOf(TemplateNotFoundError);
    expect(r.get('echo').ref).toBe('echo@2');
  });
});

describe('templates file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aiecs-templates-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('loads a YAML list, and a JSON one', () => {
    const yaml = file(
      'good.yaml',
      [
        '- name: summarize',
        '  version: 1',
        '  mode: test',
        '  service: probe',
        '  task_name: echo',
        '  input_schema: {type: object, properties: {text: {type: string}}, required: [text]}',
        '  options: {heavy: true, attempts: 2}',
        '  description: first',
      ].join('\n'),
    );
    const r = loadTemplateFile(new TemplateRegistry(), yaml);
    expect(r.get('summarize')).toMatchObject({
      ref: 'summarize@1',
      queue: 'heavy_tasks',
      description: 'first',
    });
    const json = file('good.json', JSON.stringify([echo1, echo2]));
    expect(loadTemplateFile(new TemplateRegistry(), json).size).toBe(2);
  });

  it('refuses a file with one bad entry whole, naming the entry and the field', () => {
    const path = file(
      'bad.json',
      JSON.stringify([echo1, { ...echo2, options: { priority: 0 } }, { ...echo1, name: 'x y' }, echo1]),
    );
    const registry = new TemplateRegistry();
    const error = caught(() => loadTemplateFile(registry, path)) as TemplateInvalidError;
    expect(error).toBeInstanceOf(TemplateInvalidError);
    expect(error.message).toContain(`templates file ${path}`);
    expect(error.issues.map((i) => i.field)).toEqual(['echo@2.options.priority', '[2].name', '[3].version']);
    expect(registry.size).toBe(0);
    const broken = caught(() =>
      loadTemplateFile(registry, file('broken.yaml', '- name: [unclosed')),
    ) as TemplateInvalidError;
    expect(broken.issues[0]!.field).toBe('(file)');
    const notList = caught(() =>
      loadTemplateFile(registry, file('map.json', '{"a": 1}')),
    ) as TemplateInvalidError;
    expect(notList.issues[0]!.field).toBe('(root)');
  });
});

describe('registerTemplate in a services module', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aiecs-template-module-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is recorded by the loader for the registry loading it, and refused outside a load', async () => {
    const dist = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href;
    const module = join(dir, 'with-template.mjs');
    writeFileSync(
      module,
      `import { registerTemplate } from ${JSON.stringify(dist)};\n` +
        `registerTemplate(${JSON.stringify({ ...echo1, name: 'from_module' })});\n`,
    );
    const services = new ServiceRegistry();
    await loadServiceModules([module], services);
    expect(services.templates.map((t) => `${t.name}@${t.version}`)).toEqual(['from_module@1']);
    // A second loader of the same module gets them too (ESM evaluates it once).
    const again = new ServiceRegistry();
    await loadServiceModules([module], again);
    expect(again.templates).toHaveLength(1);
    const templates = new TemplateRegistry().registerAll(services.templates);
    expect(templates.get('from_module').ref).toBe('from_module@1');
    expect(() => registerTemplate(echo1)).toThrow(ConfigError);
  });
});

describe.each(['embedded', 'redis'] as const)('app.template(...).delay on %s', (kind) => {
  let env: TestEnv;
  let app: AiecsApp;

  beforeAll(async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    app = env.app();
    app.templates.register(echo1);
  });
  afterAll(() => env?.cleanup());
  afterEach(() => {
    app.templates.unregister('echo', 2);
  });

  it('runs the template version it names, keeps it in the record, and takes the latest without @v', async () => {
    app.templates.register({ ...echo2, options: { priority: 7 } });
    const pinned = await app.template('echo@1').delay({ n: 5 }, { userId: 'u1' });
    const latest = await app.template('echo').delay({ text: 'hi' }, { userId: 'u1' });
    const [one, two] = await Promise.all([pinned.get({ timeout: 30 }), latest.get({ timeout: 30 })]);
    expect(one.template).toBe('echo@1');
    expect(one.result).toMatchObject({ echo: { n: 5 } });
    expect(one.priority).toBe(42);
    expect(one.context).toEqual({ language: 'en', style: 'short' });
    expect(two.template).toBe('echo@2');
    expect(two.priority).toBe(7);
    // Listings show it too.
    const { tasks } = await app.listTasks('u1');
    expect(new Set(tasks.map((t) => t.template))).toEqual(new Set(['echo@1', 'echo@2']));
  });

  it('applies defaults and lets the submit override them', async () => {
    const handle = await app
      .template('echo@1')
      .delay({ n: 1 }, { userId: 'u2', context: { style: 'long' }, priority: 3, heavy: true });
    expect(handle.queue).toBe('heavy_tasks');
    const record = await handle.get({ timeout: 30 });
    expect(record.priority).toBe(3);
    expect(record.context).toEqual({ language: 'en', style: 'long' });
  });

  it('refuses bad input before queuing, naming the fields, and unknown templates or versions', async () => {
    app.templates.register(echo2);
    const bad = await app
      .template('echo@2')
      .delay({ text: 5, opts: { items: [{ n: 'x' }] } }, { userId: 'u3' })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).issues.map((i) => i.field).sort()).toEqual([
      'input_data.opts.items.0.n',
      'input_data.text',
    ]);
    const userless = await app
      .template('echo@1')
      .delay({}, {} as never)
      .catch((e: unknown) => e);
    expect((userless as ValidationError).issues.map((i) => i.field)).toEqual(['user_id']);
    await expect(app.template('echo@9').delay({}, { userId: 'u3' })).rejects.toBeInstanceOf(
      TemplateNotFoundError,
    );
    await expect(app.template('missing').delay({}, { userId: 'u3' })).rejects.toBeInstanceOf(
      TemplateNotFoundError,
    );
    expect((await app.listTasks('u3')).tasks).toEqual([]);
  });

  it('names a batch item with a bad template input by its index', async () => {
    const error = await app
      .submitWire([
        { template: 'echo@1', request: { user_id: 'u4', input_data: { n: 1 } } },
        { template: 'echo@1', request: { user_id: 'u4', input_data: { n: 'one' } } },
      ])
      .catch((e: unknown) => e);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual(['[1].input_data.n']);
    const missing = await app
      .submitWire([
        { template: 'echo@1', request: { user_id: 'u4' } },
        { template: 'echo@5', request: { user_id: 'u4' } },
      ])
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TemplateNotFoundError);
    expect((missing as TemplateNotFoundError).details.field).toBe('[1].template');
    expect((await app.listTasks('u4')).tasks).toEqual([]);
  });
});
