import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { FastifyCorsOptions, FastifyCorsOptionsDelegateCallback } from '@fastify/cors';
import { ForbiddenError } from '../core/errors.js';

/**
 * Whether a request's `Origin` may use the gateway (HTTP and socket.io alike): one of
 * CORS_ALLOWED_ORIGINS, or the gateway's own origin as the request reached it. A page the gateway
 * serves sends that one, and so do non-browser clients (Python's websocket-client, under
 * python-socketio) by default. A browser always sends the real `Host`, so a page on another origin
 * cannot pass for the gateway's own.
 */
export function originAllowed(origin: string, allowed: readonly string[], req: IncomingMessage): boolean {
  if (allowed.includes(origin)) return true;
  const own = ownOrigin(req);
  return own !== undefined && normalize(origin) === own;
}

/**
 * @fastify/cors's options for the HTTP server, by the same policy as socket.io's handshake
 * (originAllowed): an allowed origin is echoed with credentials (never `*`) and its preflight
 * answered 204; a request from any other origin is refused with 403 FORBIDDEN in the error
 * table's shape; a request without `Origin` (not from a browser page) gets no CORS headers.
 */
export function corsOptions(allowed: readonly string[]): { delegator: FastifyCorsOptionsDelegateCallback } {
  const grant: FastifyCorsOptions = {
    origin: true, // the request's own Origin, checked below
    credentials: true,
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['authorization', 'content-type'],
    maxAge: 600,
    // A preflight without Access-Control-Request-Method is answered as any other, not a 400.
    strictPreflight: false,
  };
  const none: FastifyCorsOptions = { origin: false };
  return {
    delegator: (request, callback) => {
      const origin = request.headers.origin;
      if (origin === undefined) return callback(null, none);
      if (originAllowed(origin, allowed, request.raw)) return callback(null, grant);
      callback(new ForbiddenError(`origin ${origin} is not allowed`));
    },
  };
}

/**
 * The origin the client addressed: the `Host` header, over https when the connection is TLS or a
 * proxy that ended TLS says so in `X-Forwarded-Proto`.
 */
function ownOrigin(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host) return undefined;
  const forwarded = req.headers['x-forwarded-proto'];
  const proto =
    (req.socket as TLSSocket).encrypted ||
    (typeof forwarded === 'string' && forwarded.split(',')[0]!.trim().toLowerCase() === 'https')
      ? 'https'
      : 'http';
  return normalize(`${proto}://${host}`);
}

/** An origin as browsers serialize it (lower-case host, no default port); undefined if not one. */
function normalize(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? undefined : url.origin;
  } catch {
    return undefined;
  }
}
