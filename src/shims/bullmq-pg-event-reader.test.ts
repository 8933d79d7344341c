import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createPostgresBackend } from '../engine/bullmq.js';
import type { PgEventBackend } from './bullmq-pg-event-reader.js';
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
 * query/waitForEvent/waitUntilReady still mean what the reader assumes, and does fetchEvents
 * still build the fields the reader's fieldsOf builds? Then update the pins, or delete the shim.
 */
describe('the PostgreSQL event reader shim pins BullMQ', () => {
  const method = (name: string) => (PostgresQueueBackend.prototype as Record<string, unknown>)[name];

  it('is written against bullmq 6.7.0', () => {
    expect(installedVersion('bullmq')).toBe('6.7.0');
  });

  it('the methods it replaces, wraps or calls are the ones it was written against', () => {
    const pinned: Record<string, string> = {
      readEvents: '78a2fa43777eadb18da9fd42270c6a2f6afec2c6c3fb19aa496500c3426d76a8',
      fetchEvents: '439da533cf7cb765b0dc62750c9f9b54d85bc7285671dbf38f7429cdf78168c5',
      waitForEvent: '380fbd1e5a40c516633d51ab60ca7d65770d826375a3980ce9da7ddd2e8fbccc',
      waitUntilReady: '14e3f700ae859bb6fcde98953c9d2473a23cb3e827bea36727773d153cca94b9',
      query: 'faba253f1104463f5a24ca5181b5930442d8329ad4404f94e21e27b6276ecd47',
    };
    for (const [name, hash] of Object.entries(pinned))
      expect({ name, hash: sourceHash(method(name)) }).toEqual({ name, hash });
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
