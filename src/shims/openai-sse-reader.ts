/**
 * Reads an OpenAI chat completion event stream without the SDK's Stream.
 *
 * Written against openai 6.30.1 (`core/streaming.mjs`: `Stream.fromSSEResponse`,
 * `_iterSSEMessages`, `SSEDecoder`; `internal/decoders/line.mjs`: `LineDecoder`).
 *
 * What it replaces: `for await (const chunk of stream)` over the SDK's Stream. The SDK still
 * makes the request (auth, headers, base URL, HTTP errors as APIError); the provider takes the
 * raw response with `.asResponse()` and hands it here. The SDK copies its byte buffer on every
 * chunk and passes each event through three async generators; this decodes text once and calls
 * back synchronously.
 *
 * Why it stays (issue 14 §2, measured 2026-12-04 on the 2-core shared machine, openai 6.30.1):
 * - 2,000 concurrent 50-token streams through OpenAiProvider in one process, 10 runs each,
 *   alternating: 2.12 CPU s with this reader (1.89–2.62) against 2.96 with the SDK's Stream
 *   (2.71–3.22), every run of the SDK above every run of this reader;
 * - the bench's LLM section (2,000 llm_chat tasks, one worker), 4 alternating rounds: worker CPU
 *   4.26 s (4.07–4.53) against 4.99 s (4.65–5.13); wall time was within the machine's noise
 *   (6.4 s against 6.2 s median, 4.4–10.2 s spread).
 *
 * What it relies on, checked by openai-sse-reader.test.ts (which fails on another openai
 * version): `.asResponse()` of a streaming create gives the response with its body unread; the
 * SDK's SSE rules (below); and what its Stream does with each event of a chat completion:
 * `[DONE]` ends the stream (later events are ignored), an event whose JSON has `error` becomes
 * `new APIError(undefined, error, undefined, headers)`, anything else is one chunk.
 */
import { APIConnectionError, APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';

/** One server-sent event: its `event` field (null when it has none) and its data lines, joined. */
export interface SseMessage {
  event: string | null;
  data: string;
}

/**
 * Reads server-sent events from a fetch body and hands each to `onMessage` as it completes.
 *
 * The rules are those of the openai SDK's own decoder (the SSE format): a blank line ends an
 * event; `event:` and `data:` fields, one optional space after the colon, several `data:` lines
 * joined by newlines; lines starting with `:` are comments; LF, CRLF or CR end a line; an event
 * the stream ends inside of is dropped. The SDK copies the byte buffer on every chunk and passes
 * each event through three async generators: with 2,000 answers streaming at once that was a
 * sixth of a worker's CPU. This decodes text once and calls back synchronously.
 *
 * A throw from `onMessage`, or a failed read, cancels the body (the connection closes) and
 * rejects.
 */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onMessage: (message: SseMessage) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  // A CR at the end of a chunk may be the first half of a CRLF: held until the next chunk.
  let heldCr = false;
  let event: string | null = null;
  let data: string[] = [];

  const onLine = (line: string) => {
    if (line === '') {
      if (event !== null || data.length > 0) {
        const message: SseMessage = { event, data: data.join('\n') };
        event = null;
        data = [];
        onMessage(message);
      }
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32 /* space */) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  };

  const take = (text: string) => {
    if (heldCr) {
      text = `\r${text}`;
      heldCr = false;
    }
    if (text.endsWith('\r')) {
      heldCr = true;
      text = text.slice(0, -1);
    }
    if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
    buffer += text;
    let start = 0;
    let end: number;
    while ((end = buffer.indexOf('\n', start)) !== -1) {
      onLine(buffer.slice(start, end));
      start = end + 1;
    }
    buffer = start === 0 ? buffer : buffer.slice(start);
  };

  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      take(decoder.decode(value, { stream: true }));
    }
    take(decoder.decode());
    if (heldCr) take('\n');
  } catch (error) {
    await reader.cancel(error).catch(() => undefined);
    throw error;
  } finally {
    reader.releaseLock();
  }
}

/**
 * The chunks of a streamed chat completion, as the SDK's Stream would yield them, handed to
 * `onChunk` as they arrive. Rejects with APIError for an error event; a throw from `onChunk`
 * cancels the body and rejects with it.
 */
export async function readChatCompletionStream(
  response: Response,
  onChunk: (chunk: ChatCompletionChunk) => void,
): Promise<void> {
  if (!response.body) throw new APIConnectionError({ message: 'the response has no body' });
  let done = false;
  await readSse(response.body, (sse) => {
    if (done) return;
    if (sse.data.startsWith('[DONE]')) {
      done = true;
      return;
    }
    const chunk = JSON.parse(sse.data) as ChatCompletionChunk & { error?: unknown };
    if (chunk?.error) throw new APIError(undefined, chunk.error, undefined, response.headers);
    onChunk(chunk);
  });
}
