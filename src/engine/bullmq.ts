import { createRequire } from 'node:module';
import type * as BullMQ from 'bullmq';
import type * as IORedis from 'ioredis';

/*
 * BullMQ and ioredis, loaded with require rather than import. Both are CommonJS: an ESM import
 * makes Node scan every file BullMQ re-exports (about 170) for export names, which allocated
 * ~4 MB at start-up and left an idle worker ~5 MB larger (median RSS 80 -> 74 MB over 20 starts).
 * Types still come from the packages (`import type`); values used by library code come from here.
 */
const require = createRequire(import.meta.url);
const bullmq = require('bullmq') as typeof BullMQ;

export const {
  FlowProducer,
  Job,
  Queue,
  QueueEvents,
  QueueEventsProducer,
  Worker,
  UnrecoverableError,
  DelayedError,
  WaitingError,
  createPostgresBackend,
  quoteSchemaName,
  runMigrations,
  DEFAULT_SCHEMA,
} = bullmq;

export const { Redis } = require('ioredis') as typeof IORedis;
