/**
 * Every error the HTTP server sends in the one documented shape, `{error: {code, message,
 * details}}`: handler errors, Fastify's own (unknown route, wrong method, bad URL encoding, a
 * parameter too long, body parsing and limits, shutting down) and the connection-level ones Node
 * answers before Fastify sees a request (headers too large, malformed HTTP, timeouts).
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { Logger } from '../core/logger.js';
import { TASK_ID_MAX_LENGTH } from '../core/task.js';
import { HTTP_STATUS, errorBody, toHttpError, type ErrorBody } from './http-errors.js';

/** The longest URL parameter is a task id (ids hold only characters that need no escaping). */
export const MAX_PARAM_LENGTH = TASK_ID_MAX_LENGTH;

function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
  log: (error: unknown) => void,
): void {
  const { status, body, internal } = toHttpError(error, {
    bodyLimit: request.routeOptions.bodyLimit,
    maxParamLength: MAX_PARAM_LENGTH,
    ...(request.headers['content-type'] ? { contentType: request.headers['content-type'] } : {}),
  });
  if (internal) log(error);
  void reply.code(status).send(body);
}

/** The options Fastify takes at construction for its own replies to use our shape. */
export function errorReplyOptions(
  logger: Logger,
): Pick<
  FastifyServerOptions,
  'routerOptions' | 'frameworkErrors' | 'clientErrorHandler' | 'return503OnClosing'
> {
  return {
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // A bad URL encoding (400) or a parameter over maxParamLength (414), before any route runs.
    frameworkErrors: (error, request, reply) =>
      sendError(request, reply, error, (e) => logger.error({ err: e }, 'framework error')),
    clientErrorHandler: (error, socket) => replyToClientError(error, socket),
    // Answered by the onRequest hook of installErrorReplies instead, in our shape.
    return503OnClosing: false,
  };
}

/** Errors on a connection before Fastify has a request: oversized headers, malformed HTTP, timeouts. */
function replyToClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let status: number;
  let body: ErrorBody;
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    status = HTTP_STATUS.HEADERS_TOO_LARGE!;
    body = errorBody('HEADERS_TOO_LARGE', 'request headers are over the size limit; send smaller headers');
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = HTTP_STATUS.REQUEST_TIMEOUT!;
    body = errorBody('REQUEST_TIMEOUT', 'the request did not arrive in time');
  } else {
    status = HTTP_STATUS.BAD_REQUEST!;
    body = errorBody('BAD_REQUEST', 'malformed HTTP request');
  }
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}

/** Routes as patterns, to tell "no such path" (404) from "not with this method" (405). */
class RouteTable {
  private readonly routes = new Map<string, { pattern: RegExp; methods: Set<string> }>();

  add(url: string, method: string | string[]): void {
    let entry = this.routes.get(url);
    if (!entry) {
      const source = url
        .split('/')
        .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      entry = { pattern: new RegExp(`^${source}$`), methods: new Set() };
      this.routes.set(url, entry);
    }
    for (const m of Array.isArray(method) ? method : [method]) entry.methods.add(m.toUpperCase());
  }

  /** The methods the path takes, sorted; empty when no route has the path. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const { pattern, methods: ms } of this.routes.values())
      if (pattern.test(path)) for (const m of ms) methods.add(m);
    return [...methods].sort();
  }
}

/**
 * The handlers that shape every reply: the error handler, not-found (404) or wrong method (405),
 * and 503 while shutting down. Call before the routes are added: it learns them as they come.
 */
export function installErrorReplies(fastify: FastifyInstance): void {
  const routes = new RouteTable();
  let closing = false;
  fastify.addHook('onRoute', (route) => routes.add(route.url, route.method));
  fastify.addHook('preClose', async () => {
    closing = true;
  });
  fastify.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    return reply
      .code(HTTP_STATUS.SHUTTING_DOWN!)
      .header('connection', 'close')
      .header('retry-after', '1')
      .send(errorBody('SHUTTING_DOWN', 'the gateway is shutting down; send the request again'));
  });
  fastify.setErrorHandler((error, request, reply) =>
    sendError(request, reply, error, (e) => request.log.error({ err: e }, 'unhandled error in request')),
  );
  fastify.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = routes.allowed(path);
    if (allowed.length > 0) {
      void reply
        .code(HTTP_STATUS.METHOD_NOT_ALLOWED!)
        .header('allow', allowed.join(', '))
        .send(
          errorBody(
            'METHOD_NOT_ALLOWED',
            `${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}`,
            {
              allowed,
            },
          ),
        );
      return;
    }
    void reply
      .code(HTTP_STATUS.NOT_FOUND!)
      .send(errorBody('NOT_FOUND', `no route ${request.method} ${path}`));
  });
}
