import type { Socket } from 'socket.io';

/**
 * A socket.io EVENT packet on the main namespace, as socket.io-parser encodes one without binary
 * data: the type digit, then the JSON array of name and arguments (socket.io protocol v5). Encoded
 * once per event, it is what the gateway both writes to sockets and keeps for replay.
 */
export function encodeEvent(name: string, payload: unknown): string {
  return `2${JSON.stringify([name, payload])}`;
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

/** Whether an encoded packet is a `stream` event (else `progress`): replay keeps only packets. */
export const isStreamPacket = (packet: string): boolean => packet.startsWith('2["stream"');
