import { describe, expect, it } from 'vitest';
import { readSse, type SseMessage } from './sse.js';

/** A body that delivers `parts` as separate chunks, the way a socket may split them. */
function body(parts: Array<string | Uint8Array>): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
} {
  const encoder = new TextEncoder();
  let cancelled = false;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const part = parts[i++];
      if (part === undefined) controller.close();
      else controller.enqueue(typeof part === 'string' ? encoder.encode(part) : part);
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

async function read(parts: Array<string | Uint8Array>): Promise<SseMessage[]> {
  const messages: SseMessage[] = [];
  await readSse(body(parts).stream, (m) => messages.push(m));
  return messages;
}

describe('readSse', () => {
  it('reads data and event fields, joins data lines, skips comments', async () => {
    const text = ': keep-alive\n\ndata: {"a":1}\n\nevent: error\ndata: line one\ndata:line two\n\ndata\n\n';
    expect(await read([text])).toEqual([
      { event: null, data: '{"a":1}' },
      { event: 'error', data: 'line one\nline two' },
      { event: null, data: '' },
    ]);
  });

  it('gives the same events however the stream is split, with LF, CRLF or CR line ends', async () => {
    const events = ['data: {"n":1}', 'data: {"n":2}\ndata: more', 'event: x\ndata: é ✓'];
    const expected = [
      { event: null, data: '{"n":1}' },
      { event: null, data: '{"n":2}\nmore' },
      { event: 'x', data: 'é ✓' },
    ];
    for (const eol of ['\n', '\r\n', '\r']) {
      const whole = events.map((e) => e.replace(/\n/g, eol) + eol + eol).join('');
      const bytes = new TextEncoder().encode(whole);
      // Every split point, including inside a CRLF and inside a multi-byte character.
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(await read([bytes.slice(0, cut), bytes.slice(cut)])).toEqual(expected);
      }
      // One byte at a time.
      expect(await read([...bytes].map((b) => Uint8Array.of(b)))).toEqual(expected);
    }
  });

  it('drops an event the stream ends inside of, as the SSE rules say', async () => {
    expect(await read(['data: done\n\ndata: cut short'])).toEqual([{ event: null, data: 'done' }]);
  });

  it('cancels the body and rejects when the handler throws', async () => {
    const { stream, cancelled } = body(['data: 1\n\n', 'data: 2\n\n', 'data: 3\n\n']);
    const seen: string[] = [];
    await expect(
      readSse(stream, (m) => {
        seen.push(m.data);
        if (m.data === '2') throw new Error('bad event');
      }),
    ).rejects.toThrow('bad event');
    expect(seen).toEqual(['1', '2']);
    expect(cancelled()).toBe(true);
  });
});
