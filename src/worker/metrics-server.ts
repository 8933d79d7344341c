/**
 * A worker's `--metrics-port`: a tiny node:http server for Prometheus (`GET /metrics`) and for
 * probes (`GET /healthz`), so a worker needs no web framework to be scraped.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AiecsError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { enableMetrics, scrapeAuthorized } from '../core/metrics.js';

/** The worker cannot listen on its metrics port: the command was given a port it cannot have. */
export class MetricsPortError extends AiecsError {
  override readonly code = 'METRICS_PORT_ERROR';
  override readonly wireCode = 'E001';
}

export interface MetricsServerOptions {
  port: number;
  host: string;
  /** AIECS_METRICS_TOKEN: scrapes must send it as a bearer token. */
  token?: string | undefined;
  logger: Logger;
}

export interface MetricsServer {
  /** Where /metrics is served (the port the OS chose, for port 0). */
  readonly url: string;
  close(): Promise<void>;
}

function listenError(error: unknown, port: number, host: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const fix = 'pass --metrics-port N or set AIECS_METRICS_PORT';
  if (code === 'EADDRINUSE')
    return new MetricsPortError(`metrics port ${port} is in use; ${fix}`, { port, host });
  if (code === 'EACCES')
    return new MetricsPortError(
      `metrics port ${port} needs privileges this user lacks (ports below 1024 usually do); ${fix}`,
      { port, host },
    );
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    return new MetricsPortError(
      `cannot serve metrics on ${host}: no such address on this machine; set AIECS_HOST`,
      { port, host },
    );
  return error;
}

function send(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const errorBody = (code: string, message: string) =>
  JSON.stringify({ error: { code, message, details: {} } });

/** Listens (starting the process's metrics); rejects with one line when the port cannot be had. */
export async function serveMetrics(options: MetricsServerOptions): Promise<MetricsServer> {
  const metrics = enableMetrics();
  const { token, logger } = options;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz')
      return send(
        res,
        404,
        errorBody('NOT_FOUND', `no route ${path}; this port serves /metrics and /healthz`),
      );
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, errorBody('METHOD_NOT_ALLOWED', `${path} takes GET`));
    }
    if (path === '/healthz') return send(res, 200, '{"status":"ok"}');
    if (token !== undefined && !scrapeAuthorized(req.headers.authorization, token)) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(res, 401, errorBody('UNAUTHORIZED', '/metrics needs the bearer token AIECS_METRICS_TOKEN'));
    }
    send(res, 200, await metrics.exposition(), metrics.contentType);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.warn({ err: (error as Error).message }, 'metrics scrape failed');
      if (!res.headersSent) send(res, 500, errorBody('INTERNAL', 'internal error'));
      else res.destroy();
    });
  });
  const { port, host } = options;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(listenError(error, port, host)));
    server.listen({ port, host, exclusive: true }, () => resolve());
  });
  // A scraper's keep-alive connection must not hold the worker's exit.
  server.unref();
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${actual}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
