/**
 * socket.io events encoded once and written straight to each socket's engine.io connection.
 *
 * Written against socket.io 4.8.4 (socket.io-parser 4.2.7, engine.io 6.6.13): encodeEvent spells
 * an EVENT packet on the main namespace as socket.io-parser's Encoder does without binary data,
 * and writePacket hands it to `socket.conn.write` as socket.io's Client.writeToEngine does. It
 * replaces `io.to(room).emit(name, payload)` (the broadcast operator, flags, room union and the
 * encoder's binary scan per event) for the gateway's task events.
 *
 * Measured (npm run bench --only fanout, 2,000 clients x 20 progress steps, 3 alternating runs
 * with and without it in one session on a loaded 2-core machine): gateway peak RSS median 272 MB
 * (242-272) with it, 370 MB (329-404) without (goal <= 300 MB); paced p99 latency 459 ms
 * (273-871) with, 699 ms (498-850) without; burst p99 873 ms (802-953) with, 1,163 ms
 * (1,092-1,364) without. socketio-write-packet.test.ts pins the encoding and writeToEngine.
 */
import type { Socket } from 'socket.io';

/**
 * A socket.io EVENT packet on the main namespace (protocol v5), without binary data, as one flat
 * string. JSON.stringify builds a string of more than a few dozen characters from parts joined
 * in a tree (V8's ConsString), and the gateway's replay buffer keeps each packet for as long as
 * its task's history: a 211-character progress packet held as that tree costs 421 bytes of heap,
 * flat 294 (100,000 kept, after GC). Sending does not flatten the kept packet: engine.io sends
 * `"4" + packet`, a new string that ws flattens in its place. Decoding the UTF-8 once gives a
 * new flat string (about 0.4 µs an event); the fan-out bench's paced gateway heap had 442,000
 * such parts alive, 14 MB of joins alone.
 */
export function encodeEvent(name: string, payload: unknown): string {
  return Buffer.from(`2${JSON.stringify([name, payload])}`).toString();
}

/**
 * Hands an encoded packet to the socket's engine.io connection, as socket.io's
 * Client.writeToEngine does, and like it writes nothing to a connection that is closing.
 * Returns whether it wrote (the gateway counts events sent).
 */
export function writePacket(socket: Socket | undefined, packet: string): boolean {
  if (!socket?.connected || socket.conn.readyState !== 'open') return false;
  socket.conn.write(packet);
  return true;
}
