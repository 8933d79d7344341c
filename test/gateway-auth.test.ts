// Token checks at the gateway, HS256 and JWKS alike: audience and issuer (when configured), the
// one claim that makes an admin, a required `exp` and a capped lifetime, over HTTP and socket.io.
// Auth does not depend on the store: one Redis deployment carries every gateway of this file.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openClient } from '../src/cli/client.js';
import { HttpClient } from '../src/cli/http-client.js';
import { writeGatewayFile } from '../src/cli/local-gateway.js';
import { startUp } from '../src/cli/up.js';
import { loadConfig } from '../src/core/config.js';
import { silentLogger } from '../src/core/logger.js';
import { authOptions, createVerifier, isAdmin, mintOptions, mintToken } from '../src/gateway/auth.js';
import { GatewayEnv, SECRET, request, tryConnect, uid, type GatewayHandle } from './gateway-harness.js';
import { TEST_ENV } from './harness.js';

const AUDIENCE = 'aiecs-api';
const OTHER_AUDIENCE = 'aiecs-admin-ui';
const ISSUER = 'https://id.example/realm';
const KID = 'test-key';

const now = () => Math.floor(Date.now() / 1000);

/** A token with exactly these claims (no defaults: a test says whether it has exp or iat). */
function hs256(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
}

let jwksKey: CryptoKey;
let strangerKey: CryptoKey;
function es256(claims: JWTPayload, key: CryptoKey = jwksKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: KID }).sign(key);
}

/** The claims of an ordinary one-hour token for `user`, plus `extra`. */
function claims(user: string, extra: JWTPayload = {}): JWTPayload {
  return { sub: user, iat: now(), exp: now() + 3600, ...extra };
}

/** GET /api/tasks: 200 for any valid token. */
async function status(url: string, tok: string): Promise<{ status: number; message?: string }> {
  const res = await request(url, '/api/tasks', { token: tok });
  return { status: res.status, message: res.body?.error?.message };
}

/** GET /api/workers: 200 for admins only. */
async function adminStatus(url: string, tok: string): Promise<number> {
  return (await request(url, '/api/workers', { token: tok })).status;
}

/** Whether the socket.io handshake accepts the token; the refusal's reason otherwise. */
async function handshake(url: string, tok: string): Promise<true | string> {
  const { client, error } = await tryConnect(url, tok);
  if (client) {
    client.close();
    return true;
  }
  expect(error?.data).toMatchObject({ code: 'UNAUTHORIZED' });
  return error?.message ?? 'refused';
}

let ge: GatewayEnv;
let jwksServer: Server;
let jwksUrl: string;
/** HS256, default checks: no audience or issuer, `admin` is the admin claim, 24 h cap. */
let plain: GatewayHandle;
/** HS256 with audience (two) and issuer. */
let hsChecked: GatewayHandle;
/** JWKS with audience and issuer (and the suite's HS256 secret beside it). */
let jwksChecked: GatewayHandle;
/** JWKS with AIECS_JWT_ADMIN_CLAIM=roles. */
let jwksRoles: GatewayHandle;
/** HS256 with AIECS_JWT_MAX_TTL=30m. */
let capped: GatewayHandle;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  jwksKey = pair.privateKey;
  strangerKey = (await generateKeyPair('ES256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;

  ge = await GatewayEnv.create('redis', {}, { worker: false });
  plain = ge.main;
  hsChecked = await ge.addGateway({
    AIECS_JWT_AUDIENCE: `${AUDIENCE}, ${OTHER_AUDIENCE}`,
    AIECS_JWT_ISSUER: ISSUER,
  });
  jwksChecked = await ge.addGateway({
    AIECS_JWKS_URL: jwksUrl,
    AIECS_JWT_AUDIENCE: AUDIENCE,
    AIECS_JWT_ISSUER: ISSUER,
  });
  jwksRoles = await ge.addGateway({ AIECS_JWKS_URL: jwksUrl, AIECS_JWT_ADMIN_CLAIM: 'roles' });
  capped = await ge.addGateway({ AIECS_JWT_MAX_TTL: '30m' });
});

afterAll(async () => {
  await ge?.cleanup();
  await new Promise((resolve) => jwksServer?.close(resolve));
});

describe('audience and issuer', () => {
  it('HS256: checks aud (any of AIECS_JWT_AUDIENCE) and iss when set, over HTTP and socket.io', async () => {
    const user = uid('aud');
    const url = hsChecked.url;
    const right = await hs256(claims(user, { aud: AUDIENCE, iss: ISSUER }));
    expect(await status(url, right)).toEqual({ status: 200 });
    expect(await handshake(url, right)).toBe(true);
    // The second configured audience, and an aud array naming one of them, are accepted too.
    expect((await status(url, await hs256(claims(user, { aud: OTHER_AUDIENCE, iss: ISSUER })))).status).toBe(
      200,
    );
    expect((await status(url, await hs256(claims(user, { aud: ['x', AUDIENCE], iss: ISSUER })))).status).toBe(
      200,
    );

    const wrongAud = await hs256(claims(user, { aud: 'another-app', iss: ISSUER }));
    const noAud = await hs256(claims(user, { iss: ISSUER }));
    const wrongIss = await hs256(claims(user, { aud: AUDIENCE, iss: 'https://evil.example' }));
    const noIss = await hs256(claims(user, { aud: AUDIENCE }));
    for (const [tok, reason] of [
      [wrongAud, /audience \(aud\) does not match AIECS_JWT_AUDIENCE/],
      [noAud, /audience/],
      [wrongIss, /issuer \(iss\) does not match AIECS_JWT_ISSUER/],
      [noIss, /issuer/],
    ] as const) {
      const res = await status(url, tok);
      expect(res.status).toBe(401);
      expect(res.message).toMatch(reason);
      expect(await handshake(url, tok)).toMatch(reason);
    }
    // Unset, neither is checked.
    expect((await status(plain.url, wrongAud)).status).toBe(200);
  });

  it('JWKS: checks aud and iss when set, over HTTP and socket.io', async () => {
    const user = uid('jwks');
    const url = jwksChecked.url;
    const right = await es256(claims(user, { aud: AUDIENCE, iss: ISSUER }));
    expect(await status(url, right)).toEqual({ status: 200 });
    expect(await handshake(url, right)).toBe(true);

    for (const [tok, reason] of [
      [await es256(claims(user, { aud: 'another-app', iss: ISSUER })), /audience/],
      [await es256(claims(user, { iss: ISSUER })), /audience/],
      [await es256(claims(user, { aud: AUDIENCE, iss: 'https://evil.example' })), /issuer/],
      [await es256(claims(user, { aud: AUDIENCE })), /issuer/],
      // A key the JWKS does not hold: the signature check still decides first.
      [await es256(claims(user, { aud: AUDIENCE, iss: ISSUER }), strangerKey), /invalid token/],
    ] as const) {
      const res = await status(url, tok);
      expect(res.status).toBe(401);
      expect(res.message).toMatch(reason);
      expect(await handshake(url, tok)).toMatch(reason);
    }
  });
});

describe('admin', () => {
  it('is only `admin: true` by default: roles or scope claims do not make an admin', async () => {
    const user = uid('who');
    for (const [url, sign] of [
      [plain.url, hs256],
      [jwksChecked.url, es256],
    ] as const) {
      const extra = { aud: AUDIENCE, iss: ISSUER };
      expect(await adminStatus(url, await sign(claims(user, { ...extra, roles: ['admin'] })))).toBe(403);
      expect(
        await adminStatus(url, await sign(claims(user, { ...extra, scope: 'openid aiecs:admin' }))),
      ).toBe(403);
      expect(await adminStatus(url, await sign(claims(user, { ...extra, admin: 'true' })))).toBe(403);
      expect(await adminStatus(url, await sign(claims(user, { ...extra, admin: true })))).toBe(200);
      expect(await adminStatus(url, await sign(claims(user, extra)))).toBe(403);
    }
  });

  it('is the claim AIECS_JWT_ADMIN_CLAIM names: true, an array with "admin" or a space-separated string', async () => {
    const user = uid('role');
    const url = jwksRoles.url;
    expect(await adminStatus(url, await es256(claims(user, { roles: ['user', 'admin'] })))).toBe(200);
    expect(await adminStatus(url, await es256(claims(user, { roles: 'user admin' })))).toBe(200);
    expect(await adminStatus(url, await es256(claims(user, { roles: true })))).toBe(200);
    expect(await adminStatus(url, await es256(claims(user, { roles: ['user', 'administrator'] })))).toBe(403);
    expect(await adminStatus(url, await es256(claims(user, { roles: 'superadmin' })))).toBe(403);
    // The named claim replaces `admin`: an identity provider's other claims cannot stand in for it.
    expect(await adminStatus(url, await es256(claims(user, { admin: true })))).toBe(403);
    // Minted tokens put the admin flag in the configured claim.
    const config = loadConfig({ AIECS_JWT_ADMIN_CLAIM: 'roles', AIECS_JWT_SECRET: SECRET });
    expect(
      await adminStatus(url, await mintToken(SECRET, user, { ...mintOptions(config.auth), admin: true })),
    ).toBe(200);
    expect(isAdmin({ 'https://app.example/roles': ['admin'] }, 'https://app.example/roles')).toBe(true);
  });
});

describe('expiry and lifetime', () => {
  it('refuses a token without exp, over HTTP and socket.io, in both modes', async () => {
    const user = uid('noexp');
    for (const [url, tok] of [
      [plain.url, await hs256({ sub: user, iat: now() })],
      [jwksRoles.url, await es256({ sub: user, iat: now() })],
    ] as const) {
      const res = await status(url, tok);
      expect(res.status).toBe(401);
      expect(res.message).toMatch(/no exp/);
      expect(await handshake(url, tok)).toMatch(/no exp/);
    }
  });

  it('refuses a lifetime over AIECS_JWT_MAX_TTL (default 24 h), with iat, without it or with a future one', async () => {
    const user = uid('long');
    const day = 86_400;
    const tooLong = [
      // exp − iat over a day.
      await hs256({ sub: user, iat: now(), exp: now() + day + 3600 }),
      // No iat: exp − now over a day.
      await hs256({ sub: user, exp: now() + day + 3600 }),
      // An iat in the future does not shorten what is left of it.
      await hs256({ sub: user, iat: now() + 365 * day, exp: now() + 365 * day + 3600 }),
      // Issued long ago, still valid for a while, but it claimed a week.
      await hs256({ sub: user, iat: now() - 7 * day + 60, exp: now() + 60 }),
    ];
    for (const [url, tok] of [
      ...tooLong.map((t) => [plain.url, t] as const),
      [jwksRoles.url, await es256({ sub: user, iat: now(), exp: now() + 2 * day })] as const,
    ]) {
      const res = await status(url, tok);
      expect(res.status).toBe(401);
      expect(res.message).toBe('token lifetime exceeds AIECS_JWT_MAX_TTL');
      expect(await handshake(url, tok)).toBe('token lifetime exceeds AIECS_JWT_MAX_TTL');
    }
    // Exactly the cap is fine, as is a JWKS token of an hour.
    const fullDay = await mintToken(SECRET, user, { ttlS: day });
    expect((await status(plain.url, fullDay)).status).toBe(200);
    expect(await handshake(plain.url, fullDay)).toBe(true);
    expect((await status(jwksRoles.url, await es256(claims(user)))).status).toBe(200);

    // AIECS_JWT_MAX_TTL=30m.
    const hour = await mintToken(SECRET, user, { ttlS: 3600 });
    expect((await status(capped.url, hour)).message).toBe('token lifetime exceeds AIECS_JWT_MAX_TTL');
    expect(await handshake(capped.url, hour)).toBe('token lifetime exceeds AIECS_JWT_MAX_TTL');
    expect((await status(capped.url, await mintToken(SECRET, user, { ttlS: 1800 }))).status).toBe(200);
  });

  it("puts the token's expiry on the principal", async () => {
    const verify = createVerifier(authOptions(loadConfig({ AIECS_JWT_SECRET: SECRET }).auth));
    const exp = now() + 600;
    const principal = await verify(await hs256({ sub: 'x', iat: now(), exp, admin: true }));
    expect(principal).toEqual({ userId: 'x', admin: true, expiresAt: exp * 1000 });
  });
});

describe('tokens aiecs mints for itself', () => {
  it('pass the checks configured: `aiecs up` prints one, CLI commands reaching it mint one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aiecs-auth-'));
    const settings = {
      ...TEST_ENV,
      AIECS_JWT_SECRET: SECRET,
      AIECS_JWT_AUDIENCE: AUDIENCE,
      AIECS_JWT_ISSUER: ISSUER,
      AIECS_JWT_ADMIN_CLAIM: 'roles',
      // Shorter than the day `aiecs up` mints for and the 10 minutes of a CLI command.
      AIECS_JWT_MAX_TTL: '5m',
    };
    const up = await startUp({
      config: loadConfig({ ...settings, AIECS_BROKER_URL: inject('redisUrl') }),
      logger: silentLogger,
      namespace: `t_auth_${process.pid}`,
      gateway: { port: 0, host: '127.0.0.1' },
      // The fast queue alone: no child processes, which this test does not need.
      worker: { queues: ['fast_tasks'] },
    });
    try {
      expect(up.token).toBeDefined();
      expect(await status(up.url!, up.token!)).toEqual({ status: 200 });
      expect(decodeJwt(up.token!)).toMatchObject({ aud: AUDIENCE, iss: ISSUER });
      // A CLI command on the embedded store whose `aiecs up` left its address: an admin over HTTP.
      const cliConfig = loadConfig({ ...settings, AIECS_BROKER_URL: `embedded:${dir}` });
      const forget = writeGatewayFile(cliConfig, { url: up.url!, pid: process.pid });
      const client = await openClient({ config: cliConfig, logger: silentLogger });
      try {
        expect(client).toBeInstanceOf(HttpClient);
        expect(Array.isArray(await client.workers())).toBe(true);
      } finally {
        await client.close();
        forget();
      }
    } finally {
      await up.close(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('settings', () => {
  it('parses AIECS_JWT_* and refuses a bad AIECS_JWT_MAX_TTL by name', () => {
    const base = loadConfig({});
    expect(base.auth).toEqual({ adminClaim: 'admin', maxTtlS: 86_400 });
    const auth = loadConfig({
      AIECS_JWT_AUDIENCE: ' a , b,',
      AIECS_JWT_ISSUER: ISSUER,
      AIECS_JWT_ADMIN_CLAIM: 'roles',
      AIECS_JWT_MAX_TTL: '90m',
    }).auth;
    expect(auth).toEqual({ audience: ['a', 'b'], issuer: ISSUER, adminClaim: 'roles', maxTtlS: 5400 });
    expect(loadConfig({ AIECS_JWT_MAX_TTL: '3600' }).auth.maxTtlS).toBe(3600);
    expect(loadConfig({ AIECS_JWT_MAX_TTL: '2d' }).auth.maxTtlS).toBe(2 * 86_400);
    for (const bad of ['0', 'soon', '1.5h', '-1h'])
      expect(() => loadConfig({ AIECS_JWT_MAX_TTL: bad })).toThrow(
        `AIECS_JWT_MAX_TTL=${JSON.stringify(bad)}`,
      );
    expect(() => loadConfig({ AIECS_JWT_ADMIN_CLAIM: '' })).toThrow('AIECS_JWT_ADMIN_CLAIM=""');
    // Minted tokens carry the first audience and the issuer, so a checking gateway accepts them.
    expect(mintOptions(auth)).toEqual({ audience: 'a', issuer: ISSUER, adminClaim: 'roles' });
  });
});
