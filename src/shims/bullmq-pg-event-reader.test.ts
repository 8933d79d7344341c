import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createPostgresBackend } from '../engine/bullmq.js';
import { GapAwareReader, type PgEventBackend } from './bullmq-pg-event-reader.js';
import { installedVersion, sha256, sourceHash } from './test-pins.js';

const require = createRequire(import.meta.url);
type SqlScripts = { SQL_COMMANDS: Record<string, string>; SQL_MIGRATIONS: Record<string, string> };
const sql = require('bullmq/dist/cjs/postgres/sql-scripts.js') as SqlScripts;
const { PostgresQueueBackend } = require('bullmq') as { PostgresQueueBackend: { prototype: object } };

/**
 * Pins what bullmq-pg-event-reader.ts relies on in BullMQ's PostgreSQL backend. If this fails
 * after an upgrade, read the new backend (postgres/postgres-queue-backend.js) and its SQL: does
 * publish_event still take ids from one sequence for every queue, with the NOTIFY try-lock? Is
 * readEvents still a plain `id > cursor` read (the event gap of docs/upstream.md)? Do
 * query/waitUntilReady/ensureListeningEvents/ensureListening still mean what the reader assumes,
 * do disconnect, close and a rebuilt LISTEN client still end a wait through cancelEventWait, and
 * does fetchEvents still build the fields the reader's fieldsOf builds? Then update the pins, or
 * delete the shim.
 */
describe('the PostgreSQL event reader shim pins BullMQ', () => {
  const method = (name: string) => (PostgresQueueBackend.prototype as Record<string, unknown>)[name];

  it('is written against bullmq 6.7.6', () => {
    expect(installedVersion('bullmq')).toBe('6.7.6');
  });

  it('the methods it replaces, wraps or calls are the ones it was written against', () => {
    const pinned: Record<string, string> = {
      readEvents: '78a2fa43777eadb18da9fd42270c6a2f6afec2c6c3fb19aa496500c3426d76a8',
      fetchEvents: '439da533cf7cb765b0dc62750c9f9b54d85bc7285671dbf38f7429cdf78168c5',
      waitUntilReady: '14e3f700ae859bb6fcde98953c9d2473a23cb3e827bea36727773d153cca94b9',
      query: 'faba253f1104463f5a24ca5181b5930442d8329ad4404f94e21e27b6276ecd47',
      ensureListeningEvents: '86aabc22674f47ff5f594b60f4ec6191d8677057a161cc193912ba9d192935ca',
      ensureListening: '97a0d77d734e314753aa66b3008012f7c88f32aeba0ae5ca69eab463efac49d8',
      // Both end a wait through cancelEventWait, which the reader sets.
      disconnect: '5ea5926fc0e4dba23b700fed65849a51c3ac4aef8086a3206b1a13550bd5c2ae',
      close: 'e725b79e7769005616afbe769ee73b4889e6413ca399201e7a785c4d8077a314',
    };
    for (const [name, hash] of Object.entries(pinned))
      expect({ name, hash: sourceHash(method(name)) }).toEqual({ name, hash });
    // A rebuilt LISTEN client ends the current wait too, and the reader listens on the new one.
    const backendClass = String(PostgresQueueBackend);
    expect(backendClass).toContain("this.connection.on('listenerinvalidated', () => {");
    expect(backendClass).toContain(
      '(_b = this.cancelEventWait) === null || _b === void 0 ? void 0 : _b.call(this);',
    );
  });

  it('notifies on the channels the reader listens to, with the queue as payload', () => {
    const channels = PostgresQueueBackend as unknown as { EVENTS_CHANNEL: string; NOTIFY_CHANNEL: string };
    expect([channels.EVENTS_CHANNEL, channels.NOTIFY_CHANNEL]).toEqual(['bullmq_events', 'bullmq_jobs']);
    // add_jobs_bulk writes events but announces them on the jobs channel only (wakeOnJobs).
    const bulk = /CREATE FUNCTION add_jobs_bulk\([\s\S]*?\$\$;/.exec(
      sql.SQL_MIGRATIONS['0002_functions.sql']!,
    )?.[0];
    expect(bulk).toContain('INSERT INTO event');
    expect(bulk).toContain("PERFORM pg_notify('bullmq_jobs', p_queue);");
    expect(bulk).not.toContain('bullmq_events');
  });

  it('events are read by id from one table whose ids come from one sequence', () => {
    expect(sha256(sql.SQL_COMMANDS['read_events.sql']!)).toBe(
      'f061aa7076bf415087dd1afef339da687f9fb4280ef80210d5a590c8cd819d90',
    );
    expect(sha256(sql.SQL_COMMANDS['read_events_max.sql']!)).toBe(
      '7a58fe6ec2e78292d6826e759bd81598cf66551372e20d502bec25b7e58154a9',
    );
    const schema = sql.SQL_MIGRATIONS['0001_schema.sql']!;
    expect(schema).toContain("id            bigint NOT NULL DEFAULT nextval('event_seq'),");
    const publish = /CREATE FUNCTION publish_event\([\s\S]*?\$\$;/.exec(
      sql.SQL_MIGRATIONS['0002_functions.sql']!,
    );
    expect(sha256(publish?.[0] ?? '')).toBe(
      '35d17bc74c97faa25592480767c29d81dbde93995d0d7cc9442882996eb64854',
    );
    // No later migration redefines the function or the table.
    const later = Object.entries(sql.SQL_MIGRATIONS).filter(([name]) => Number(name.slice(0, 4)) > 2);
    for (const [name, text] of later)
      expect({ name, touches: /FUNCTION publish_event|SEQUENCE event_seq|TABLE event\b/.test(text) }).toEqual(
        {
          name,
          touches: false,
        },
      );
  });

  it('a backend has the fields the reader reads', async () => {
    // Never connects: the backend's pool is lazy, and it is closed unused.
    const backend = createPostgresBackend(
      'pinned',
      { connection: { connectionString: 'postgres://pinned@127.0.0.1:1/none', schema: 'pinned' } } as never,
      {} as never,
    ) as unknown as PgEventBackend;
    try {
      expect(backend.queueName).toBe('pinned');
      expect(backend.closing).toBeFalsy();
      expect(typeof backend.connection).toBe('object');
      const getter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(backend.connection), 'isClosing');
      expect(typeof getter?.get).toBe('function');
    } finally {
      await (backend as unknown as { close(): Promise<void> }).close();
    }
  });
});

/** A backend that serves `rows` by id and hands out one LISTEN client; it counts reads. */
class FakeBackend {
  readonly queueName = 'fast_tasks';
  closing = false;
  readonly connection = { isClosing: false };
  readonly client = new EventEmitter();
  readonly rows: Array<{ id: number; queue: string; event: string; data: Record<string, unknown> }> = [];
  reads = 0;
  /** Runs after a read took its rows, as a commit and its NOTIFY landing mid-read would. */
  afterRead: (() => void) | undefined;
  cancelEventWait: (() => void) | undefined;

  async query(text: string, params: unknown[]) {
    if (text.includes('MAX(id)')) return { rows: [{ id: 0, queue: '', event: '', data: null }] };
    this.reads += 1;
    const cursor = Number(params[1]);
    const rows = this.rows.filter((r) => r.id > cursor);
    const after = this.afterRead;
    this.afterRead = undefined;
    after?.();
    return { rows };
  }
  async ensureListeningEvents() {
    return this.client;
  }
  async ensureListening() {
    return this.client;
  }
  readEvents(): Promise<unknown> {
    throw new Error('replaced');
  }
  async waitUntilReady() {
    return undefined;
  }
  publish(event: string, channel = 'bullmq_events', queue = 'fast_tasks'): void {
    this.rows.push({ id: this.rows.length + 1, queue, event, data: {} });
    this.client.emit('notification', { channel, payload: queue });
  }
}

/** Lets pending promises and I/O callbacks run: a read that can go on, has. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A read that never ends on its own within a test: only a NOTIFY or a cancel ends its wait. */
const HOUR = 3_600_000;

function startRead(reader: GapAwareReader) {
  const state: { done: boolean; events: string[] | null } = { done: false, events: null };
  const promise = reader.read(HOUR).then((reply) => {
    state.done = true;
    state.events = reply ? reply[0][1].map(([, fields]) => fields[1]!) : null;
  });
  return { state, promise };
}

describe('the PostgreSQL event reader waits for NOTIFYs', () => {
  const options = { queues: ['fast_tasks', 'heavy_tasks'], idlePollMs: HOUR };

  it('an idle reader reads nothing until a NOTIFY for its queue, then reads it', async () => {
    const backend = new FakeBackend();
    const reader = new GapAwareReader(backend as unknown as PgEventBackend, options);
    await reader.start();
    const { state, promise } = startRead(reader);
    await settle();
    expect({ done: state.done, reads: backend.reads }).toEqual({ done: false, reads: 1 });
    backend.publish('marker', 'bullmq_events', 'heavy_tasks');
    await settle();
    expect(state.done).toBe(false);
    backend.publish('waiting');
    await promise;
    expect(state.events).toEqual(['waiting']);
    expect(backend.reads).toBe(2);
  });

  it('a NOTIFY that lands while it reads ends the next wait at once', async () => {
    const backend = new FakeBackend();
    const reader = new GapAwareReader(backend as unknown as PgEventBackend, options);
    await reader.start();
    // The read's snapshot misses the event; its NOTIFY arrives before the reader waits.
    backend.afterRead = () => backend.publish('completed');
    const { state, promise } = startRead(reader);
    await promise;
    expect(state.events).toEqual(['completed']);
  });

  it('wakes on the jobs channel only when told to (add_jobs_bulk announces its events there)', async () => {
    for (const wakeOnJobs of [false, true]) {
      const backend = new FakeBackend();
      const reader = new GapAwareReader(backend as unknown as PgEventBackend, { ...options, wakeOnJobs });
      await reader.start();
      const { state, promise } = startRead(reader);
      await settle();
      backend.publish('added', 'bullmq_jobs');
      await settle();
      expect({ wakeOnJobs, done: state.done }).toEqual({ wakeOnJobs, done: wakeOnJobs });
      backend.cancelEventWait?.();
      await promise;
    }
  });

  it('the backend ends its wait through cancelEventWait (close, disconnect, a rebuilt client)', async () => {
    const backend = new FakeBackend();
    const reader = new GapAwareReader(backend as unknown as PgEventBackend, options);
    await reader.start();
    const { state, promise } = startRead(reader);
    await settle();
    expect(typeof backend.cancelEventWait).toBe('function');
    backend.closing = true;
    backend.cancelEventWait!();
    await promise;
    expect(state.events).toBeNull();
    expect(backend.cancelEventWait).toBeUndefined();
    expect(backend.client.listenerCount('notification')).toBe(0);
  });
});
