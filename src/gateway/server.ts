import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AiecsConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { AiecsApp } from '../engine/app.js';
import type { Store } from '../engine/store.js';
import type { ServiceRegistry } from '../registry/registry.js';
import { authOptions, createVerifier, type Verifier } from './auth.js';
import { registerDashboardRoute } from './dashboard-route.js';
import { EventBridge } from './event-bridge.js';
import { errorReplyOptions, installErrorReplies } from './error-replies.js';
import { registerMetricsRoute } from './metrics-route.js';
import { corsOptions } from './origin.js';
import type { UserRateLimit } from './rate-limit.js';
import { Realtime } from './realtime.js';
import { registerRoutes } from './routes.js';
import { API_ERROR_SCHEMA, openApiOptions } from './schemas.js';
import { StatsFeed } from './stats-feed.js';
import { TaskWatch } from './task-watch.js';

export const GATEWAY_VERSION = '0.1.0';

export interface GatewayOptions {
  app: AiecsApp;
  store: Store;
  config: AiecsConfig;
  logger: Logger;
  /** Token check; default: from the config's AIECS_JWT_SECRET / AIECS_JWKS_URL. */
  verify?: Verifier;
  /**
   * Services accepted even with no worker up (`aiecs up` passes its worker's, `aiecs gateway` the
   * built-in ones and its --services); otherwise only what live workers' heartbeats list.
   */
  registry?: ServiceRegistry;
  /** The built dashboard's folder; default dist/dashboard (see dashboard-route.ts). */
  dashboardRoot?: string;
}

/** The gateway: Fastify for HTTP with socket.io on the same server, fed by the store's events. */
export class Gateway {
  readonly fastify: FastifyInstance;
  private realtime: Realtime | undefined;
  private taskWatch: TaskWatch | undefined;
  private statsFeed: StatsFeed | undefined;
  private readonly bridge: EventBridge;
  private readonly verify: Verifier;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: GatewayOptions) {
    const { config, logger } = options;
    this.verify = options.verify ?? createVerifier(authOptions(config.auth));
    let lastLimitWarn = 0;
    const rateLimit: UserRateLimit = {
      perSecond: config.gateway.rateLimitPerS,
      burst: config.gateway.rateLimitBurst,
      onSharedError: (error) => {
        // Once a minute at most: during an outage every request would say it.
        if (Date.now() - lastLimitWarn < 60_000) return;
        lastLimitWarn = Date.now();
        logger.warn({ err: error.message }, 'shared rate limit unavailable; this node limits alone');
      },
    };
    // One embedded store has one gateway: its own count is the whole truth there.
    if (options.store.kind !== 'embedded')
      rateLimit.shared = {
        // Bounded like every store call of a request: refused at once while the store is down.
        tryHit: (key, limit, windowMs) =>
          options.app.bounded('count the request', () => options.store.tryHit(key, limit, windowMs), {
            probe: false,
          }),
      };
    this.bridge = new EventBridge(options.app, options.store, logger, { retention: config.retention });
    this.fastify = Fastify({
      loggerInstance: logger.child({ component: 'gateway' }) as unknown as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: config.maxInputBytes + 64 * 1024,
      // A body trickled a byte at a time would otherwise hold its connection for good.
      requestTimeout: config.gateway.httpRequestTimeoutMs,
      http: httpServerOptions(config.gateway.httpRequestTimeoutMs),
      ...errorReplyOptions(logger),
    }) as unknown as FastifyInstance;
    // Every error reply in the documented shape, Fastify's own included (before the routes exist).
    installErrorReplies(this.fastify);
    // The route schemas document the API (the OpenAPI document is generated from them); requests
    // are validated by the zod schemas they come from, in the handlers, so errors name fields as
    // documented, and replies go out as the handlers build them.
    this.fastify.setValidatorCompiler(() => () => true);
    this.fastify.setSerializerCompiler(() => (data) => JSON.stringify(data));
    this.fastify.addSchema(API_ERROR_SCHEMA);
    // Before the routes: it learns them as they are declared.
    void this.fastify.register(fastifySwagger, openApiOptions(GATEWAY_VERSION));
    // CORS_ALLOWED_ORIGINS and the gateway's own origin, on HTTP as on socket.io; never `*`.
    void this.fastify.register(fastifyCors, corsOptions(config.corsOrigins));
    this.fastify.after((error) => {
      if (error) throw error;
      registerRoutes(this.fastify, {
        app: options.app,
        store: options.store,
        verify: this.verify,
        rateLimit,
        taskBodyLimit: config.maxInputBytes + 64 * 1024,
        batchBodyLimit: Math.max(16 * 1024 * 1024, config.maxInputBytes * 2),
        bridge: this.bridge,
        ...(options.registry ? { registry: options.registry } : {}),
      });
      registerMetricsRoute(this.fastify, { app: options.app, token: config.metricsToken, logger });
      registerDashboardRoute(
        this.fastify,
        options.dashboardRoot !== undefined ? { root: options.dashboardRoot } : {},
      );
    });
  }

  /** Starts listening; resolves with the URL. */
  async listen(port = this.options.config.port, host = this.options.config.host): Promise<string> {
    await this.bridge.start();
    await this.fastify.ready();
    const g = this.options.config.gateway;
    this.realtime = new Realtime(
      this.fastify.server,
      this.options.app,
      this.bridge,
      this.verify,
      {
        corsOrigins: this.options.config.corsOrigins,
        maxMessageBytes: g.wsMaxMessageBytes,
        maxBufferedPackets: g.wsMaxBufferedPackets,
        maxBufferedBytes: g.wsMaxBufferedBytes,
        messagesPerSecond: g.wsMessagesPerS,
      },
      this.options.logger,
    );
    this.taskWatch = new TaskWatch(this.realtime.io, this.bridge);
    this.statsFeed = new StatsFeed(
      this.realtime.io,
      this.bridge,
      this.options.app,
      this.options.logger,
      this.options.config.heartbeatIntervalMs,
    );
    await this.fastify.listen({ port, host });
    const address = this.fastify.server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    return `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  }

  get connections(): number {
    return this.realtime?.connections ?? 0;
  }

  /** Stops taking requests and sockets, then lets go of the store's events. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.taskWatch?.close();
      this.statsFeed?.close();
      await this.realtime?.close();
      await this.fastify.close();
      await this.bridge.close();
    })();
    return this.closing;
  }
}

export async function startGateway(
  options: GatewayOptions & { port?: number; host?: string },
): Promise<{ gateway: Gateway; url: string }> {
  const gateway = new Gateway(options);
  const url = await gateway.listen(options.port, options.host);
  return { gateway, url };
}

/**
 * Node's timers for a request timeout of `timeoutMs`. Its headers timeout (60 s) must not exceed
 * the request timeout: Node then swaps the two, and a body would get 60 s whatever was set. It
 * looks for late requests every 30 s by default: a tenth of the timeout here, from 1 s up to that.
 */
function httpServerOptions(timeoutMs: number): {
  headersTimeout: number;
  connectionsCheckingInterval: number;
} {
  if (timeoutMs === 0) return { headersTimeout: 60_000, connectionsCheckingInterval: 30_000 };
  return {
    headersTimeout: Math.min(60_000, timeoutMs),
    connectionsCheckingInterval: Math.min(30_000, Math.max(1_000, Math.round(timeoutMs / 10))),
  };
}
