import { afterEach, describe, expect, it, vi } from 'vitest';
import { cliEnv } from './cli-child.js';

describe('cliEnv', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('keeps the broker, services and the dropped names of our environment from a child', () => {
    vi.stubEnv('AIECS_BROKER_URL', 'redis://elsewhere:6379');
    vi.stubEnv('REDIS_URL', 'redis://elsewhere:6379');
    vi.stubEnv('AIECS_SERVICES', '/tmp/services.mjs');
    vi.stubEnv('OPENAI_ORG_ID', 'org');
    vi.stubEnv('AIECS_LOG_LEVEL', 'debug');
    const env = cliEnv({ OPENAI_API_KEY: 'bench' }, ['OPENAI_ORG_ID']);
    expect(env).not.toHaveProperty('AIECS_BROKER_URL');
    expect(env).not.toHaveProperty('REDIS_URL');
    expect(env).not.toHaveProperty('AIECS_SERVICES');
    expect(env).not.toHaveProperty('OPENAI_ORG_ID');
    expect(env).toMatchObject({ AIECS_LOG_LEVEL: 'warn', AIECS_HOST: '127.0.0.1', OPENAI_API_KEY: 'bench' });
    expect(env.PATH).toBe(process.env.PATH);
  });
});
