import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The page runs only its own scripts and styles and talks only to its own origin (socket.io included). */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const DASHBOARD_HINT = 'the dashboard is not built: run npm run build';

/**
 * Where `npm run build` puts the page: next to dist/gateway when running from dist; from the
 * sources (tests, tsx) the same dist folder, never src/dashboard (its unbuilt sources).
 */
export function defaultDashboardRoot(): string {
  const fromDist = !import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromDist ? '../dashboard/' : '../../dist/dashboard/', import.meta.url));
}

function securityHeaders(reply: FastifyReply): void {
  void reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
}

/**
 * The dashboard's static files at /dashboard/, with `/` and `/dashboard` sent there. Every answer
 * here carries the CSP; index.html is revalidated on each load and the hashed assets are cached
 * for good. Without a build the page answers 404 with the command that makes it.
 */
export function registerDashboardRoute(fastify: FastifyInstance, options: { root?: string } = {}): void {
  const root = options.root ?? defaultDashboardRoot();
  void fastify.register(async (scope) => {
    scope.addHook('onRequest', async (_request, reply) => securityHeaders(reply));
    // Not part of the API: left out of the OpenAPI document (@fastify/static's routes are too).
    scope.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/dashboard/', 302));
    scope.get('/dashboard', { schema: { hide: true } }, async (_request, reply) =>
      reply.redirect('/dashboard/', 302),
    );
    if (!existsSync(`${root}/index.html`)) {
      scope.get('/dashboard/*', { schema: { hide: true } }, async (_request, reply) =>
        reply.code(404).send({ error: { code: 'NOT_FOUND', message: DASHBOARD_HINT, details: {} } }),
      );
      return;
    }
    await scope.register(fastifyStatic, {
      root,
      prefix: '/dashboard/',
      index: ['index.html'],
      wildcard: true,
      redirect: false,
      decorateReply: false,
      dotfiles: 'deny',
      cacheControl: false,
      setHeaders: (reply, path) => {
        // Vite names every asset by its content hash: a changed file is a new name.
        const hashed = /[\\/]assets[\\/]/.test(path);
        void reply.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  });
}
