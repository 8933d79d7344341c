/**
 * A small fake OpenAI chat completions server on loopback for the `llm` section (dist/ has no
 * test/, so the test suite's fake server is not available to the built bench). POST
 * /v1/chat/completions answers every request with `tokens` copies of TOKEN spread evenly over
 * `replyMs`: streamed as SSE `chat.completion.chunk`s (then usage and `[DONE]`) with `stream: true`,
 * else as one JSON body after `replyMs`. One shared timer drives every open stream, so thousands
 * of concurrent streams cost one timer, not thousands.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Every streamed token is this word, so the tokens that reach a client can be counted. */
export const TOKEN = 'tok ';

export interface FakeOpenAiOptions {
  /** Tokens per answer. */
  tokens: number;
  /** Time from the request to the last token. */
  replyMs: number;
}

export interface FakeOpenAi {
  /** OPENAI_BASE_URL for the SDK: http://127.0.0.1:<port>/v1 */
  baseUrl: string;
  /** Chat completion requests received. */
  requests(): number;
  /** Most requests being answered at once. */
  maxInFlight(): number;
  stop(): Promise<void>;
}

interface OpenStream {
  res: ServerResponse;
  id: string;
  model: string;
  created: number;
  promptTokens: number;
  /** Tokens still to send. */
  left: number;
  /** Ticks to wait before the next token. */
  wait: number;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (data += chunk));
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

interface ChatBody {
  model?: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  messages?: Array<{ content?: unknown }>;
}

export async function startFakeOpenAi(options: FakeOpenAiOptions): Promise<FakeOpenAi> {
  const { tokens, replyMs } = options;
  // One token per tick: `tokens` ticks span `replyMs` (10 ms for 50 tokens in 500 ms).
  const tickMs = Math.max(1, Math.round(replyMs / tokens));
  const streams = new Set<OpenStream>();
  const sockets = new Set<Socket>();
  let requests = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let nextId = 1;
  let timer: NodeJS.Timeout | undefined;

  const chunk = (s: OpenStream, delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({
      id: s.id,
      object: 'chat.completion.chunk',
      created: s.created,
      model: s.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    })}\n\n`;

  const done = (s: OpenStream) => {
    streams.delete(s);
    if (!s.res.destroyed) {
      s.res.write(chunk(s, {}, 'stop'));
      s.res.write(
        `data: ${JSON.stringify({
          id: s.id,
          object: 'chat.completion.chunk',
          created: s.created,
          model: s.model,
          choices: [],
          usage: {
            prompt_tokens: s.promptTokens,
            completion_tokens: tokens,
            total_tokens: s.promptTokens + tokens,
          },
        })}\n\ndata: [DONE]\n\n`,
      );
      s.res.end();
    }
    if (streams.size === 0) stopTicking();
  };

  const tick = () => {
    for (const s of streams) {
      if (s.res.destroyed) {
        streams.delete(s);
        continue;
      }
      if (--s.wait > 0) continue;
      s.wait = 1;
      s.res.write(chunk(s, { content: TOKEN }, null));
      if (--s.left === 0) done(s);
    }
    if (streams.size === 0) stopTicking();
  };
  const stopTicking = () => {
    clearInterval(timer);
    timer = undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    let body: ChatBody;
    try {
      body = JSON.parse(raw || '{}') as ChatBody;
    } catch {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: 'invalid JSON' } }));
      return;
    }
    requests += 1;
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => (inFlight -= 1));
    const model = body.model ?? 'unknown';
    const id = `chatcmpl-${nextId++}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = (body.messages ?? [])
      .map((m) => (typeof m.content === 'string' ? m.content : ''))
      .join(' ')
      .split(/\s+/)
      .filter(Boolean).length;

    if (body.stream !== true) {
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id,
            object: 'chat.completion',
            created,
            model,
            choices: [
              {
                index: 0,
                message: { role: 'assistant', content: TOKEN.repeat(tokens) },
                finish_reason: 'stop',
              },
            ],
            usage: {
              prompt_tokens: promptTokens,
              completion_tokens: tokens,
              total_tokens: promptTokens + tokens,
            },
          }),
        );
      }, replyMs);
      return;
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const s: OpenStream = { res, id, model, created, promptTokens, left: tokens, wait: 1 };
    res.write(chunk(s, { role: 'assistant', content: '' }, null));
    streams.add(s);
    timer ??= setInterval(tick, tickMs);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('fake OpenAI server has no address');

  return {
    baseUrl: `http://127.0.0.1:${address.port}/v1`,
    requests: () => requests,
    maxInFlight: () => maxInFlight,
    async stop() {
      stopTicking();
      streams.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
