/**
 * The built `aiecs token` and `aiecs gateway` against the token settings: minted tokens pass the
 * gateway's checks, a --ttl over AIECS_JWT_MAX_TTL is refused, and a JWKS gateway without
 * audience or issuer says so when it starts. Needs `npm run build` first (the test script does that).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { authOptions, createVerifier } from '../gateway/auth.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../dist/cli/main.js');
const SECRET = 'token-cli-test-secret-0123456789abcdef';

let cwd: string;

/** The caller's environment without any auth, store or log settings, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env))
    if (!/^(AIECS_|CELERY_|REDIS_URL$|PORT$)/.test(name)) env[name] = value;
  return { ...env, AIECS_BROKER_URL: `embedded:${join(cwd, 'store')}`, ...extra };
}

function aiecs(args: string[], extra: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd, env: cleanEnv(extra), timeout: 30_000 },
      (error, stdout, stderr) =>
        done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

/** Starts `aiecs gateway` on port 0, returns what it printed once it listens, and stops it. */
async function gatewayStart(extra: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const broker = ['--broker', inject('redisUrl'), '--namespace', `tok_${process.pid}`];
  const child = spawn(process.execPath, [MAIN, 'gateway', ...broker, '--port', '0'], {
    cwd,
    env: cleanEnv({ AIECS_LOG_LEVEL: 'warn', ...extra }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close': the process has exited and both pipes are drained, so nothing it wrote is missed.
  const closed = new Promise((done) => child.once('close', done));
  try {
    for (let i = 0; i < 600 && !stdout.includes('\n') && child.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 50));
  } finally {
    child.kill('SIGTERM');
    await closed;
  }
  expect(stdout, stderr).toMatch(/^aiecs gateway: http:\/\//);
  return { stdout, stderr };
}

/** The lines that mention AIECS_JWKS_URL. */
const jwksLines = (text: string) => text.split('\n').filter((l) => l.includes('AIECS_JWKS_URL'));

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing; run \`npm run build\` first`);
  cwd = mkdtempSync(join(tmpdir(), 'aiecs-token-test-'));
});

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
});

describe('aiecs token', () => {
  it('refuses a --ttl over AIECS_JWT_MAX_TTL with one line and exit 2', async () => {
    const overDefault = await aiecs(['token', '--user', 'u', '--ttl', '48h'], { AIECS_JWT_SECRET: SECRET });
    expect(overDefault.code).toBe(2);
    expect(overDefault.stdout).toBe('');
    expect(overDefault.stderr).toBe(
      'aiecs: --ttl 48h exceeds AIECS_JWT_MAX_TTL (24 h); the gateway would refuse the token\n',
    );
    const overSet = await aiecs(['token', '--user', 'u', '--ttl', '2h'], {
      AIECS_JWT_SECRET: SECRET,
      AIECS_JWT_MAX_TTL: '90m',
    });
    expect(overSet.code).toBe(2);
    expect(overSet.stderr).toMatch(/^aiecs: --ttl 2h exceeds AIECS_JWT_MAX_TTL \(90 min\)/);
    const atCap = await aiecs(['token', '--user', 'u', '--ttl', '24h'], { AIECS_JWT_SECRET: SECRET });
    expect(atCap.code, atCap.stderr).toBe(0);
  });

  it('mints what the configured gateway accepts: audience, issuer and the admin claim', async () => {
    const settings = {
      AIECS_JWT_SECRET: SECRET,
      AIECS_JWT_AUDIENCE: 'aiecs-api,other',
      AIECS_JWT_ISSUER: 'https://id.example',
      AIECS_JWT_ADMIN_CLAIM: 'roles',
    };
    const run = await aiecs(['token', '--user', 'carol', '--admin', '--ttl', '30m'], settings);
    expect(run.code, run.stderr).toBe(0);
    const tok = run.stdout.trim();
    const claims = decodeJwt(tok);
    expect(claims).toMatchObject({ sub: 'carol', aud: 'aiecs-api', iss: 'https://id.example', roles: true });
    expect(claims.exp! - claims.iat!).toBe(1800);
    const verify = createVerifier(authOptions(loadConfig(settings).auth));
    expect(await verify(tok)).toMatchObject({ userId: 'carol', admin: true });
  });
});

describe('aiecs gateway with AIECS_JWKS_URL', () => {
  // Not fetched until a token comes, so no server is needed here.
  const jwks = { AIECS_JWKS_URL: 'http://127.0.0.1:9/jwks.json' };

  it('warns in one line when neither audience nor issuer is set', async () => {
    const { stdout, stderr } = await gatewayStart(jwks);
    expect(jwksLines(stderr)).toEqual([
      'aiecs gateway: warning: AIECS_JWKS_URL is set without AIECS_JWT_AUDIENCE or AIECS_JWT_ISSUER: any token its keys signed is accepted, whatever application it was issued for',
    ]);
    expect(jwksLines(stdout)).toEqual([]);
  });

  it('says nothing when the issuer is set', async () => {
    const { stdout, stderr } = await gatewayStart({ ...jwks, AIECS_JWT_ISSUER: 'https://id.example' });
    expect(jwksLines(stdout + stderr)).toEqual([]);
  });
});
