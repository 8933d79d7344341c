/**
 * The gateway's port, checked before anything else starts: a busy port is then one line with
 * the way out, not a store opened and a worker started and stopped for nothing.
 */
import { createServer } from 'node:net';
import { AiecsError } from '../core/errors.js';

/** The gateway cannot listen where it was told to. */
export class PortUnavailableError extends AiecsError {
  override readonly code = 'PORT_UNAVAILABLE';
  constructor(
    message: string,
    readonly port: number,
    readonly host: string,
    options?: { cause?: unknown },
  ) {
    super(message, { port, host }, options);
  }
}

/**
 * The listen error as one line with a hint, for the errors a user can fix with --port or --host;
 * anything else is returned unchanged. `holder` guesses who holds the port.
 */
export function portError(error: unknown, port: number, host: string, holder: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const fix = 'pass --port N or set PORT';
  if (code === 'EADDRINUSE')
    return new PortUnavailableError(`port ${port} is in use (${holder}); ${fix}`, port, host, {
      cause: error,
    });
  if (code === 'EACCES')
    return new PortUnavailableError(
      `port ${port} needs privileges this user lacks (ports below 1024 usually do); ${fix}`,
      port,
      host,
      { cause: error },
    );
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    return new PortUnavailableError(
      `cannot listen on ${host}: no such address on this machine; pass --host H or set AIECS_HOST`,
      port,
      host,
      { cause: error },
    );
  return error;
}

/** Resolves when `host:port` can be listened on now; port 0 (any free port) always can. */
export async function checkPort(port: number, host: string, holder: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(portError(error, port, host, holder)));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}
