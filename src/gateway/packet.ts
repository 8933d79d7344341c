/**
 * The gateway's task events go out encoded once (src/shims/socketio-write-packet.ts); the replay
 * buffer keeps them as packets.
 */
export { encodeEvent, writePacket } from '../shims/socketio-write-packet.js';

/** Whether an encoded packet is a `stream` event (else `progress`): replay keeps only packets. */
export const isStreamPacket = (packet: string): boolean => packet.startsWith('2["stream"');
