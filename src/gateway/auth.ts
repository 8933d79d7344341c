import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ConfigError, UnauthorizedError } from '../core/errors.js';

/** Who is asking: the token's `sub`, and whether it may see and cancel everything. */
export interface Principal {
  userId: string;
  admin: boolean;
}

export interface AuthOptions {
  /** HS256 shared secret (AIECS_JWT_SECRET). */
  secret?: string;
  /** JWKS URL for RS256/ES256 tokens (AIECS_JWKS_URL). */
  jwksUrl?: string;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'];

/** The admin claim: `admin: true`, or `roles` holding "admin", or scope "aiecs:admin". */
function isAdmin(payload: JWTPayload): boolean {
  if (payload.admin === true) return true;
  if (Array.isArray(payload.roles) && payload.roles.includes('admin')) return true;
  return typeof payload.scope === 'string' && payload.scope.split(' ').includes('aiecs:admin');
}

export type Verifier = (token: string | undefined) => Promise<Principal>;

/** Builds the token check once; every request and every socket handshake goes through it. */
export function createVerifier(options: AuthOptions): Verifier {
  if (!options.secret && !options.jwksUrl) {
    throw new ConfigError(
      'the gateway needs AIECS_JWT_SECRET (HS256) or AIECS_JWKS_URL (RS256/ES256) to check tokens',
    );
  }
  if (options.secret !== undefined && Buffer.byteLength(options.secret) < 32) {
    throw new ConfigError('AIECS_JWT_SECRET must be at least 32 bytes long');
  }
  const secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  const jwks: JWTVerifyGetKey | undefined = options.jwksUrl
    ? createRemoteJWKSet(new URL(options.jwksUrl))
    : undefined;
  return async (token) => {
    if (!token) throw new UnauthorizedError('missing bearer token');
    let payload: JWTPayload;
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
        alg?: string;
      };
      if (header.alg === 'HS256' && secret) {
        ({ payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] }));
      } else if (jwks && header.alg && ASYMMETRIC.includes(header.alg)) {
        ({ payload } = await jwtVerify(token, jwks, { algorithms: ASYMMETRIC }));
      } else {
        throw new Error(`algorithm ${header.alg ?? '(none)'} is not accepted`);
      }
    } catch (error) {
      const reason =
        (error as { code?: string }).code === 'ERR_JWT_EXPIRED' ? 'token expired' : 'invalid token';
      throw new UnauthorizedError(reason, {}, { cause: error });
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0)
      throw new UnauthorizedError('token has no sub (user id)');
    return { userId: payload.sub, admin: isAdmin(payload) };
  };
}

/** `1h`, `30m`, `7d`, `90s` or plain seconds. */
export function parseTtl(ttl: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(ttl.trim());
  if (!m) throw new ConfigError(`ttl ${JSON.stringify(ttl)} must look like 90s, 30m, 1h or 7d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** Mints an HS256 token with the configured secret (`aiecs token`, `aiecs up`). */
export async function mintToken(
  secret: string,
  user: string,
  options: { admin?: boolean; ttlS?: number } = {},
): Promise<string> {
  const jwt = new SignJWT(options.admin ? { admin: true } : {})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlS ?? 3600));
  return jwt.sign(new TextEncoder().encode(secret));
}

/** The bearer token of an Authorization header. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return m?.[1];
}
