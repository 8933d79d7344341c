// How the task history's batches go in (src/engine/history/history-db.ts): by COPY on a
// node-postgres session, by an INSERT from one array per column on PGlite; every field comes back
// as written (text that COPY has to escape, JSON results, nulls), and a batch written again (or
// one that overlaps rows already there) adds only what is new, with its positions.
import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterEach, describe, expect, it, inject } from 'vitest';
import { TaskStatus } from '../src/core/task.js';
import { HistoryDb, type HistoryRow } from '../src/engine/history/history-db.js';
import { createPglitePool } from '../src/engine/pglite-pool.js';
import type { SqlPool } from '../src/engine/store.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const KINDS = ['postgres', 'pglite'] as const;

/** A history database of the kind, in a schema of its own, dropped after the test. */
async function historyDb(kind: (typeof KINDS)[number]): Promise<HistoryDb> {
  const schema = `hw_${randomUUID().slice(0, 8)}`;
  if (kind === 'postgres') {
    const url = inject('postgresUrl');
    const db = HistoryDb.atUrl(url, schema, 10_000);
    cleanups.push(async () => {
      await db.close();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    });
    await db.ready();
    return db;
  }
  const pglite = await PGlite.create();
  cleanups.push(() => pglite.close());
  const db = HistoryDb.onPool(createPglitePool(pglite) as unknown as SqlPool, schema, 'memory');
  await db.ready();
  return db;
}

async function write(db: HistoryDb, rows: HistoryRow[], positions: Record<string, string> = {}) {
  const session = await db.pool.connect();
  try {
    return await db.write(session, rows, positions);
  } finally {
    session.release();
  }
}

async function positions(db: HistoryDb): Promise<Map<string, string>> {
  const session = await db.pool.connect();
  try {
    return await db.positions(session);
  } finally {
    session.release();
  }
}

function row(taskId: string, eventId: string, over: Partial<HistoryRow> = {}): HistoryRow {
  return {
    queue: 'fast_tasks',
    event_id: eventId,
    task_id: taskId,
    user_id: 'u',
    task_name: 'echo',
    mode: 'test',
    service: 'probe',
    step: 0,
    kind: 'running',
    status: TaskStatus.RUNNING,
    seq: 1_000_000,
    attempt: 1,
    progress: 0,
    message: 'started',
    result: null,
    error_code: null,
    error_message: null,
    worker: 'w',
    root_id: null,
    parent_id: null,
    schedule: null,
    at_ms: 1_767_225_600_000,
    created_at_ms: 1_767_225_599_000,
    ...over,
  };
}

describe.each(KINDS)('history batches on %s', (kind) => {
  it('keep every field as written, text COPY escapes and JSON results included', async () => {
    const db = await historyDb(kind);
    const odd = 'tab\there, newline\nthere, cr\r, backslash \\ and \\N, "quotes", ünïcödé ✓';
    const rows = [
      row('t1', '1-0', {
        user_id: `user ${odd}`,
        task_name: odd,
        mode: null,
        service: null,
        step: null,
        kind: 'queued',
        status: TaskStatus.PENDING,
        seq: 0,
        attempt: 0,
        message: '',
        worker: null,
        created_at_ms: null,
      }),
      row('t1', '1-1', {
        user_id: `user ${odd}`,
        task_name: odd,
        mode: null,
        service: null,
        step: null,
        kind: 'progress',
        seq: 1_000_001.5,
        progress: 42.5,
        message: odd,
        worker: `worker ${odd}`,
        error_code: 'E003',
        error_message: odd,
        root_id: 'root\\1',
        parent_id: 'parent\t1',
        schedule: 'nightly\n',
        created_at_ms: null,
      }),
      row('t1', '1-2', {
        user_id: `user ${odd}`,
        task_name: odd,
        mode: null,
        service: null,
        step: null,
        kind: 'completed',
        status: TaskStatus.COMPLETED,
        progress: Number.NaN,
        result: { text: odd, list: [1, 'two\\', null], nested: { quote: '"\\"' } },
        created_at_ms: null,
      }),
    ];
    await write(db, rows, { fast_tasks: '1-2' });
    const entries = await db.task('t1', 10);
    expect(entries.map((e) => e.kind)).toEqual(['queued', 'progress', 'completed']);
    for (const entry of entries) {
      expect(entry).toMatchObject({
        user_id: `user ${odd}`,
        task_name: odd,
        mode: null,
        service: null,
        step: null,
        created_at: null,
      });
    }
    expect(entries[0]).toMatchObject({ message: '', worker: null, seq: 0, attempt: 0 });
    expect(entries[1]).toMatchObject({
      message: odd,
      worker: `worker ${odd}`,
      seq: 1_000_001.5,
      progress: 42.5,
      error: { code: 'E003', message: odd },
      root_id: 'root\\1',
      parent_id: 'parent\t1',
      schedule: 'nightly\n',
    });
    // A number JSON cannot hold is null, as it was when the rows went in as JSON.
    expect(entries[2]).toMatchObject({
      progress: null,
      result: { text: odd, list: [1, 'two\\', null], nested: { quote: '"\\"' } },
    });
    expect(await positions(db)).toEqual(new Map([['fast_tasks', '1-2']]));
  });

  it('write text PostgreSQL refuses (a NUL, an unpaired surrogate) as U+FFFD', async () => {
    const db = await historyDb(kind);
    const bad = 'nul \u0000 lone \ud800 pair \ud83d\ude00 tab\t';
    const fine = 'nul \ufffd lone \ufffd pair \ud83d\ude00 tab\t';
    await write(
      db,
      [
        row('t1', '1-0', { message: bad, error_code: 'E003', error_message: bad, worker: bad }),
        row('t1', '1-1', {
          kind: 'completed',
          status: TaskStatus.COMPLETED,
          result: { text: bad, [bad]: [bad], escaped: 'a backslash, then u0000: \\u0000' },
        }),
      ],
      { fast_tasks: '1-1' },
    );
    const [first, second] = await db.task('t1', 10);
    expect(first).toMatchObject({ message: fine, worker: fine, error: { code: 'E003', message: fine } });
    expect(second!.result).toEqual({
      text: fine,
      [fine]: [fine],
      escaped: 'a backslash, then u0000: \\u0000',
    });
  });

  it('leave out a row the database refuses as data, write the rest and the positions, and say which', async () => {
    const db = await historyDb(kind);
    // step is an integer column: 3e9 is out of its range (SQLSTATE 22003), as any value it cannot store.
    const refusedRow = row('b', '1-1', { step: 3e9 });
    const refused = await write(db, [row('a', '1-0'), refusedRow, row('c', '1-2')], { fast_tasks: '1-2' });
    expect(refused).toEqual([refusedRow]);
    const items = (await db.list({}, 100)).items;
    expect(items.map((e) => e.task_id).sort()).toEqual(['a', 'c']);
    expect(await positions(db)).toEqual(new Map([['fast_tasks', '1-2']]));
    // Read again (the positions saved before a restart): nothing twice, the refused row again out.
    expect(await write(db, [row('a', '1-0'), refusedRow, row('c', '1-2')], { fast_tasks: '1-2' })).toEqual([
      refusedRow,
    ]);
    expect((await db.list({}, 100)).items).toHaveLength(2);
  });

  it('adds nothing for a batch written again, and only the new rows of one that overlaps', async () => {
    const db = await historyDb(kind);
    const first = [row('a', '1-0'), row('b', '1-1'), row('c', '1-2')];
    await write(db, first, { fast_tasks: '1-2' });
    await write(db, first, { fast_tasks: '1-2' });
    expect((await db.list({}, 100)).items).toHaveLength(3);
    // Two rows written before, two new (the same event id on another queue is another event).
    const overlapping = [
      row('b', '1-1'),
      row('c', '1-2'),
      row('d', '1-3', { message: 'new' }),
      row('e', '1-2', { queue: 'heavy_tasks', message: 'other queue' }),
    ];
    await write(db, overlapping, { fast_tasks: '1-3', heavy_tasks: '1-2' });
    const items = (await db.list({}, 100)).items;
    expect(items.map((e) => e.task_id).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(items.find((e) => e.task_id === 'e')).toMatchObject({
      queue: 'heavy_tasks',
      message: 'other queue',
    });
    expect(await positions(db)).toEqual(
      new Map([
        ['fast_tasks', '1-3'],
        ['heavy_tasks', '1-2'],
      ]),
    );
  });
});
