// The reply a request gets while the server shuts down; the other error replies are checked
// against a whole gateway in test/gateway-edge.test.ts.
import { connect } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { errorReplyOptions, installErrorReplies } from './error-replies.js';

describe('error replies while shutting down', () => {
  let fastify: FastifyInstance | undefined;
  afterEach(async () => {
    await fastify?.close();
  });

  it('answers a request routed while the server closes with 503 SHUTTING_DOWN in the documented shape', async () => {
    const app = Fastify(errorReplyOptions(silentLogger));
    fastify = app;
    installErrorReplies(app);
    let closing!: () => void;
    const closingSeen = new Promise<void>((resolve) => (closing = resolve));
    let routed!: () => void;
    const firstRouted = new Promise<void>((resolve) => (routed = resolve));
    // Both run after installErrorReplies' own hooks.
    app.addHook('preClose', async () => closing());
    app.addHook('onRequest', async () => routed());
    app.post('/echo', async (request) => request.body);
    app.get('/ping', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };

    // One connection: the first request's body is held back, so the connection stays busy while
    // the server closes; the second, pipelined behind it, is routed once it is closing.
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a"',
    );
    await firstRouted;
    const closed = app.close();
    await closingSeen;
    socket.write(':1}GET /ping HTTP/1.1\r\nHost: x\r\n\r\n');
    await ended;
    await closed;
    fastify = undefined;

    const responses = text.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200/);
    expect(responses[1]).toMatch(/^HTTP\/1\.1 503/);
    expect(responses[1]).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(JSON.parse(responses[1]!.split('\r\n\r\n')[1]!)).toEqual({
      error: {
        code: 'SHUTTING_DOWN',
        message: 'the gateway is shutting down; send the request again',
        details: {},
      },
    });
  });
});
