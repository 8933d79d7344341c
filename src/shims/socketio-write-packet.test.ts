import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
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
  it('is written against socket.io 4.8.4 and engine.io 6.6.12', () => {
    expect(installedVersion('socket.io')).toBe('4.8.4');
    expect(installedVersion('engine.io')).toBe('6.6.12');
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
