// The durable task history (issue 16, part 2): every state change of every task, written off the
// task's path by the history consumer into PostgreSQL (the store's own database, or
// AIECS_HISTORY_URL beside Redis), queryable per user, task, status and time, surviving the
// queue's data; one active consumer; migrations; an outage of the history database; a gap.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { HistoryDisabledError, SchemaTooNewError } from '../src/core/errors.js';
import type { Logger } from '../src/core/logger.js';
import { silentLogger } from '../src/core/logger.js';
import { enableMetrics } from '../src/core/metrics.js';
import { TaskStatus } from '../src/core/task.js';
import type { Store } from '../src/engine/store.js';
import { HistoryConsumer } from '../src/engine/history/history-consumer.js';
import type { HistoryDb } from '../src/engine/history/history-db.js';
import { historyMigrations, type HistoryRow } from '../src/engine/history/history-db.js';
import { historyTarget } from '../src/engine/history/history-target.js';
import { migrate } from '../src/engine/migrate.js';
import { STORE_KINDS, TestEnv, probe, sleep, until } from './harness.js';

const envs: TestEnv[] = [];
const consumers: HistoryConsumer[] = [];
const dbs: HistoryDb[] = [];
const schemas: string[] = [];
const servers: Server[] = [];

afterEach(async () => {
  await Promise.allSettled(consumers.splice(0).map((c) => c.close()));
  await Promise.allSettled(dbs.splice(0).map((d) => d.close()));
  await Promise.allSettled(envs.splice(0).map((e) => e.cleanup()));
  for (const server of servers.splice(0)) server.close();
  if (schemas.length > 0) {
    const client = new pg.Client({ connectionString: inject('postgresUrl') });
    await client.connect();
    for (const schema of schemas.splice(0)) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
});

/** A deployment with its history on: beside Redis at `historyUrl` (default the test PostgreSQL). */
async function deployment(kind: (typeof STORE_KINDS)[number], historyUrl?: string) {
  const url = historyUrl ?? inject('postgresUrl');
  const env = await TestEnv.create(kind, kind === 'redis' ? { AIECS_HISTORY_URL: url } : {});
  envs.push(env);
  if (kind === 'redis') schemas.push(env.namespace);
  const app = env.app();
  const store = await app.store();
  return { env, app, store };
}

async function historyDb(env: TestEnv, store: Store): Promise<HistoryDb> {
  const target = await historyTarget(env.config, store);
  if (!target.enabled) throw new Error(target.reason);
  dbs.push(target.db);
  return target.db;
}

function consumer(
  store: Store,
  db: HistoryDb,
  options: Partial<ConstructorParameters<typeof HistoryConsumer>[0]> = {},
) {
  const c = new HistoryConsumer({
    store,
    db,
    logger: silentLogger,
    retentionDays: 90,
    flushMs: 50,
    standbyPollMs: 100,
    retryMs: { min: 100, max: 1_000 },
    ...options,
  });
  consumers.push(c);
  return c.start();
}

/** A logger that keeps what it was told. */
function recordingLogger(): { logger: Logger; lines: Array<{ level: string; msg: string; obj: unknown }> } {
  const lines: Array<{ level: string; msg: string; obj: unknown }> = [];
  const at = (level: string) => (obj: unknown, msg?: string) => {
    lines.push({ level, msg: msg ?? String(obj), obj });
  };
  const logger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
  return { logger: logger as unknown as Logger, lines };
}

describe.each(STORE_KINDS)('task history on %s', (kind) => {
  it("records a task's whole life: queued, running, progress, retries, completed, failed, cancelled", async () => {
    const { env, app, store } = await deployment(kind);
    const db = await historyDb(env, store);
    consumer(store, db);
    await env.worker();

    const flaky = await app.executeTask.delay(probe('flaky', { fail_times: 1 }));
    const steps = await app.executeTask.delay(probe('progress_steps', { steps: 3 }));
    const failing = await app.executeTask.delay(probe('fail', { message: 'no luck' }, { userId: 'user-2' }));
    const later = await app.executeTask.delay(probe('echo'), { countdown: 60 });
    await Promise.allSettled([
      flaky.get({ timeout: 20_000 }),
      steps.get({ timeout: 20_000 }),
      failing.get({ timeout: 20_000 }),
    ]);
    await app.cancel(later.id);

    const ended = (id: string) =>
      until(
        async () => {
          const entries = await app.history.task(id);
          const last = entries[entries.length - 1];
          return (
            last &&
            ([TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED] as string[]).includes(
              last.status,
            ) &&
            entries
          );
        },
        20_000,
        `history of ${id}`,
      );

    const f = await ended(flaky.id);
    expect(f.map((e) => [e.kind, e.status, e.attempt])).toEqual([
      ['queued', 'pending', 0],
      ['running', 'running', 1],
      ['progress', 'pending', 1],
      ['running', 'running', 2],
      ['completed', 'completed', 2],
    ]);
    expect(f[2]!.error?.message).toMatch(/attempt 1 failed/);
    expect(f[4]!.result).toEqual({ attempt: 2 });
    for (const e of f) {
      expect(e).toMatchObject({
        user_id: 'user-1',
        task_name: 'flaky',
        mode: 'test',
        service: 'probe',
        step: 0,
      });
      expect(Date.parse(e.at)).toBeGreaterThan(0);
    }
    expect(f.map((e) => e.seq)).toEqual([...f.map((e) => e.seq)].sort((a, b) => a - b));

    const s = await ended(steps.id);
    // A worker writes the latest of its progress steps when one is in flight: some may be left out.
    const reported = s.filter((e) => e.kind === 'progress').map((e) => e.progress);
    expect(reported[reported.length - 1]).toBe(100);
    expect(reported).toEqual([...reported].sort((a, b) => a! - b!));
    expect(s[s.length - 1]!.status).toBe('completed');

    const x = await ended(failing.id);
    expect(x[x.length - 1]).toMatchObject({ kind: 'failed', status: 'failed', user_id: 'user-2' });
    expect(x[x.length - 1]!.error).toEqual({ code: 'E003', message: 'no luck' });

    const c = await ended(later.id);
    expect(c.map((e) => e.status)).toEqual(['pending', 'cancelled']);

    // Per user and per status, newest first.
    const mine = await app.history.list({ user: 'user-2' });
    expect(mine.items.every((e) => e.user_id === 'user-2')).toBe(true);
    expect(mine.items[0]).toMatchObject({ task_id: failing.id, status: 'failed' });
    const completed = await app.history.list({ status: TaskStatus.COMPLETED });
    expect(completed.items.map((e) => e.task_id).sort()).toEqual([flaky.id, steps.id].sort());
  });

  it('keeps an error message PostgreSQL cannot store (a NUL, an unpaired surrogate) and goes on', async () => {
    const { env, app, store } = await deployment(kind);
    const db = await historyDb(env, store);
    consumer(store, db);
    await env.worker();

    // A service's own error text: not checked at submit, and PostgreSQL refuses a NUL in text.
    const odd = await app.executeTask.delay(probe('fail', { message_json: '"bad\\u0000byte \\ud800 end"' }));
    await expect(odd.get({ timeout: 20_000 })).rejects.toThrow();
    expect((await app.getTask(odd.id))?.status).toBe(TaskStatus.FAILED);
    const after = await app.executeTask.delay(probe('echo'));
    await after.get({ timeout: 20_000 });

    // Both histories whole: the odd row did not stop the consumer (it retried its batch forever).
    const last = (id: string) =>
      until(
        async () => {
          const entries = await app.history.task(id);
          const end = entries[entries.length - 1];
          return end && end.status !== TaskStatus.PENDING && end.status !== TaskStatus.RUNNING && end;
        },
        20_000,
        `history of ${id}`,
      );
    expect((await last(odd.id)).error).toEqual({ code: 'E003', message: 'bad\ufffdbyte \ufffd end' });
    expect((await last(after.id)).status).toBe(TaskStatus.COMPLETED);
  });
});

describe('task history beside Redis', () => {
  it('survives a flush of the queue keys', async () => {
    const { env, app, store } = await deployment('redis');
    consumer(store, await historyDb(env, store));
    await env.worker();
    const handles = await Promise.all([1, 2, 3].map((i) => app.executeTask.delay(probe('echo', { i }))));
    await Promise.all(handles.map((h) => h.get({ timeout: 20_000 })));
    await until(async () => (await app.history.list({ status: TaskStatus.COMPLETED })).items.length === 3);

    const redis = new Redis(env.brokerUrl);
    const keys = await redis.keys(`${env.namespace}:*`);
    await redis.del(...keys);
    redis.disconnect();
    expect(await app.getTask(handles[0]!.id)).toBeFalsy();
    const page = await app.history.list({ status: TaskStatus.COMPLETED });
    expect(page.items.map((e) => e.task_id).sort()).toEqual(handles.map((h) => h.id).sort());
    expect((await app.history.task(handles[1]!.id)).map((e) => e.status)).toEqual([
      'pending',
      'running',
      'completed',
    ]);
  });

  it('is off without AIECS_HISTORY_URL: the library says so with HistoryDisabledError', async () => {
    const env = await TestEnv.create('redis');
    envs.push(env);
    const error = await env
      .app()
      .history.list()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HistoryDisabledError);
    expect((error as HistoryDisabledError).code).toBe('HISTORY_DISABLED');
    expect((error as Error).message).toMatch(/AIECS_HISTORY_URL/);
  });

  it('counts and logs a gap when the stream dropped events the consumer had not read', async () => {
    const { env, app, store } = await deployment('redis');
    const db = await historyDb(env, store);
    const metrics = enableMetrics();
    const gaps = async () =>
      (await metrics.registry.getSingleMetric('aiecs_history_gaps_total')!.get()).values
        .filter((v) => v.labels.queue === 'fast_tasks')
        .reduce((n, v) => n + v.value, 0);
    const before = await gaps();
    const first = consumer(store, db);
    await env.worker();
    await (await app.executeTask.delay(probe('echo'))).get({ timeout: 20_000 });
    await until(async () => (await app.history.list()).items.length >= 3);
    await first.close();

    // While no consumer reads, more events come and the stream is trimmed past the position.
    await Promise.all([1, 2, 3].map(async (i) => (await app.executeTask.delay(probe('echo', { i }))).get()));
    const redis = new Redis(env.brokerUrl);
    await redis.xtrim(`${env.namespace}:fast_tasks:events`, 'MAXLEN', 1);
    redis.disconnect();

    const { logger, lines } = recordingLogger();
    consumer(store, db, { logger });
    await until(
      async () => lines.some((l) => l.level === 'warn' && /gap/.test(l.msg)),
      10_000,
      'the gap warning',
    );
    expect(await gaps()).toBe(before + 1);
  });
});

describe('task history beside a restarted event stream', () => {
  it('reads a PostgreSQL store whose event ids started again from the start, counting the gap', async () => {
    const { env, app, store } = await deployment('postgres');
    const db = await historyDb(env, store);
    const metrics = enableMetrics();
    const gaps = async () =>
      (await metrics.registry.getSingleMetric('aiecs_history_gaps_total')!.get()).values.reduce(
        (n, v) => n + v.value,
        0,
      );
    const before = await gaps();
    const first = consumer(store, db);
    await env.worker();
    const old = await Promise.all([1, 2, 3, 4, 5].map((i) => app.executeTask.delay(probe('echo', { i }))));
    await Promise.all(old.map((h) => h.get({ timeout: 20_000 })));
    await until(
      async () => (await app.history.list()).items.filter((e) => e.status === 'completed').length >= 5,
    );
    await first.close();

    // The queue's events emptied and their ids from 1 again (BullMQ's event_seq), as in a recreated
    // schema: the saved position is past them all.
    const schema = store.database!.schema;
    const pool = new pg.Pool({ connectionString: env.brokerUrl, max: 1 });
    try {
      await pool.query(`TRUNCATE "${schema}".event`);
      await pool.query(`ALTER SEQUENCE "${schema}".event_seq RESTART`);
    } finally {
      await pool.end();
    }
    const fresh = await (
      await app.executeTask.delay(probe('echo', { fresh: true }))
    ).get({ timeout: 20_000 });

    const { logger, lines } = recordingLogger();
    consumer(store, db, { logger });
    await until(
      async () => (await app.history.task(fresh.task_id)).some((e) => e.status === 'completed'),
      20_000,
      'the history of the task after the restart',
    );
    // Its rows are new ones, not taken for the old rows under the same event ids.
    expect((await app.history.task(fresh.task_id)).map((e) => e.kind)).toEqual(
      expect.arrayContaining(['queued', 'running', 'completed']),
    );
    expect(lines.some((l) => l.level === 'warn' && /restarted/.test(l.msg))).toBe(true);
    expect(await gaps()).toBe(before + 1);
    // The old tasks' rows are still there.
    for (const h of old) expect((await app.history.task(h.id)).length).toBeGreaterThanOrEqual(3);
  });
});

describe('task history queries', () => {
  it('pages over 10,000 entries per user, status and time range, keyset-stable under inserts', async () => {
    const { env, app, store } = await deployment('postgres');
    const db = await historyDb(env, store);
    await db.ready();
    const t0 = Date.UTC(2026, 0, 1);
    const rows: HistoryRow[] = [];
    for (let i = 0; i < 10_000; i++)
      rows.push(
        bulkRow(i, {
          user_id: i % 2 ? 'odd' : 'even',
          status: i % 5 === 0 ? TaskStatus.FAILED : TaskStatus.COMPLETED,
          at_ms: t0 + Math.floor(i / 3),
        }),
      );
    const session = await db.pool.connect();
    await db.write(session, rows, {});
    session.release();

    const all = async (options: Parameters<typeof app.history.list>[0]) => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await app.history.list({ ...options, limit: 500, ...(cursor ? { cursor } : {}) });
        // Rows added while paging are newer: they never shift the pages still to come.
        if (pages === 1) await db.write(await keep(db), [bulkRow(99_999, { at_ms: Date.now() })], {});
        seen.push(...page.items.map((e) => `${e.task_id}`));
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor);
      return seen;
    };
    const everyone = await all({ until: t0 + 10_000 });
    expect(everyone.length).toBe(10_000);
    expect(new Set(everyone).size).toBe(10_000);
    expect(await all({ user: 'odd', until: t0 + 10_000 })).toHaveLength(5_000);
    expect(await all({ status: TaskStatus.FAILED, until: t0 + 10_000 })).toHaveLength(2_000);
    const range = await all({ since: new Date(t0 + 100), until: t0 + 199 });
    expect(range).toHaveLength(300);
    expect(await app.history.list({ limit: 0 }).catch((e: Error) => e.message)).toMatch(/limit/);
    expect(await app.history.list({ cursor: 'nope' }).catch((e: Error) => e.message)).toMatch(/cursor/);

    // A user's right to erase, and the retention sweep.
    expect((await app.history.erase('odd')).deleted).toBe(5_000);
    expect((await app.history.list({ user: 'odd' })).items).toEqual([]);
    expect(await db.sweep(t0 + 1_000)).toBe(1_500);
    expect((await app.history.list({ until: t0 + 999 })).items).toEqual([]);
  });
});

const kept: Array<Awaited<ReturnType<HistoryDb['pool']['connect']>>> = [];
async function keep(db: HistoryDb) {
  const session = await db.pool.connect();
  kept.push(session);
  return session;
}
afterEach(() => kept.splice(0).forEach((s) => s.release()));

function bulkRow(i: number, over: Partial<HistoryRow>): HistoryRow {
  return {
    queue: 'fast_tasks',
    event_id: `bulk-${i}`,
    task_id: `task-${i}`,
    user_id: 'u',
    task_name: 'echo',
    mode: 'test',
    service: 'probe',
    step: 0,
    kind: 'completed',
    status: TaskStatus.COMPLETED,
    seq: 1_000_001,
    attempt: 1,
    progress: 100,
    message: 'completed',
    result: { i },
    error_code: null,
    error_message: null,
    worker: 'w',
    root_id: null,
    parent_id: null,
    schedule: null,
    at_ms: Date.now(),
    created_at_ms: Date.now(),
    ...over,
  };
}

describe('task history consumers and migrations', () => {
  it('one consumer is active; another takes over when it stops', async () => {
    const { env, store } = await deployment('postgres');
    const db = await historyDb(env, store);
    const a = consumer(store, db);
    await until(async () => a.state === 'active');
    const b = consumer(store, db);
    await until(async () => b.state === 'standby');
    await sleep(300);
    expect(b.state).toBe('standby');
    await a.close();
    await until(async () => b.state === 'active', 10_000, 'the takeover');
  });

  it('migrates fresh and upgrades once; refuses a newer schema', async () => {
    const { env, store } = await deployment('postgres');
    const db = await historyDb(env, store);
    await db.ready();
    const pool = new pg.Pool({ connectionString: env.brokerUrl, max: 2 });
    try {
      const versions = async () =>
        (
          await pool.query(`SELECT version FROM "${env.namespace}".aiecs_history_migrations ORDER BY version`)
        ).rows.map((r) => Number(r.version));
      const known = historyMigrations().map((m) => m.version);
      expect(await versions()).toEqual(known);
      const n = Math.max(...known);
      const next = {
        version: n + 1,
        name: 'test-once',
        sql: 'CREATE TABLE :"schema".aiecs_history_once (n int); INSERT INTO :"schema".aiecs_history_once VALUES (1);',
      };
      const set = { table: 'aiecs_history_migrations' };
      expect(await migrate(pool, env.namespace, [...historyMigrations(), next], set)).toEqual([n + 1]);
      expect(await migrate(pool, env.namespace, [...historyMigrations(), next], set)).toEqual([]);
      // Code that knows only n meets a schema at n + 1.
      const older = await historyTarget(env.config, store);
      if (!older.enabled) throw new Error('history off');
      dbs.push(older.db);
      const error = await older.db.ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaTooNewError);
      expect((error as Error).message).toMatch(/task history in schema/);
    } finally {
      await pool.end();
    }
  });
});

/** A TCP proxy to PostgreSQL that can be stopped (closing every connection and refusing new ones). */
async function stoppableProxy(target: URL): Promise<{ url: string; stop(): void; start(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        {
          const upstream = connect(Number(target.port || 5432), target.hostname);
          sockets.add(client);
          sockets.add(upstream);
          client.pipe(upstream).pipe(client);
          const drop = () => {
            client.destroy();
            upstream.destroy();
            sockets.delete(client);
            sockets.delete(upstream);
          };
          client.on('error', drop).on('close', drop);
          upstream.on('error', drop).on('close', drop);
        }
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port;
        server = s;
        servers.push(s);
        resolve();
      });
    });
  await open();
  const url = new URL(target.href);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.href,
    stop() {
      server?.close();
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    start: open,
  };
}

describe('a history database that is down', () => {
  it('for 30 s under load fails no task and, once back, holds every entry', async () => {
    const proxy = await stoppableProxy(new URL(inject('postgresUrl')));
    const { env, app, store } = await deployment('redis', proxy.url);
    const db = await historyDb(env, store);
    const { logger, lines } = recordingLogger();
    consumer(store, db, { logger });
    await env.worker();
    const handles = [];
    for (let i = 0; i < 20; i++) handles.push(await app.executeTask.delay(probe('echo', { i })));
    await Promise.all(handles.map((h) => h.get({ timeout: 20_000 })));

    proxy.stop();
    // Under load while it is down: a task every 100 ms for 30 s.
    for (let i = 0; i < 300; i++) {
      handles.push(await app.executeTask.delay(probe('echo', { i })));
      await sleep(100);
    }
    const records = await Promise.all(handles.map((h) => h.get({ timeout: 30_000 })));
    expect(records.every((r) => r.status === TaskStatus.COMPLETED)).toBe(true);
    await proxy.start();

    await until(
      async () =>
        (await app.history.list({ status: TaskStatus.COMPLETED, limit: 500 })).items.length ===
        handles.length,
      60_000,
      'every completed entry',
    );
    for (const h of handles.slice(-5))
      expect((await app.history.task(h.id)).map((e) => e.status)).toEqual([
        'pending',
        'running',
        'completed',
      ]);
    const outages = lines.filter((l) => l.level === 'warn' && /unreachable/.test(l.msg));
    expect(outages).toHaveLength(1);
  }, 120_000);
});

describe('task history over HTTP', () => {
  it('GET /api/history, GET /api/tasks/:id/history and DELETE /api/history, with their owners and admins', async () => {
    const { GatewayEnv } = await import('./gateway-harness.js');
    const ge = await GatewayEnv.create('embedded');
    try {
      const store = await ge.main.app.store();
      consumer(store, await historyDb(ge.env, store));
      const alice = await ge.api('alice');
      const bob = await ge.api('bob');
      const admin = await ge.api('root', { admin: true });
      const submitted = await alice.submit({
        task_name: 'echo',
        mode: 'test',
        service: 'probe',
        input_data: {},
      });
      expect(submitted.status).toBe(202);
      const id = submitted.body.task_id as string;
      await alice.settled(id);
      const entries = await until(async () => {
        const res = await alice.get(`/api/tasks/${id}/history`);
        return res.status === 200 && res.body.entries.length === 3 && res.body.entries;
      });
      expect(entries.map((e: { status: string }) => e.status)).toEqual(['pending', 'running', 'completed']);

      // Someone else's task reads as a missing one; an admin reads it.
      expect((await bob.get(`/api/tasks/${id}/history`)).status).toBe(404);
      expect((await admin.get(`/api/tasks/${id}/history`)).body.entries).toHaveLength(3);

      // A non-admin sees their own only; an admin any user's or everyone's.
      expect((await alice.get('/api/history')).body.items).toHaveLength(3);
      expect((await bob.get('/api/history')).body.items).toEqual([]);
      expect((await bob.get('/api/history?user=alice')).status).toBe(403);
      expect((await admin.get('/api/history?user=alice&status=completed')).body.items).toHaveLength(1);
      const bad = await alice.get('/api/history?limit=0&since=yesterday');
      expect(bad.status).toBe(400);
      expect(bad.text).toMatch(/limit/);
      expect(bad.text).toMatch(/since/);

      // Erasure: admins only, naming the user.
      expect((await alice.request('/api/history?user=alice', { method: 'DELETE' })).status).toBe(403);
      expect((await admin.request('/api/history', { method: 'DELETE' })).status).toBe(400);
      const erased = await admin.request('/api/history?user=alice', { method: 'DELETE' });
      expect(erased.body).toEqual({ user: 'alice', deleted: 3 });
      expect((await alice.get('/api/history')).body.items).toEqual([]);
    } finally {
      await Promise.allSettled(consumers.splice(0).map((c) => c.close()));
      await ge.cleanup();
    }
  });

  it('answers 501 HISTORY_DISABLED where the history is off', async () => {
    const { GatewayEnv } = await import('./gateway-harness.js');
    const ge = await GatewayEnv.create('redis', {}, { worker: false });
    try {
      const res = await (await ge.api('alice')).get('/api/history');
      expect(res.status).toBe(501);
      expect(res.body.error.code).toBe('HISTORY_DISABLED');
    } finally {
      await ge.cleanup();
    }
  });
});
