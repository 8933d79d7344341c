// The dashboard's static files as the gateway serves them: redirects, the CSP and cache headers on
// the page and its assets, no way out of the folder, a clear 404 without a build; and GET /api/me.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { DASHBOARD_CSP } from '../src/gateway/dashboard-route.js';
import { Gateway } from '../src/gateway/server.js';
import { SECRET, request, token } from './gateway-harness.js';
import { TestEnv } from './harness.js';

/** A path sent as written: fetch would resolve `..` before the server saw it. */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function expectDashboardHeaders(headers: Headers): void {
  expect(headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
  expect(headers.get('x-content-type-options')).toBe('nosniff');
  expect(headers.get('referrer-policy')).toBe('no-referrer');
}

describe('the dashboard at /dashboard/', () => {
  let env: TestEnv;
  let dir: string;
  const gateways: Gateway[] = [];
  let url: string;
  let bare: string;

  async function start(dashboardRoot: string): Promise<string> {
    const app = env.app();
    const gateway = new Gateway({
      app,
      store: await app.store(),
      config: env.config,
      logger: silentLogger,
      dashboardRoot,
    });
    gateways.push(gateway);
    return gateway.listen(0, '127.0.0.1');
  }

  beforeAll(async () => {
    env = await TestEnv.create('embedded', { AIECS_JWT_SECRET: SECRET });
    dir = mkdtempSync(join(tmpdir(), 'aiecs-dashboard-'));
    const root = join(dir, 'dashboard');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>aiecs</title>');
    writeFileSync(join(root, 'assets', 'index-3f2a1b.js'), 'export const page = 1;');
    writeFileSync(join(dir, 'secret.txt'), 'outside the dashboard');
    url = await start(root);
    bare = await start(join(dir, 'not-built'));
  });
  afterAll(async () => {
    await Promise.allSettled(gateways.map((g) => g.close()));
    await env?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sends / and /dashboard to /dashboard/', async () => {
    for (const path of ['/', '/dashboard']) {
      const res = await fetch(`${url}${path}`, { redirect: 'manual' });
      expect(res.status, path).toBe(302);
      expect(res.headers.get('location')).toBe('/dashboard/');
      expectDashboardHeaders(res.headers);
    }
  });

  it('serves index.html with the CSP, revalidated on every load', async () => {
    for (const path of ['/dashboard/', '/dashboard/index.html']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await res.text()).toContain('<title>aiecs</title>');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expectDashboardHeaders(res.headers);
    }
  });

  it('serves hashed assets with the CSP, cached for good', async () => {
    const res = await fetch(`${url}/dashboard/assets/index-3f2a1b.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/javascript/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expectDashboardHeaders(res.headers);
    const missing = await fetch(`${url}/dashboard/assets/nope.js`);
    expect(missing.status).toBe(404);
    expectDashboardHeaders(missing.headers);
  });

  it('never serves a file outside its folder', async () => {
    for (const path of [
      '/dashboard/../secret.txt',
      '/dashboard/%2e%2e/secret.txt',
      '/dashboard/..%2fsecret.txt',
      '/dashboard/assets/%2e%2e/%2e%2e/secret.txt',
    ]) {
      const res = await rawGet(url, path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.body, path).not.toContain('outside the dashboard');
    }
  });

  it('answers 404 with the build command when the dashboard is not built', async () => {
    const res = await request(bare, '/dashboard/');
    expect(res.status).toBe(404);
    expect(res.body.error.message).toContain('run npm run build');
    expectDashboardHeaders(res.headers);
    const redirect = await fetch(`${bare}/`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    // The API is untouched by it.
    expect((await request(bare, '/healthz')).status).toBe(200);
  });

  it('does not put the dashboard CSP on the API', async () => {
    const res = await request(url, '/healthz');
    expect(res.headers.get('content-security-policy')).toBeNull();
  });

  it('GET /api/me says who the token is', async () => {
    const user = await request(url, '/api/me', { token: await token('ann', { ttlS: 600 }) });
    expect(user.status).toBe(200);
    expect(user.body).toMatchObject({ user_id: 'ann', admin: false });
    const expires = Date.parse(user.body.expires_at);
    expect(expires).toBeGreaterThan(Date.now());
    expect(expires).toBeLessThanOrEqual(Date.now() + 601_000);
    const admin = await request(url, '/api/me', { token: await token('root', { admin: true }) });
    expect(admin.body).toMatchObject({ user_id: 'root', admin: true });
    const none = await request(url, '/api/me');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHORIZED');
  });
});
