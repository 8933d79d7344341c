import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { coalesceWrites } from './ioredis-coalesced-writes.js';
import { installedVersion } from './test-pins.js';

/** A TCP server that keeps what each connection sends. */
function sink(): Promise<{ server: Server; port: number; received: () => string; closed: Promise<void> }> {
  let data = '';
  let done!: () => void;
  const closed = new Promise<void>((resolve) => (done = resolve));
  const server = createServer((socket) => {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', done);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({ server, port, received: () => data, closed });
    }),
  );
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('coalesceWrites', () => {
  let target: Awaited<ReturnType<typeof sink>>;
  let socket: Socket;

  beforeEach(async () => {
    target = await sink();
    socket = connect(target.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
  });

  afterEach(async () => {
    socket.destroy();
    await new Promise((resolve) => target.server.close(resolve));
  });

  it("sends a turn's first write at once, hands the rest to the kernel together, in order, and leaves the socket uncorked", async () => {
    coalesceWrites(socket);
    const writev = vi.spyOn(socket as unknown as { _writev: () => void }, '_writev');
    const single = vi.spyOn(socket as unknown as { _write: () => void }, '_write');
    socket.write('a');
    // Gone before the turn ends: Redis starts on it while the turn goes on.
    expect(single).toHaveBeenCalledTimes(1);
    socket.write(Buffer.from('b'));
    // Writes from promise reactions of the same turn join the batch too.
    await Promise.resolve();
    socket.write('c');
    expect(writev).not.toHaveBeenCalled();
    expect(single).toHaveBeenCalledTimes(1);
    await turn();
    expect(writev).toHaveBeenCalledTimes(1);
    expect(single).toHaveBeenCalledTimes(1);
    expect(socket.writableCorked).toBe(0);

    // The next turn is its own: a lone write goes out on its own, at once.
    socket.write('d');
    expect(single).toHaveBeenCalledTimes(2);
    await turn();
    expect(socket.writableCorked).toBe(0);
    socket.end();
    await target.closed;
    expect(target.received()).toBe('abcd');
  });

  it('flushes what a turn wrote when the stream is ended in that turn', async () => {
    coalesceWrites(socket);
    socket.write('x');
    socket.write('y');
    socket.end('z');
    await target.closed;
    expect(target.received()).toBe('xyz');
  });

  it('wraps a stream once, however often it is asked', async () => {
    coalesceWrites(socket);
    coalesceWrites(socket);
    const cork = vi.spyOn(socket, 'cork');
    socket.write('1');
    socket.write('2');
    expect(cork).toHaveBeenCalledTimes(1);
    await turn();
    expect(socket.writableCorked).toBe(0);
    socket.end();
    await target.closed;
    expect(target.received()).toBe('12');
  });
});

describe('coalesceWrites on a Redis connection', () => {
  it('answers every command of a burst, in order', async () => {
    const client = new Redis(inject('redisUrl'), { lazyConnect: true });
    client.on('connect', () => coalesceWrites(client.stream));
    await client.connect();
    try {
      const key = `coalesce-test:${process.pid}:${Date.now()}`;
      const replies = await Promise.all(Array.from({ length: 500 }, () => client.incr(key)));
      expect(replies).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      expect(client.stream.writableCorked).toBe(0);

      // A reconnect brings a new socket, batched as the first was.
      const first = client.stream;
      const ready = new Promise((resolve) => client.once('ready', resolve));
      client.disconnect(true);
      await ready;
      expect(client.stream).not.toBe(first);
      const cork = vi.spyOn(client.stream, 'cork');
      const again = await Promise.all(Array.from({ length: 50 }, () => client.incr(key)));
      expect(again.at(-1)).toBe(550);
      expect(cork).toHaveBeenCalledTimes(1);
      await client.del(key);
    } finally {
      client.disconnect();
    }
  });
});

/** Pins what the shim relies on in ioredis: if this fails after an upgrade, re-measure or drop it. */
describe('the coalesced-writes shim pins ioredis', () => {
  it('is written against ioredis 5.11.1, which writes every command through stream.write', async () => {
    expect(installedVersion('ioredis')).toBe('5.11.1');
    const client = new Redis(inject('redisUrl'), { lazyConnect: true });
    await client.connect();
    try {
      const write = vi.spyOn(client.stream, 'write');
      await client.ping();
      expect(write).toHaveBeenCalledTimes(1);
    } finally {
      client.disconnect();
    }
  });
});
