/**
 * What one connection can make the gateway hold before it has said who it is. engine.io reads a
 * client's WebSocket frames and its polling request bodies before socket.io's middleware checks
 * the token, so these limits bind every peer that can reach the port, signed in or not.
 *
 * AIECS_WS_MAX_MESSAGE_BYTES bounds a message's payload, but not the parts it arrives in: ws keeps
 * every fragment of an unfinished message, and every chunk read off the socket until a frame is
 * whole, as a Buffer of its own, and engine.io keeps every chunk of a polling body. Measured with
 * ws 8.23's defaults (16,384 fragments): ten connections that each sent 16,000 one-byte fragments
 * of a message never finished held 18.3 MB after a full GC (about 115 bytes a fragment), 1.5 MB
 * with the limits below, which closed all ten. Chunks had no useful bound before engine.io 6.6.13
 * (ws's default is 262,144, and a polling body had none); 6.6.13 sets 10,000 for both. Here the
 * part counts scale with the message limit, so one connection holds at most about the message
 * limit plus 8-16 KB of parts: 64 fragments and 128 chunks at the default 64 KiB.
 *
 * No client of ours needs more: browsers and socket.io-client send a message as one frame, which
 * arrives in few reads (a 64 KiB frame is about 45 TCP segments of 1,460 bytes at worst).
 */
import { WebSocketServer, type ServerOptions } from 'ws';

export interface SocketLimits {
  /** Fragments of one WebSocket message; past it ws closes the connection (1008). */
  maxFragments: number;
  /** Chunks ws keeps while a frame is incomplete, and engine.io of one polling body (413). */
  maxBufferedChunks: number;
}

/** At least one fragment per KiB of the message limit (16 at the least). */
const BYTES_PER_FRAGMENT = 1024;
/** At least one read per 512 bytes of the message limit (64 at the least). */
const BYTES_PER_CHUNK = 512;

export function socketLimits(maxMessageBytes: number): SocketLimits {
  return {
    maxFragments: Math.max(16, Math.ceil(maxMessageBytes / BYTES_PER_FRAGMENT)),
    maxBufferedChunks: Math.max(64, Math.ceil(maxMessageBytes / BYTES_PER_CHUNK)),
  };
}

/**
 * ws's server with these limits, for engine.io's `wsEngine` option: engine.io makes the server
 * itself and passes it no fragment limit (6.6.13 passes `maxBufferedChunks`, its own option).
 */
export function boundedWsEngine(
  limits: SocketLimits,
): new (options?: ServerOptions, callback?: () => void) => WebSocketServer {
  return class BoundedWebSocketServer extends WebSocketServer {
    constructor(options?: ServerOptions, callback?: () => void) {
      super(
        { ...options, maxFragments: limits.maxFragments, maxBufferedChunks: limits.maxBufferedChunks },
        callback,
      );
    }
  };
}
