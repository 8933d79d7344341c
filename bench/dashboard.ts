/**
 * The dashboard under fan-out load (issue 13): the tasks table (`#/tasks`, live through
 * `watch_tasks` -> `task_changes`) open in headless Chromium as an admin while `tasks` tasks of the
 * fan-out section's service (STEPS progress steps each, paced) run on the same `aiecs gateway` and
 * `aiecs worker` children.
 *
 * - Event-to-screen latency: a hook installed in the page before its scripts run reads every
 *   `task_changes` frame off the WebSocket and keeps, per task and status, the first change's
 *   `timestamp` (the worker's Date.now() for the event); a MutationObserver then takes, for each
 *   row whose `data-status` becomes that status, performance.timeOrigin + performance.now() minus
 *   that timestamp. Same machine, same clock. The observer runs when the DOM changed, before the
 *   paint that follows in the same frame.
 * - The page's JS heap after the run (CDP Runtime.getHeapUsage), before and after a forced GC.
 * - The gateway's CPU (/proc) per task event (STEPS steps plus the terminal one per task) over the
 *   same fixed window, once with no dashboard open and once with it: the difference is what one
 *   open dashboard costs.
 *
 * Only lost events fail the section: every task of the run must reach the page as completed, and
 * every row on screen must end completed.
 */
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { mintToken } from '../src/gateway/auth.js';
import { launchChromium, requireChromium } from './chromium.js';
import { cpuSeconds, type Child } from './cli-child.js';
import {
  PACED_LEAD_MS,
  PACED_TAIL_MS,
  servicesModule,
  startGatewayAndWorker,
  STEP_INTERVAL_MS,
  STEPS,
  submitBatch,
} from './fanout.js';
import { freePort, makeTempDir, removeTempDir, sleep, stopChild } from './lifecycle.js';
import { summarize, type Summary } from './stats.js';

/** The page `npm run build` makes, and where the bench's gateway (dist-bench/src) looks for it. */
const BUILT_DASHBOARD = fileURLToPath(new URL('../../dist/dashboard/', import.meta.url));
const BENCH_DASHBOARD = fileURLToPath(new URL('../src/dashboard/', import.meta.url));
const BATCH_SIZE = 1_000;
const STOP_GRACE_MS = 20_000;
const WAIT_MS = 60_000;
/** Past the paced tasks' last return: time for the last events to reach the gateway and the page. */
const SETTLE_MS = 3_000;
const WARMUP_STEPS = 5;

/**
 * Installed before the page's own scripts: socket.io (websocket transport only in the dashboard)
 * then sees a WebSocket whose first message listener is ours. Plain script text: it runs in the
 * page, not in Node.
 */
const PAGE_HOOK = `(() => {
  const firstAt = new Map();
  const terminal = new Map();
  const shown = new Set();
  const latencies = [];
  let frames = 0;
  let changes = 0;
  const Native = WebSocket;
  class Hooked extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data !== 'string' || !e.data.startsWith('42')) return;
        let msg;
        try { msg = JSON.parse(e.data.slice(2)); } catch { return; }
        if (!Array.isArray(msg) || msg[0] !== 'task_changes') return;
        frames += 1;
        for (const c of msg[1].changes) {
          changes += 1;
          const key = c.task_id + '|' + c.status;
          if (!firstAt.has(key)) firstAt.set(key, c.timestamp);
          if (c.status === 'completed' || c.status === 'failed' || c.status === 'cancelled')
            terminal.set(c.task_id, c.status);
        }
      });
    }
  }
  globalThis.WebSocket = Hooked;
  const record = (tr) => {
    const id = tr.getAttribute('data-task-id');
    const status = tr.getAttribute('data-status');
    if (!id || !status) return;
    const key = id + '|' + status;
    const at = firstAt.get(key);
    if (at === undefined || shown.has(key)) return;
    shown.add(key);
    latencies.push(performance.timeOrigin + performance.now() - at);
  };
  new MutationObserver((list) => {
    for (const m of list) {
      if (m.type === 'attributes') {
        if (m.target.matches('tr[data-task-id]')) record(m.target);
        continue;
      }
      for (const n of m.addedNodes) {
        if (n.nodeType !== 1) continue;
        if (n.matches('tr[data-task-id]')) record(n);
        else n.querySelectorAll('tr[data-task-id]').forEach(record);
      }
    }
  }).observe(document, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ['data-status', 'data-task-id'],
  });
  globalThis.__bench = {
    read: () => ({ latencies, frames, changes, terminal: [...terminal] }),
  };
})();`;

interface PageFigures {
  latencies: number[];
  frames: number;
  changes: number;
  terminal: Array<[string, string]>;
}

export interface DashboardResult {
  tasks: number;
  steps: number;
  /** Task events per run: STEPS steps plus the terminal one, per task. */
  events: number;
  /** Row status changes measured on screen. */
  samples: number;
  latency: (Summary & { max: number }) | undefined;
  /** task_changes frames and the changes in them that reached the page. */
  frames: number;
  changes: number;
  heapUsedMb: number;
  heapUsedAfterGcMb: number;
  gatewayCpuUsPerEventNone: number;
  gatewayCpuUsPerEventOne: number;
  gatewayCpuUsPerEventExtra: number;
  /** Tasks of the run the page never saw completed, and rows on screen not completed at the end. */
  lostTasks: number;
  rowsNotCompleted: number;
  rowsShown: number;
}

/** Why the run is a failure regardless of its speed: events the page never showed. */
export function dashboardProblems(r: DashboardResult): string[] {
  const problems: string[] = [];
  if (r.lostTasks > 0) problems.push(`${r.lostTasks} task(s) never reached the page as completed`);
  if (r.rowsNotCompleted > 0) problems.push(`${r.rowsNotCompleted} row(s) on screen not shown completed`);
  if (r.rowsShown === 0) problems.push('the tasks table showed no rows');
  return problems;
}

/** Submits `users.length` paced tasks; returns their ids. */
async function submitAll(url: string, adminToken: string, users: string[], steps: number): Promise<string[]> {
  const list = users.map((user) => ({ user, taskId: undefined as string | undefined }));
  const startAt = Date.now() + PACED_LEAD_MS;
  for (let i = 0; i < list.length; i += BATCH_SIZE) {
    await submitBatch(url, adminToken, list.slice(i, i + BATCH_SIZE), 'paced', startAt, steps);
  }
  return list.map((c) => c.taskId ?? '');
}

/** One batch over a fixed window; returns the gateway's CPU seconds over it. */
async function timedBatch(
  url: string,
  adminToken: string,
  users: string[],
  steps: number,
  gatewayPid: number,
): Promise<{ cpuS: number; ids: string[] }> {
  const before = cpuSeconds(gatewayPid);
  const started = performance.now();
  const ids = await submitAll(url, adminToken, users, steps);
  // The same window for both runs, from the first submission: lead, steps, tail and settling.
  const windowMs = PACED_LEAD_MS + (steps + 1) * STEP_INTERVAL_MS.paced + PACED_TAIL_MS + SETTLE_MS;
  await sleep(Math.max(0, windowMs - (performance.now() - started)));
  return { cpuS: cpuSeconds(gatewayPid) - before, ids };
}

export async function dashboard(
  redisUrl: string,
  tasks: number,
  log: (line: string) => void,
): Promise<DashboardResult> {
  requireChromium();
  if (!existsSync(join(BUILT_DASHBOARD, 'index.html')))
    throw new Error(`no built dashboard at ${BUILT_DASHBOARD}: npm run build`);
  // The bench's gateway serves the page from beside its own code (dist-bench/src/dashboard), where
  // the bench's build copies only src/dashboard's unbuilt assets: the built page goes over them.
  cpSync(BUILT_DASHBOARD, BENCH_DASHBOARD, { recursive: true, force: true });
  const dir = makeTempDir('dashboard');
  const services = join(dir, 'fanout-services.mjs');
  writeFileSync(services, servicesModule());
  const store = ['--broker', redisUrl, '--namespace', `bench_dashboard_${process.pid}`];
  const secret = randomBytes(32).toString('hex');
  const port = await freePort();
  let gateway: Child | undefined;
  let worker: Child | undefined;
  let browser: Browser | undefined;
  try {
    [gateway, worker] = await startGatewayAndWorker(store, port, services, secret, tasks);
    const url = `http://127.0.0.1:${port}`;
    const gatewayPid = gateway.process.pid as number;
    log(`  gateway ${url} (pid ${gatewayPid}), worker pid ${worker.process.pid}`);
    const adminToken = await mintToken(secret, 'bench-admin', { admin: true });
    const users = Array.from({ length: tasks }, (_, i) => `dashboard-user-${i % 50}`);
    const events = tasks * (STEPS + 1);

    // Unmeasured: warms the processes (JIT, connections) for both measured runs alike.
    await timedBatch(url, adminToken, users, WARMUP_STEPS, gatewayPid);
    const none = await timedBatch(url, adminToken, users, STEPS, gatewayPid);
    log(`  no dashboard: gateway ${(none.cpuS * 1000).toFixed(0)} ms CPU for ${events} events`);

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.addInitScript({ content: PAGE_HOOK });
    await page.goto(`${url}/dashboard/#token=${adminToken}`);
    await page.locator('[data-who]').first().waitFor({ timeout: WAIT_MS });
    await page.evaluate('location.hash = "#/tasks"');
    await page.locator('[data-table="tasks"] tbody tr[data-task-id]').first().waitFor({ timeout: WAIT_MS });
    await page.locator('.dot-connected').waitFor({ timeout: WAIT_MS });
    // The watch starts with the table; give its subscription a moment before the events begin.
    await sleep(500);

    const one = await timedBatch(url, adminToken, users, STEPS, gatewayPid);
    log(`  one dashboard: gateway ${(one.cpuS * 1000).toFixed(0)} ms CPU for ${events} events`);
    const read = () => page.evaluate('globalThis.__bench.read()') as Promise<PageFigures>;
    // Past the window, wait (unmeasured) for late events before calling any lost.
    const ids = new Set(one.ids);
    const completedOnPage = (f: PageFigures) =>
      f.terminal.filter(([id, status]) => ids.has(id) && status === 'completed').length;
    const deadline = Date.now() + WAIT_MS;
    let figures = await read();
    while (completedOnPage(figures) < ids.size && Date.now() < deadline) {
      await sleep(500);
      figures = await read();
    }
    await sleep(500);
    figures = await read();
    const rows = (await page.evaluate(
      `[...document.querySelectorAll('[data-table="tasks"] tbody tr[data-task-id]')].map((tr) => tr.getAttribute('data-status'))`,
    )) as string[];

    const cdp = await page.context().newCDPSession(page);
    const heap = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
    await cdp.send('HeapProfiler.collectGarbage');
    const heapAfterGc = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
    if (pageErrors.length) log(`  page errors: ${pageErrors.slice(0, 5).join('; ')}`);

    const { latencies } = figures;
    const perEvent = (cpuS: number) => (cpuS * 1e6) / events;
    const result: DashboardResult = {
      tasks,
      steps: STEPS,
      events,
      samples: latencies.length,
      latency: latencies.length
        ? { ...summarize(latencies), max: latencies.reduce((a, b) => Math.max(a, b)) }
        : undefined,
      frames: figures.frames,
      changes: figures.changes,
      heapUsedMb: heap.usedSize / 2 ** 20,
      heapUsedAfterGcMb: heapAfterGc.usedSize / 2 ** 20,
      gatewayCpuUsPerEventNone: perEvent(none.cpuS),
      gatewayCpuUsPerEventOne: perEvent(one.cpuS),
      gatewayCpuUsPerEventExtra: perEvent(one.cpuS - none.cpuS),
      lostTasks: ids.size - completedOnPage(figures),
      rowsNotCompleted: rows.filter((s) => s !== 'completed').length,
      rowsShown: rows.length,
    };
    log(
      `  page: ${result.samples} row status changes on screen, latency p50 ${result.latency?.p50.toFixed(1) ?? '-'} ms,` +
        ` p99 ${result.latency?.p99.toFixed(1) ?? '-'} ms, max ${result.latency?.max.toFixed(1) ?? '-'} ms;` +
        ` ${result.frames} task_changes frames with ${result.changes} changes; JS heap ${result.heapUsedMb.toFixed(1)} MB` +
        ` (${result.heapUsedAfterGcMb.toFixed(1)} MB after GC); ${result.rowsShown} rows shown`,
    );
    return result;
  } finally {
    await browser?.close();
    await Promise.all([
      gateway ? stopChild(gateway.process, STOP_GRACE_MS) : undefined,
      worker ? stopChild(worker.process, STOP_GRACE_MS) : undefined,
    ]);
    removeTempDir(dir);
  }
}
