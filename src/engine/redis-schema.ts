/**
 * The version of the keys aiecs keeps on Redis (heartbeats, limits, the task index, cancels),
 * in one key per prefix. A change to their layout raises it, with what moves the old keys.
 */
import { SchemaTooNewError } from '../core/errors.js';

/** The layout of our keys as this aiecs writes them. */
export const REDIS_SCHEMA_VERSION = 1;

/** The two commands the check needs of an ioredis client. */
export interface SchemaClient {
  set(key: string, value: string, nx: 'NX'): Promise<unknown>;
  get(key: string): Promise<string | null>;
}

export function schemaKey(prefix: string): string {
  return `${prefix}:aiecs:schema`;
}

/**
 * Stamps a prefix without a version (new, or written before versions) with `known`; refuses one
 * that a newer aiecs stamped higher.
 */
export async function checkRedisSchema(
  redis: SchemaClient,
  prefix: string,
  known = REDIS_SCHEMA_VERSION,
): Promise<void> {
  const key = schemaKey(prefix);
  await redis.set(key, String(known), 'NX');
  const version = Number(await redis.get(key));
  if (version > known) throw new SchemaTooNewError(`the Redis prefix ${prefix}`, version, known);
}
