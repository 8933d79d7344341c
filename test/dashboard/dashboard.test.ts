// The dashboard in a real browser (Debian's chromium driven by playwright-core): sign-in through
// the #token= link, live task states, streamed text, cancel, retry, filters in the URL, the XSS
// case, a non-admin's view and a refused token. The page is built from src/dashboard into a
// temporary folder and served by an in-process gateway with a worker on an embedded store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, requireChromium } from '../../bench/chromium.js';
import { silentLogger } from '../../src/core/logger.js';
import { Gateway } from '../../src/gateway/server.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import { registerBuiltinServices } from '../../src/services/builtin.js';
import { SECRET, api, expectedTokens, probe, token, uid, type Api } from '../gateway-harness.js';
import { TestEnv } from '../harness.js';

const WAIT = 30_000;
const XSS = '<img src=x onerror=alert(1)>';
/** What callbacks given to page.evaluate see: the page's globals (this file has no DOM types). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Win = any;

describe('the dashboard in chromium', () => {
  let env: TestEnv;
  let gateway: Gateway;
  let browser: Browser;
  let url: string;
  let dir: string;
  let admin: Api;
  let adminToken: string;
  const shots = process.env.AIECS_SCREENSHOT_DIR ?? mkdtempSync(join(tmpdir(), 'aiecs-shots-'));

  beforeAll(async () => {
    requireChromium();
    dir = mkdtempSync(join(tmpdir(), 'aiecs-dashboard-e2e-'));
    await build({
      configFile: fileURLToPath(new URL('../../src/dashboard/vite.config.ts', import.meta.url)),
      build: { outDir: join(dir, 'dashboard') },
      logLevel: 'error',
    });
    env = await TestEnv.create('embedded', { AIECS_JWT_SECRET: SECRET });
    await env.worker();
    const app = env.app();
    gateway = new Gateway({
      app,
      store: await app.store(),
      config: env.config,
      logger: silentLogger,
      registry: registerBuiltinServices(new ServiceRegistry()),
      dashboardRoot: join(dir, 'dashboard'),
    });
    url = await gateway.listen(0, '127.0.0.1');
    adminToken = await token('ops', { admin: true });
    admin = api(url, adminToken);
    browser = await launchChromium();
    console.log(`dashboard screenshots in ${shots}`);
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await env?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A page signed in through the link `aiecs up` prints; `dialogs` records any alert(). */
  async function open(tok: string, hash = '', size = { width: 1280, height: 800 }) {
    const page = await browser.newPage({ viewport: size });
    const dialogs: string[] = [];
    const errors: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${url}/dashboard/#token=${tok}`);
    if (hash) {
      await page.locator('[data-who], [data-view="sign-in"]').first().waitFor({ timeout: WAIT });
      await page.evaluate((h) => ((globalThis as Win).location.hash = h), hash);
    }
    return { page, dialogs, errors, requests };
  }

  async function submit(task: Record<string, unknown>, as: Api = admin): Promise<string> {
    const res = await as.submit(task);
    expect(res.status, res.text).toBe(202);
    return res.body.task_id as string;
  }

  /** A screenshot that is not a blank page: many times the bytes of a blank one of that size. */
  async function screenshot(page: Page, name: string): Promise<void> {
    const size = page.viewportSize()!;
    const file = join(shots, `${name}.png`);
    const png = await page.screenshot({ path: file, fullPage: false });
    const blank = await browser.newPage({ viewport: size });
    const empty = await blank.screenshot();
    await blank.close();
    expect(png.length, `${file} looks blank`).toBeGreaterThan(empty.length * 5);
  }

  it('signs in through the #token= link, drops the token from the address bar, shows the overview', async () => {
    const { page, errors, requests } = await open(adminToken);
    await page.locator('[data-who]').getByText('ops').waitFor({ timeout: WAIT });
    await page.locator('.dot-connected').waitFor({ timeout: WAIT });
    // The fragment never reaches the server; the token goes in headers and the socket's auth only.
    expect(requests.length).toBeGreaterThan(1);
    for (const r of requests) expect(r).not.toContain(adminToken.split('.')[2]!);
    expect(page.url()).toBe(`${url}/dashboard/#/`);
    expect(page.url()).not.toContain('token');
    expect(await page.evaluate(() => (globalThis as Win).sessionStorage.getItem('aiecs.token'))).toBe(
      adminToken,
    );
    // Stats frames fill the overview: the worker, both queues, the totals.
    await submit(probe('echo', { n: 1 }));
    await page.locator('[data-table="workers"] tbody tr td.mono').first().waitFor({ timeout: WAIT });
    await page.locator('[data-queue="fast_tasks"]').waitFor({ timeout: WAIT });
    await page.locator('[data-total="completed"]').waitFor({ timeout: WAIT });
    await page.locator('.chart canvas').first().waitFor({ timeout: WAIT });
    await screenshot(page, 'overview-1280x800');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'overview-390x844');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a task go pending → running (progress moving) → completed without a reload', async () => {
    // Held in a paused queue until the page has shown it pending, however slow the browser starts.
    expect((await admin.post('/api/queues/fast_tasks/pause')).status).toBe(200);
    const id = await submit(probe('progress_steps', { steps: 8, ms: 400 }));
    const { page, errors } = await open(adminToken, `#/tasks/${id}`);
    await page.evaluate(() => ((globalThis as unknown as { loaded: number }).loaded = 1));
    try {
      await page.locator('.task-title .badge[data-status="pending"]').waitFor({ timeout: WAIT });
    } finally {
      expect((await admin.post('/api/queues/fast_tasks/resume')).status).toBe(200);
    }
    await page.locator('.task-title .badge[data-status="running"]').waitFor({ timeout: WAIT });
    const seen = new Set<number>();
    await page.waitForFunction(
      () => {
        const el = (globalThis as Win).document.querySelector('[data-section="progress"] [data-progress]');
        const v = Number(el?.getAttribute('data-progress'));
        return v > 0 && v < 100 ? v : false;
      },
      undefined,
      { timeout: WAIT },
    );
    seen.add(
      Number(await page.locator('[data-section="progress"] [data-progress]').getAttribute('data-progress')),
    );
    await page.locator('.task-title .badge[data-status="completed"]').waitFor({ timeout: WAIT });
    seen.add(
      Number(await page.locator('[data-section="progress"] [data-progress]').getAttribute('data-progress')),
    );
    expect([...seen].some((v) => v > 0 && v < 100)).toBe(true);
    expect(seen.has(100)).toBe(true);
    await page.locator('[data-section="result"]').getByText('"steps": 8').waitFor({ timeout: WAIT });
    // The same document all along: no reload happened.
    expect(await page.evaluate(() => (globalThis as unknown as { loaded?: number }).loaded)).toBe(1);
    await screenshot(page, 'task-1280x800');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'task-390x844');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows streamed text as it arrives, and the resources', async () => {
    const id = await submit(probe('stream_tokens', { tokens: 30, ms: 60 }));
    const { page } = await open(adminToken, `#/tasks/${id}`);
    const stream = page.locator('[data-stream]');
    await stream.waitFor({ timeout: WAIT });
    await page.locator('.task-title .badge[data-status="completed"]').waitFor({ timeout: WAIT });
    await page.waitForFunction(
      (want) => (globalThis as Win).document.querySelector('[data-stream]')?.textContent === want,
      expectedTokens(30),
      { timeout: WAIT },
    );
    await page.locator('[data-section="resources"]').getByText('probe-1').waitFor({ timeout: WAIT });
    await page.close();
  });

  it('cancels a running task from its page', async () => {
    const id = await submit(probe('sleep', { ms: 60_000 }));
    const { page } = await open(adminToken, `#/tasks/${id}`);
    await page.locator('.task-title .badge[data-status="running"]').waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.locator('.toast[data-kind="ok"]').waitFor({ timeout: WAIT });
    await page.locator('.task-title .badge[data-status="cancelled"]').waitFor({ timeout: WAIT });
    expect((await admin.task(id)).body.status).toBe('cancelled');
    await page.close();
  });

  it('retries a failed task: same id, a new attempt, the earlier run in its timeline', async () => {
    const id = await submit(probe('fail', { message: 'boom' }));
    await admin.settled(id);
    const { page } = await open(adminToken, `#/tasks/${id}`);
    await page.locator('.task-title .badge[data-status="failed"]').waitFor({ timeout: WAIT });
    await page.locator('[data-section="error"]').getByText('boom').first().waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.locator('.toast[data-kind="ok"]').getByText('Retry queued').waitFor({ timeout: WAIT });
    // The run that ended is in the timeline, and the new attempt after it (it fails again).
    await page.locator('.tl-item:not(.tl-current)[data-attempt="1"]').waitFor({ timeout: WAIT });
    await page.locator('.tl-current[data-attempt="2"]').waitFor({ timeout: WAIT });
    await page.locator('.task-title .badge[data-status="failed"]').waitFor({ timeout: WAIT });
    const record = (await admin.task(id)).body;
    expect(record.runs).toHaveLength(1);
    await page.close();
  });

  it('filters the table, keeps the filters in the URL and adds new matching tasks live', async () => {
    const name = 'progress_steps';
    const failed = await submit(probe('fail', { message: 'for the filter' }));
    await admin.settled(failed);
    const { page } = await open(adminToken, '#/tasks');
    await page.locator('[data-table="tasks"] tbody tr[data-task-id]').first().waitFor({ timeout: WAIT });
    await page.locator('select[name="status"]').selectOption('failed');
    await page.waitForURL(/#\/tasks\?status=failed$/, { timeout: WAIT });
    await page.locator(`tr[data-task-id="${failed}"]`).waitFor({ timeout: WAIT });
    const statuses = await page
      .locator('[data-table="tasks"] tbody tr[data-task-id]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set(['failed']));
    // A text filter goes in the URL too; a task submitted now appears without a reload.
    await page.locator('select[name="status"]').selectOption('');
    await page.locator('input[name="task_name"]').fill(name);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(new RegExp(`#/tasks\\?task_name=${name}$`), { timeout: WAIT });
    const fresh = await submit(probe(name, { steps: 3, ms: 300 }, { countdown: 1 }));
    await page.locator(`tr[data-task-id="${fresh}"]`).waitFor({ timeout: WAIT });
    await page.locator(`tr[data-task-id="${fresh}"][data-status="completed"]`).waitFor({ timeout: WAIT });
    const names = await page
      .locator('[data-table="tasks"] tbody tr[data-task-id] td:nth-child(2)')
      .allTextContents();
    expect(new Set(names)).toEqual(new Set([name]));
    // A shared link opens the same view.
    const shared = await browser.newPage();
    await shared.goto(`${url}/dashboard/#token=${adminToken}`);
    await shared.locator('[data-who]').waitFor({ timeout: WAIT });
    await shared.evaluate(() => ((globalThis as Win).location.hash = '#/tasks?status=failed'));
    await shared.locator(`tr[data-task-id="${failed}"]`).waitFor({ timeout: WAIT });
    await shared.close();
    await page.close();
  });

  it('renders what a task returns as text: the XSS case shows its characters and runs nothing', async () => {
    const id = await submit(probe('echo', { html: XSS }, { context: { note: XSS } }));
    await admin.settled(id);
    const { page, dialogs } = await open(adminToken, `#/tasks/${id}`);
    await page.locator('[data-section="result"] pre').getByText(XSS).waitFor({ timeout: WAIT });
    expect(await page.locator('[data-section="request"] pre').first().textContent()).toContain(XSS);
    await page.evaluate(() => ((globalThis as Win).location.hash = '#/tasks'));
    await page.locator(`tr[data-task-id="${id}"]`).waitFor({ timeout: WAIT });
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it('a non-admin sees only their own tasks and cannot reach the overview', async () => {
    const alice = uid('alice');
    const bob = uid('bob');
    const aliceApi = api(url, await token(alice));
    const own = await submit(probe('echo', { who: 'alice' }), aliceApi);
    const other = await submit(probe('echo', { who: 'bob' }, { user_id: bob }));
    await admin.settled(own);
    await admin.settled(other);
    const { page } = await open(await token(alice));
    // The link lands on their tasks.
    await page.locator(`tr[data-task-id="${own}"]`).waitFor({ timeout: WAIT });
    expect(await page.locator(`tr[data-task-id="${other}"]`).count()).toBe(0);
    const users = await page.locator('[data-table="tasks"] tbody tr[data-task-id]').count();
    expect(users).toBeGreaterThan(0);
    expect(await page.getByRole('link', { name: 'Overview' }).count()).toBe(0);
    // Typing the overview's address shows why not, and no data.
    await page.evaluate(() => ((globalThis as Win).location.hash = '#/'));
    await page.locator('[data-needs-admin]').waitFor({ timeout: WAIT });
    expect(await page.locator('[data-table="workers"], [data-table="queues"]').count()).toBe(0);
    // Someone else's task reads like a missing one.
    await page.evaluate((id) => ((globalThis as Win).location.hash = `#/tasks/${id}`), other);
    await page.getByText(`No task with id ${other}`).waitFor({ timeout: WAIT });
    await page.close();
  });

  it('lands on the sign-in form with a clear message for an invalid or expired token', async () => {
    const { page } = await open('not-a-jwt');
    await page.locator('[data-sign-in-message]').getByText('not accepted').waitFor({ timeout: WAIT });
    expect(page.url()).not.toContain('not-a-jwt');
    expect(await page.evaluate(() => (globalThis as Win).sessionStorage.getItem('aiecs.token'))).toBeNull();
    await page.close();
    // A token that expires while the page is open: the socket says so and the form comes back.
    // Long enough to sign in on a loaded machine, short enough to wait for.
    const short = await token(uid('brief'), { ttlS: 12 });
    const { page: second } = await open(short);
    await second.locator('[data-who]').waitFor({ timeout: WAIT });
    await second.locator('[data-sign-in-message]').getByText('expired').waitFor({ timeout: WAIT });
    // And the form signs in again with a good token.
    await second.locator('textarea[name="token"]').fill(adminToken);
    await second.getByRole('button', { name: 'Sign in' }).click();
    await second.locator('[data-who]').getByText('ops').waitFor({ timeout: WAIT });
    await second.close();
  });
});
