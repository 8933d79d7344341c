import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { encodeEvent } from './socketio-write-packet.js';
import { installedVersion, packageDir, sha256, sourceHash } from './test-pins.js';

const require = createRequire(import.meta.url);
const parser = require('socket.io-parser') as {
  Encoder: new () => { encode(packet: object): unknown[] };
  PacketType: { EVENT: number };
};
const { Socket: EngineSocket } = require('engine.io') as { Socket: { prototype: Record<string, unknown> } };

/**
 * Pins what socketio-write-packet.ts mirrors. If this fails after an upgrade, compare the new
 * socket.io-parser encoding and Client.writeToEngine with the shim, port what changed (or go
 * back to io.to(room).emit), then update the pins.
 */
describe('the socket.io write-packet shim pins socket.io', () => {
  it('is written against socket.io 4.8.4 and engine.io 6.6.13', () => {
    expect(installedVersion('socket.io')).toBe('4.8.4');
    expect(installedVersion('engine.io')).toBe('6.6.13');
  });

  it("encodes an event as socket.io-parser's Encoder does", () => {
    const payload = { task_id: 't-1', seq: 3, message: 'é "quoted" \n', nested: [1, null, true] };
    expect([encodeEvent('progress', payload)]).toEqual(
      new parser.Encoder().encode({ type: parser.PacketType.EVENT, nsp: '/', data: ['progress', payload] }),
    );
  });

  it("writes as socket.io's Client.writeToEngine did, through engine.io's write", () => {
    const client = readFileSync(join(packageDir('socket.io'), 'dist/client.js'), 'utf8');
    const writeToEngine =
      / {4}writeToEngine\(encodedPackets, opts\) \{[\s\S]*?\n {4}\}\n/.exec(client)?.[0] ?? '';
    expect(sha256(writeToEngine)).toBe('a84ef9b00168f32e624a22adb570ad7ac6d5f0f9b90899111ca4d83bb6acbf2b');
    expect(sourceHash(EngineSocket.prototype.write)).toBe(
      'bff2c3fe2d0393298129a4c291926ed5a94f6ccb9b4d9fa58c58abea76db84dc',
    );
  });
});

describe('encodeEvent', () => {
  it('returns a flat string: a kept packet costs its characters, not the parts JSON.stringify joined', () => {
    // The heap's figures after a full collection (Node's documented way to reach gc at run time).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const count = 20_000;
    const payload = (i: number) => ({
      task_id: `0f9c2a4e-1b2d-4c3e-8f00-${String(i).padStart(12, '0')}`,
      seq: i,
      status: 'running',
      progress: i % 100,
      message: `step ${i % 20} of 20: reading the next part of the document`,
    });
    const heapPerPacket = (encode: (i: number) => string) => {
      gc();
      const before = process.memoryUsage().heapUsed;
      const kept = Array.from({ length: count }, (_, i) => encode(i));
      gc();
      const bytes = (process.memoryUsage().heapUsed - before) / count;
      return { bytes, length: kept[0]!.length };
    };
    const joined = heapPerPacket((i) => `2${JSON.stringify(['progress', payload(i)])}`);
    const flat = heapPerPacket((i) => encodeEvent('progress', payload(i)));
    expect(flat.length).toBe(joined.length);
    // Flat: the characters, a string header and the array's slot; joined: some 130 bytes more.
    expect(flat.bytes).toBeLessThan(flat.length + 48);
    expect(joined.bytes).toBeGreaterThan(flat.bytes + 64);
  });
});
