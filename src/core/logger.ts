import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** The root logger: JSON lines on stderr, so stdout stays free for command output. */
export function createLogger(level = process.env.AIECS_LOG_LEVEL ?? 'info', name = 'aiecs'): Logger {
  return pino({ name, level }, pino.destination({ fd: 2, sync: false }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
