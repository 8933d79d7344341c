// The one socket.io connection of the page. The token goes in `auth`, never in the URL. Views
// register what they watch; it is asked for again after every (re)connect.
import { signal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { io, type Socket } from 'socket.io-client';
import { signOut } from './session.js';

export const connection = signal<'connecting' | 'connected' | 'offline'>('connecting');

let socket: Socket | null = null;
const onConnectHandlers = new Set<(s: Socket) => void>();

export function openSocket(token: string): Socket {
  closeSocket();
  const s = io({ auth: { token }, transports: ['websocket'], reconnectionDelayMax: 5000 });
  socket = s;
  connection.value = 'connecting';
  s.on('connect', () => {
    connection.value = 'connected';
    for (const handler of onConnectHandlers) handler(s);
  });
  s.on('disconnect', () => (connection.value = 'offline'));
  s.on('connect_error', (error: Error & { data?: { code?: string } }) => {
    // Refused by the gateway's auth check: retrying with the same token cannot succeed.
    if (error.data?.code === 'UNAUTHORIZED' || !s.active) {
      closeSocket();
      signOut(`Your token was not accepted: ${error.message}`);
    } else connection.value = 'offline';
  });
  s.on('error', (error: { code?: string; message?: string }) => {
    if (error?.code === 'TOKEN_EXPIRED') {
      closeSocket();
      signOut('Your token has expired: sign in with a fresh one.');
    }
  });
  return s;
}

export function closeSocket(): void {
  socket?.removeAllListeners();
  socket?.disconnect();
  socket = null;
  connection.value = 'offline';
}

/** Runs `handler` now if connected and after every reconnect, until the returned function is called. */
export function onConnect(handler: (s: Socket) => void): () => void {
  onConnectHandlers.add(handler);
  if (socket?.connected) handler(socket);
  return () => onConnectHandlers.delete(handler);
}

export function currentSocket(): Socket | null {
  return socket;
}

/**
 * Listens to a socket event while the component is mounted; the latest handler is always called
 * (no re-subscription per render). `watch`, if given, is emitted on every connect and `unwatch`
 * on unmount.
 */
export function useSocket<T>(
  event: string,
  handler: (payload: T) => void,
  watch?: { start: (s: Socket) => void; stop?: (s: Socket) => void; key?: unknown },
): void {
  const latest = useRef(handler);
  latest.current = handler;
  const start = useRef(watch?.start);
  start.current = watch?.start;
  const stop = useRef(watch?.stop);
  stop.current = watch?.stop;
  useEffect(() => {
    const listener = (payload: T) => latest.current(payload);
    const attach = (s: Socket) => {
      s.off(event, listener);
      s.on(event, listener);
      start.current?.(s);
    };
    const detach = onConnect(attach);
    return () => {
      detach();
      const s = socket;
      if (s) {
        s.off(event, listener);
        if (s.connected) stop.current?.(s);
      }
    };
  }, [event, watch?.key]);
}
