/**
 * What an engine.io connection has waiting for a client, and dropping it.
 *
 * Written against engine.io 6.6.13 (socket.io 4.8.4): `Socket.writeBuffer`, a private array of
 * packets sendPacket queues and flush hands the transport once it is writable again, and, for the
 * websocket transport, ws's `bufferedAmount` on `transport.socket`.
 *
 * Why a shim: engine.io has no public way to ask how much a connection has queued, nor to drop
 * that queue. The gateway needs both to let go of a client that stopped reading before it grows
 * the process without bound (realtime.ts, dropSlowClients): `disconnect(true)` alone waits for the
 * queue to drain (engine.io's close), which a stalled client never does, and its disconnect packet
 * would sit behind megabytes. It runs in a sweep every 250 ms, off the event path, so it is kept
 * for what it does, not for speed (no bench figure depends on it). engineio-backlog.test.ts pins
 * the fields on a live connection and the hashes of the engine.io methods that fill and empty them.
 */
import type { Socket } from 'socket.io';

interface EngineInternals {
  writeBuffer?: Array<{ data?: unknown }>;
  transport?: { socket?: { bufferedAmount?: number } };
}

/** Packets and bytes the connection holds for its client: engine.io's queue and the socket's buffer. */
export function backlogOf(socket: Socket): { packets: number; bytes: number } {
  const conn = socket.conn as unknown as EngineInternals;
  const queued = conn.writeBuffer ?? [];
  // The backlog sits mostly in engine.io's queue (it hands the socket one batch at a time and
  // waits for it to drain), so count those packets' bytes as well as the socket's own buffer
  // (ws's bufferedAmount already includes the TCP socket's writableLength).
  let bytes = conn.transport?.socket?.bufferedAmount ?? 0;
  for (const packet of queued) {
    const data = packet.data;
    bytes += typeof data === 'string' ? data.length : ((data as { byteLength?: number })?.byteLength ?? 0);
  }
  return { packets: queued.length, bytes };
}

/** Empties engine.io's queue, so that what is written next (a disconnect packet) goes out first. */
export function dropBacklog(socket: Socket): void {
  (socket.conn as unknown as EngineInternals).writeBuffer?.splice(0);
}
