import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { parseDurationS, type AiecsConfig } from '../core/config.js';
import { ConfigError, UnauthorizedError } from '../core/errors.js';
import { textProblem } from '../core/storable-text.js';

/** Who is asking: the token's `sub`, and whether it may see and cancel everything. */
export interface Principal {
  userId: string;
  admin: boolean;
  /** When the token expires (ms since epoch); always set by createVerifier, which requires `exp`. */
  expiresAt?: number;
}

export interface AuthOptions {
  /** HS256 shared secret (AIECS_JWT_SECRET). */
  secret?: string;
  /** JWKS URL for RS256/ES256 tokens (AIECS_JWKS_URL). */
  jwksUrl?: string;
  /** AIECS_JWT_AUDIENCE: when set, `aud` must name one of these. */
  audience?: string[];
  /** AIECS_JWT_ISSUER: when set, `iss` must equal it. */
  issuer?: string;
  /** AIECS_JWT_ADMIN_CLAIM (default `admin`): the one claim that makes an admin. */
  adminClaim?: string;
  /** AIECS_JWT_MAX_TTL in seconds (default 24 h): the longest lifetime a token may claim. */
  maxTtlS?: number;
}

export const DEFAULT_ADMIN_CLAIM = 'admin';
export const DEFAULT_MAX_TTL_S = 86_400;
/** Clocks of the token's issuer and this host may differ this much (s) when `iat` is not trusted. */
const CLOCK_SKEW_S = 60;

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'];

/** The verifier's options from the configuration (AIECS_JWT_* and AIECS_JWKS_URL). */
export function authOptions(auth: AiecsConfig['auth']): AuthOptions {
  return {
    ...(auth.jwtSecret ? { secret: auth.jwtSecret } : {}),
    ...(auth.jwksUrl ? { jwksUrl: auth.jwksUrl } : {}),
    ...(auth.audience ? { audience: auth.audience } : {}),
    ...(auth.issuer ? { issuer: auth.issuer } : {}),
    adminClaim: auth.adminClaim,
    maxTtlS: auth.maxTtlS,
  };
}

/**
 * The startup warning for a JWKS gateway that accepts any token its keys signed: an identity
 * provider's keys sign tokens for every application it serves, so `aud` or `iss` must narrow it.
 */
export function authWarning(auth: AiecsConfig['auth']): string | undefined {
  if (!auth.jwksUrl || auth.audience || auth.issuer) return undefined;
  return 'warning: AIECS_JWKS_URL is set without AIECS_JWT_AUDIENCE or AIECS_JWT_ISSUER: any token its keys signed is accepted, whatever application it was issued for';
}

/**
 * Admin only through one claim (AIECS_JWT_ADMIN_CLAIM, default `admin`): its value is `true`, an
 * array holding the string "admin", or a string whose space-separated words include "admin".
 * Nothing else (a `roles` or `scope` claim the identity provider uses for other applications) counts.
 */
export function isAdmin(payload: JWTPayload, claim = DEFAULT_ADMIN_CLAIM): boolean {
  const value = Object.hasOwn(payload, claim) ? payload[claim] : undefined;
  if (value === true) return true;
  if (Array.isArray(value)) return value.includes('admin');
  return typeof value === 'string' && value.split(/\s+/).includes('admin');
}

/** A claim check jose refused, as one clear reason. */
function refusal(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'token expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'exp') return 'token has no exp (expiry); tokens must expire';
    if (error.claim === 'aud') return 'token audience (aud) does not match AIECS_JWT_AUDIENCE';
    if (error.claim === 'iss') return 'token issuer (iss) does not match AIECS_JWT_ISSUER';
  }
  return 'invalid token';
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
  const maxTtlS = options.maxTtlS ?? DEFAULT_MAX_TTL_S;
  const adminClaim = options.adminClaim ?? DEFAULT_ADMIN_CLAIM;
  // The same claim checks in both modes: a token that never expires is refused.
  const checks: JWTVerifyOptions = {
    requiredClaims: ['exp'],
    ...(options.audience ? { audience: options.audience } : {}),
    ...(options.issuer ? { issuer: options.issuer } : {}),
  };
  return async (token) => {
    if (!token) throw new UnauthorizedError('missing bearer token');
    let payload: JWTPayload;
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
        alg?: string;
      };
      if (header.alg === 'HS256' && secret) {
        ({ payload } = await jwtVerify(token, secret, { ...checks, algorithms: ['HS256'] }));
      } else if (jwks && header.alg && ASYMMETRIC.includes(header.alg)) {
        ({ payload } = await jwtVerify(token, jwks, { ...checks, algorithms: ASYMMETRIC }));
      } else {
        throw new Error(`algorithm ${header.alg ?? '(none)'} is not accepted`);
      }
    } catch (error) {
      throw new UnauthorizedError(refusal(error), {}, { cause: error });
    }
    // jose checked that exp (required) and iat (if present) are numbers.
    const exp = payload.exp!;
    const now = Date.now() / 1000;
    // The lifetime the token claims (exp − iat), and what is left of it (exp − now), so that
    // a token without iat, or with an iat in the future, cannot outlive the cap either.
    if ((payload.iat !== undefined && exp - payload.iat > maxTtlS) || exp - now > maxTtlS + CLOCK_SKEW_S) {
      throw new UnauthorizedError('token lifetime exceeds AIECS_JWT_MAX_TTL');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0)
      throw new UnauthorizedError('token has no sub (user id)');
    // The user id is stored and looked up: a NUL or unpaired surrogate is refused here, not by a store.
    const subProblem = textProblem(payload.sub);
    if (subProblem) throw new UnauthorizedError(`invalid token: sub ${subProblem}`);
    return { userId: payload.sub, admin: isAdmin(payload, adminClaim), expiresAt: exp * 1000 };
  };
}

/** `1h`, `30m`, `7d`, `90s` or plain seconds. */
export function parseTtl(ttl: string): number {
  const seconds = parseDurationS(ttl);
  if (seconds === undefined)
    throw new ConfigError(`ttl ${JSON.stringify(ttl)} must look like 90s, 30m, 1h or 7d`);
  return seconds;
}

export interface MintOptions {
  admin?: boolean;
  /** Lifetime in seconds (default 1 h). */
  ttlS?: number;
  /** `aud` (the first of AIECS_JWT_AUDIENCE), so the gateway that checks it accepts the token. */
  audience?: string;
  /** `iss` (AIECS_JWT_ISSUER). */
  issuer?: string;
  /** The claim that makes an admin (AIECS_JWT_ADMIN_CLAIM, default `admin`); set to `true`. */
  adminClaim?: string;
}

/** The claims a minted token needs to pass this configuration's checks. */
export function mintOptions(
  auth: AiecsConfig['auth'],
): Pick<MintOptions, 'audience' | 'issuer' | 'adminClaim'> {
  return {
    ...(auth.audience?.[0] ? { audience: auth.audience[0] } : {}),
    ...(auth.issuer ? { issuer: auth.issuer } : {}),
    adminClaim: auth.adminClaim,
  };
}

/** Mints an HS256 token with the configured secret (`aiecs token`, `aiecs up`). */
export async function mintToken(secret: string, user: string, options: MintOptions = {}): Promise<string> {
  const claims = options.admin ? { [options.adminClaim ?? DEFAULT_ADMIN_CLAIM]: true } : {};
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlS ?? 3600));
  if (options.audience) jwt.setAudience(options.audience);
  if (options.issuer) jwt.setIssuer(options.issuer);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** Describes a lifetime for people: `24 h`, `10 min`, `90 s`. */
export function describeTtl(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** The bearer token of an Authorization header. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return m?.[1];
}
