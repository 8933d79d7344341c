import type { FastifyInstance } from 'fastify';
import { UnauthorizedError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { enableMetrics, scrapeAuthorized, type ClusterFigures } from '../core/metrics.js';
import { QUEUE_KINDS } from '../core/task.js';
import type { AiecsApp } from '../engine/app.js';
import { queueCounts } from '../engine/queue-admin.js';
import { routeSchemas } from './schemas.js';

/** The store's figures, read now: jobs per queue and state (as `GET /api/queues` counts them), and live workers. */
export async function clusterFigures(app: AiecsApp): Promise<ClusterFigures> {
  const [queues, workers] = await Promise.all([
    app.bounded('read queue depth', async () => {
      const depth: ClusterFigures['queues'] = {};
      for (const kind of QUEUE_KINDS) {
        const { waiting, delayed, active, failed } = await queueCounts(app, kind);
        depth[kind] = { waiting, delayed, active, failed };
      }
      return depth;
    }),
    app.listWorkers(),
  ]);
  return { queues, workersLive: workers.length };
}

/**
 * `GET /metrics`: this process's figures (its workers' tasks, its sockets and events) and the
 * store's (queue depth, live workers). No JWT; with AIECS_METRICS_TOKEN, that bearer token.
 */
export function registerMetricsRoute(
  fastify: FastifyInstance,
  deps: { app: AiecsApp; token: string | undefined; logger: Logger },
): void {
  const metrics = enableMetrics();
  const { app, token, logger } = deps;
  let lastWarn = 0;
  fastify.get('/metrics', { schema: routeSchemas.metrics }, async (request, reply) => {
    if (token !== undefined && !scrapeAuthorized(request.headers.authorization, token)) {
      void reply.header('www-authenticate', 'Bearer');
      throw new UnauthorizedError('/metrics needs the bearer token AIECS_METRICS_TOKEN');
    }
    // With the store away the process's own figures still go out; the store's are left out.
    const cluster = await clusterFigures(app).catch((error: unknown) => {
      if (Date.now() - lastWarn > 60_000) {
        lastWarn = Date.now();
        logger.warn({ err: (error as Error).message }, 'metrics: could not read queue depth from the store');
      }
      return undefined;
    });
    return reply.header('content-type', metrics.contentType).send(await metrics.exposition(cluster));
  });
}
