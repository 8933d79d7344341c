import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { logProviderStatus } from '../providers/status.js';
import { formatLogLine, logDestination, prettyLogs } from './log-format.js';

/** A stream that records what is written to it, posing as a terminal or a pipe. */
function fakeStream(isTTY: boolean) {
  const lines: string[] = [];
  return { isTTY, lines, write: (chunk: string) => void lines.push(chunk) };
}

describe('AIECS_LOG_FORMAT', () => {
  it.each([
    ['auto', true, true],
    ['auto', false, false],
    [undefined, true, true],
    [undefined, undefined, false],
    ['json', true, false],
    ['pretty', false, true],
  ] as const)('%s on a TTY=%s stream is pretty: %s', (format, isTTY, pretty) => {
    expect(prettyLogs(format, isTTY)).toBe(pretty);
  });
});

describe('log lines', () => {
  it('on a terminal: one human line per entry, no JSON', () => {
    const tty = fakeStream(true);
    const logger = pino({ name: 'aiecs', level: 'info' }, logDestination('auto', tty));
    logProviderStatus(logger.child({ worker: 'host:1:ab' }), loadConfig({}));
    expect(tty.lines).toHaveLength(2);
    for (const line of tty.lines) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      expect(line).not.toMatch(/[{}]/);
    }
    expect(tty.lines[0]).toMatch(
      /^\d\d:\d\d:\d\d INFO {2}AI providers: none configured; not configured: openai/,
    );
    expect(tty.lines[1]).toMatch(
      /^\d\d:\d\d:\d\d WARN {2}default AI provider openai is not configured: .* worker=host:1:ab provider=openai missing=OPENAI_API_KEY\n$/,
    );
  });

  it('through a pipe: pino JSON, unchanged', () => {
    const pipe = fakeStream(false);
    pino({ name: 'aiecs' }, logDestination('auto', pipe)).warn({ store: 'redis://x' }, 'reconnecting');
    expect(JSON.parse(pipe.lines[0] ?? '')).toMatchObject({
      level: 40,
      msg: 'reconnecting',
      store: 'redis://x',
    });
  });

  it('AIECS_LOG_FORMAT=json keeps JSON on a terminal; pretty makes human lines in a pipe', () => {
    const tty = fakeStream(true);
    pino({}, logDestination('json', tty)).info('hello');
    expect(JSON.parse(tty.lines[0] ?? '')).toMatchObject({ msg: 'hello' });
    const pipe = fakeStream(false);
    pino({}, logDestination('pretty', pipe)).info('hello');
    expect(pipe.lines[0]).toMatch(/^\d\d:\d\d:\d\d INFO {2}hello\n$/);
  });

  it('shows errors by message, quotes what needs it, and leaves nested data to JSON', () => {
    const line = formatLogLine(
      JSON.stringify({
        level: 50,
        time: Date.UTC(2026, 0, 1, 12, 0, 0),
        pid: 1,
        hostname: 'h',
        msg: 'storage failed\n  at line two',
        err: { type: 'Error', message: 'connect ECONNREFUSED', stack: 'Error: …\n    at x' },
        store: 'embedded:/tmp/a b',
        queues: ['fast_tasks', 'heavy_tasks'],
        concurrency: { fast_tasks: 100, heavy_tasks: 2 },
        providers: [{ name: 'openai', limits: { concurrency: 50 } }],
        empty: '',
        ok: true,
      }),
    );
    expect(line).toMatch(/^\d\d:\d\d:\d\d ERROR storage failed at line two {2}/);
    expect(line).toContain('err="connect ECONNREFUSED"');
    expect(line).toContain('store="embedded:/tmp/a b"');
    expect(line).toContain('queues=fast_tasks,heavy_tasks');
    expect(line).toContain('concurrency=fast_tasks:100,heavy_tasks:2');
    expect(line).toContain('empty="" ok=true');
    expect(line).not.toContain('providers');
    expect(line).not.toContain('pid');
    expect(line.split('\n')).toHaveLength(2);
  });

  it('passes a line that is not JSON through as it is', () => {
    expect(formatLogLine('plain text')).toBe('plain text\n');
  });
});
