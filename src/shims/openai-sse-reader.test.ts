import OpenAI, { type APIError } from 'openai';
import { Stream } from 'openai/streaming';
import { VERSION } from 'openai/version';
import { describe, expect, it } from 'vitest';
import { readChatCompletionStream, readSse, type SseMessage } from './openai-sse-reader.js';

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

/** What a reader made of a stream: its chunks, then how it ended. */
interface Outcome {
  chunks: unknown[];
  error?: { name: string; message: string; status: unknown; error: unknown };
}

function sseResponse(parts: Array<string | Uint8Array>): Response {
  return new Response(body(parts).stream, {
    headers: { 'content-type': 'text/event-stream', 'x-request-id': 'r1' },
  });
}

async function outcome(run: (onChunk: (chunk: unknown) => void) => Promise<void>): Promise<Outcome> {
  const chunks: unknown[] = [];
  try {
    await run((chunk) => chunks.push(chunk));
    return { chunks };
  } catch (error) {
    const e = error as APIError;
    return {
      chunks,
      error: { name: e.constructor.name, message: e.message, status: e.status, error: e.error },
    };
  }
}

const viaShim = (parts: Array<string | Uint8Array>) =>
  outcome((onChunk) => readChatCompletionStream(sseResponse(parts), onChunk));

const viaSdk = (parts: Array<string | Uint8Array>) =>
  outcome(async (onChunk) => {
    for await (const chunk of Stream.fromSSEResponse(sseResponse(parts), new AbortController()))
      onChunk(chunk);
  });

const chunk = (content: string, finish: string | null = null) =>
  JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  });

/** Streams the shim must read exactly as the SDK's Stream does. */
const STREAMS: Record<string, string> = {
  'a chat completion with usage, then [DONE]': [
    `data: ${chunk('Hel')}\n\n`,
    `data: ${chunk('lo é ✓')}\n\n`,
    `data: ${chunk('', 'stop')}\n\n`,
    'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
    'data: [DONE]\n\n',
  ].join(''),
  'events after [DONE] ignored': `data: ${chunk('a')}\n\ndata: [DONE]\n\ndata: ${chunk('late')}\n\n`,
  'comments, event names, CRLF and data over two lines': `: ping\r\n\r\nevent: message\r\ndata: ${chunk('x')}\r\n\r\ndata: {"id":"c1","choices":\r\ndata: []}\r\n\r\n`,
  'an event the stream ends inside of': `data: ${chunk('kept')}\n\ndata: ${chunk('cut')}`,
  'an error event mid-stream': `data: ${chunk('a')}\n\ndata: {"error":{"message":"overloaded","type":"server_error","code":null}}\n\ndata: ${chunk('b')}\n\n`,
  'an error event named error': `event: error\ndata: {"error":{"message":"bad things"}}\n\n`,
};

describe('readChatCompletionStream, pinned to openai 6.30.1', () => {
  it('is written against openai 6.30.1: on another version, re-check the shim against the SDK (see its header)', () => {
    expect(VERSION).toBe('6.30.1');
  });

  for (const [name, text] of Object.entries(STREAMS)) {
    it(`yields what the SDK's Stream yields: ${name}`, async () => {
      const bytes = new TextEncoder().encode(text);
      const sdk = await viaSdk([bytes]);
      expect(sdk.chunks.length + (sdk.error ? 1 : 0)).toBeGreaterThan(0);
      expect(await viaShim([bytes])).toEqual(sdk);
      // Split anywhere, the shim still reads what the SDK reads from the whole.
      for (const cut of [1, 7, Math.floor(bytes.length / 2), bytes.length - 1])
        expect(await viaShim([bytes.slice(0, cut), bytes.slice(cut)])).toEqual(sdk);
    });
  }

  it('gets the unread body of a streaming create from the SDK with .asResponse()', async () => {
    const requests: string[] = [];
    const client = new OpenAI({
      apiKey: 'k',
      baseURL: 'http://127.0.0.1:1/v1',
      maxRetries: 0,
      fetch: async (url) => {
        requests.push(String(url));
        return sseResponse([`data: ${chunk('hi', 'stop')}\n\n`, 'data: [DONE]\n\n']);
      },
    });
    const response = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true })
      .asResponse();
    expect(response.bodyUsed).toBe(false);
    const got = await outcome((onChunk) => readChatCompletionStream(response, onChunk));
    expect(got.chunks).toEqual([JSON.parse(chunk('hi', 'stop'))]);
    expect(requests).toEqual(['http://127.0.0.1:1/v1/chat/completions']);
  });
});
