// The OpenAPI document @fastify/swagger generates from the route schemas: every route the gateway
// declares is in it (or hidden on purpose), it has every operation the hand-made document had,
// and it holds together (every $ref resolves, every path parameter is declared).
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { Gateway } from '../src/gateway/server.js';
import { TestEnv } from './harness.js';

interface Operation {
  summary?: string;
  tags?: string[];
  responses?: Record<string, { description?: string }>;
  parameters?: Array<{ name: string; in: string }>;
}
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> } & Record<string, unknown>;

/** The hand-made document's operations and their responses, before it was generated. */
const BEFORE: Record<string, string> = {
  'POST /api/tasks': '200 202 400 401 403 409 413 422 429',
  'GET /api/tasks': '200 400 401',
  'POST /api/tasks/batch': '202 400 401 403 409 413 422 429',
  'GET /api/tasks/{id}': '200 401 404',
  'POST /api/tasks/{id}/cancel': '200 401 404',
  'POST /api/tasks/{id}/retry': '202 401 404 409',
  'GET /api/me': '200 401',
  'GET /api/services': '200 401',
  'GET /api/workers': '200 400 401 403 503',
  'POST /api/workers/{name}/control': '200 400 401 403 404 409 503 504',
  'GET /api/inspect/{what}': '200 400 401 403 404 503',
  'GET /api/queues': '200 401 403 503',
  'POST /api/queues/{name}/pause': '200 401 403 404 503',
  'POST /api/queues/{name}/resume': '200 401 403 404 503',
  'POST /api/queues/{name}/purge': '200 401 403 404 503',
  'GET /api/events': '200 401 403',
  'GET /metrics': '200 401',
  'GET /healthz': '200',
  'GET /readyz': '200 503',
};

/** Fastify's `/tasks/:id` as OpenAPI's `/tasks/{id}`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

/** The declared routes the document does not describe: no schema, or not in its paths. */
function undocumented(routes: RouteOptions[], doc: Doc): string[] {
  const missing: string[] = [];
  for (const route of routes) {
    const schema = (route.schema ?? {}) as { hide?: boolean };
    if (schema.hide === true) continue;
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue; // Fastify's own, beside each GET
      const op = doc.paths[openApiPath(route.url)]?.[method.toLowerCase()];
      if (!op?.summary || !op.tags?.length || !op.responses || Object.keys(op.responses).length === 0)
        missing.push(`${method} ${route.url}`);
    }
  }
  return missing;
}

/** Every `$ref` in the document, and whether its JSON pointer lands on something. */
function refs(doc: unknown): Array<{ ref: string; resolves: boolean }> {
  const found: Array<{ ref: string; resolves: boolean }> = [];
  const resolve = (ref: string) =>
    ref
      .slice(2)
      .split('/')
      .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], doc);
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object')
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string')
          found.push({ ref: value, resolves: value.startsWith('#/') && resolve(value) !== undefined });
        else walk(value);
      }
  };
  walk(doc);
  return found;
}

describe('the generated OpenAPI document', () => {
  let env: TestEnv;
  let gateway: Gateway;
  const routes: RouteOptions[] = [];
  let doc: Doc;

  beforeAll(async () => {
    env = await TestEnv.create('embedded', { AIECS_JWT_SECRET: 'openapi-suite-secret-0123456789abcdef' });
    const app = env.app();
    gateway = new Gateway({ app, store: await app.store(), config: env.config, logger: silentLogger });
    // The gateway declares its routes as Fastify starts: this hook sees every one of them.
    gateway.fastify.addHook('onRoute', (route) => void routes.push(route));
    // A route added without a schema, as a new route file might: it must not go unnoticed.
    gateway.fastify.get('/api/undocumented', async () => ({}));
    await gateway.fastify.ready();
    const reply = await gateway.fastify.inject({ method: 'GET', url: '/openapi.json' });
    expect(reply.statusCode).toBe(200);
    doc = reply.json<Doc>();
  });
  afterAll(async () => {
    await gateway?.close();
    await env?.cleanup();
  });

  it('describes every route the gateway declares, and catches one declared without a schema', () => {
    expect(routes.length).toBeGreaterThan(Object.keys(BEFORE).length);
    expect(undocumented(routes, doc)).toEqual(['GET /api/undocumented']);
    // Hidden on purpose: the dashboard's files, the document itself, the CORS preflight.
    expect(Object.keys(doc.paths)).not.toContain('/openapi.json');
    expect(Object.keys(doc.paths).filter((p) => p.includes('*') || p.startsWith('/dashboard'))).toEqual([]);
  });

  it('has every operation and response the hand-made document had', () => {
    for (const [operation, statuses] of Object.entries(BEFORE)) {
      const [method, path] = operation.split(' ') as [string, string];
      const op = doc.paths[path]?.[method.toLowerCase()];
      expect(op, operation).toBeDefined();
      expect(Object.keys(op!.responses ?? {}), operation).toEqual(
        expect.arrayContaining(statuses.split(' ')),
      );
    }
    expect(doc.paths['/healthz']!.get!).toMatchObject({ security: [] });
    expect(doc.security).toEqual([{ bearer: [] }]);
  });

  it('holds together: OpenAPI 3.1, $refs resolve, path parameters declared, responses described', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    for (const { ref, resolves } of refs(doc)) expect(resolves, ref).toBe(true);
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item)) {
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
        const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        expect(declared.sort(), `${method} ${path}`).toEqual(inPath.sort());
        for (const [status, response] of Object.entries(op.responses ?? {}))
          expect(response.description, `${method} ${path} ${status}`).toBeTruthy();
      }
    // The error replies are in the one error shape, a shared schema.
    const error = (
      doc.paths['/api/tasks']!.post!.responses!['429'] as {
        content: Record<string, { schema: { $ref?: string } }>;
      }
    ).content['application/json']!.schema;
    expect(error).toEqual({ $ref: '#/components/schemas/ApiError' });
    const shared = (doc.components as { schemas: Record<string, { properties: object }> }).schemas;
    expect(Object.keys(shared.ApiError!.properties)).toEqual(['error']);
  });
});
