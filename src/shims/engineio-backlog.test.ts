import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Server, type Socket } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { backlogOf, dropBacklog } from './engineio-backlog.js';
import { installedVersion, sourceHash } from './test-pins.js';

const require = createRequire(import.meta.url);
const { Socket: EngineSocket } = require('engine.io') as { Socket: { prototype: Record<string, unknown> } };

/**
 * Pins what engineio-backlog.ts reads and empties in engine.io. If this fails after an upgrade,
 * read the new engine.io Socket (build/socket.js): is `writeBuffer` still the array sendPacket
 * pushes to and flush empties, does close still wait for it to drain, and is ws's socket still
 * `transport.socket`? Or is there now a public way to read and drop the queue (then use it and
 * delete the shim)? Then update the pins.
 */
describe('the engine.io backlog shim pins engine.io', () => {
  it('is written against engine.io 6.6.13 (socket.io 4.8.4)', () => {
    expect(installedVersion('engine.io')).toBe('6.6.13');
    expect(installedVersion('socket.io')).toBe('4.8.4');
  });

  it('the methods that fill, flush and close the queue are the ones it was written against', () => {
    const pinned: Record<string, string> = {
      sendPacket: 'a94abb8dd747d4f55bc7611143b185d384463afd5ee9f006a5cde5a1851c0a05',
      flush: 'd9d06e41305e94f70eed115b073b4a12c21e8dca3a9e9d3a24de29e62287d10c',
      close: 'ac5f68cb49414e7875f3ac5430eb16d16ad2e5866d6d720255697f5cd6cc506e',
      onClose: '8e7e287bc3f2a7e206a238ab7daf7007dc8d0fde00d73488e42597052f013d03',
    };
    for (const [name, hash] of Object.entries(pinned))
      expect({ name, hash: sourceHash(EngineSocket.prototype[name]) }).toEqual({ name, hash });
  });

  it("a live websocket connection has the queue and the ws socket's buffer it reads", async () => {
    const http = createServer();
    const server = new Server(http, { serveClient: false });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const joined = new Promise<Socket>((resolve) => server.on('connection', resolve));
    const client = connect(`http://127.0.0.1:${(http.address() as AddressInfo).port}`, {
      transports: ['websocket'],
    });
    try {
      const socket = await joined;
      const conn = socket.conn as unknown as { writeBuffer: unknown; transport: { socket: unknown } };
      expect(Array.isArray(conn.writeBuffer)).toBe(true);
      expect(typeof (conn.transport.socket as { bufferedAmount?: unknown }).bufferedAmount).toBe('number');
      // A packet waiting in the queue, as one does while the transport is not writable.
      (conn.writeBuffer as unknown[]).push({ type: 'message', data: 'y'.repeat(10) });
      const backlog = backlogOf(socket);
      expect(backlog.packets).toBe(1);
      expect(backlog.bytes).toBeGreaterThanOrEqual(10);
      dropBacklog(socket);
      expect(backlogOf(socket).packets).toBe(0);
    } finally {
      client.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
