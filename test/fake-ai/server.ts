/**
 * A fake AI provider on loopback for tests: speaks OpenAI's chat completions API (plain and SSE)
 * and Vertex AI's generateContent / streamGenerateContent (?alt=sse), plus an OAuth token
 * endpoint for Google credentials. Behaviour is scripted per model name (or per `x-fake-script`
 * header); every request is logged with monotonic timestamps, and open connections are tracked
 * so a test can see a cancelled request's connection close.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FakeFailure {
  status: number;
  /** Retry-After header value (seconds or an HTTP-date). */
  retryAfter?: string;
  /** retry-after-ms header value. */
  retryAfterMs?: string;
  message?: string;
}

export interface FakeScript {
  /** The answer, or a function of the request; default: `Echo: <last user message>`. */
  reply?: string | ((request: FakeRequest) => string);
  /** With no reply: answer with `t0 t1 … t{n-1} `, one token each. */
  tokens?: number;
  /** Pause between streamed tokens. */
  tokenDelayMs?: number;
  /** Served to the first requests for this script, in order; then it behaves normally. */
  failFirst?: FakeFailure[];
  /** Every request fails like this. */
  alwaysFail?: FakeFailure;
  /** Wait before answering at all (no headers until then). */
  delayMs?: number;
  /** Streams: send headers (and `stallAfterTokens` tokens), then nothing, until the client goes away. */
  stall?: boolean;
  stallAfterTokens?: number;
  /** Usage to report; `false` reports none. Default: words in / tokens out. */
  usage?: { input: number; output: number } | false;
}

export type FakeApi = 'openai' | 'vertex' | 'token' | 'other';

export interface FakeRequest {
  id: number;
  api: FakeApi;
  method: string;
  path: string;
  model?: string;
  stream: boolean;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The messages as plain {role, content} whatever the API. */
  messages: Array<{ role: string; content: string }>;
  /** Monotonic ms (performance.timeOrigin-based) when the request arrived. */
  receivedAt: number;
  /** When the response was complete (not set when the client went away first). */
  respondedAt?: number;
  /** When the connection to this request closed or the response finished. */
  closedAt?: number;
  status?: number;
  /** The client closed the connection before the response was complete. */
  clientClosed: boolean;
  /** Tokens written to a streamed answer. */
  tokensSent: number;
  socket: Socket;
}

export interface FakeAiServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** OPENAI_BASE_URL for the SDK: `${url}/v1`. */
  openaiBaseUrl: string;
  requests: FakeRequest[];
  /** Scripts by model name (or x-fake-script header). */
  script(key: string, script: FakeScript): void;
  /** Requests being answered right now. */
  inFlight(): number;
  /** Most requests answered at once since start (or the last `resetStats`), per model or overall. */
  maxInFlight(model?: string): number;
  resetStats(): void;
  /** TCP connections open now. */
  openSockets(): number;
  /** Requests for one model, in arrival order. */
  requestsFor(model: string): FakeRequest[];
  /**
   * A Google credentials file of type `external_account_authorized_user` whose token URL is this
   * server: google-auth-library fetches its access token here, no internet needed.
   */
  writeGoogleCredentials(dir: string): string;
  /** The access token the token endpoint hands out. */
  readonly accessToken: string;
  stop(): Promise<void>;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (data += chunk));
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function words(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

function tokenize(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

interface OpenAiBody {
  model?: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  messages?: Array<{ role: string; content: unknown }>;
}

interface VertexBody {
  contents?: Array<{ role?: string; parts?: Array<{ text?: string }> }>;
  systemInstruction?: { parts?: Array<{ text?: string }> } | string;
}

function partsText(parts: Array<{ text?: string }> | undefined): string {
  return (parts ?? []).map((p) => p.text ?? '').join('');
}

export async function startFakeAi(): Promise<FakeAiServer> {
  const scripts = new Map<string, FakeScript>();
  const served = new Map<string, number>();
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();
  let inFlight = 0;
  const inFlightByModel = new Map<string, number>();
  let maxAll = 0;
  const maxByModel = new Map<string, number>();
  let nextId = 1;
  const accessToken = 'fake-access-token';

  const server = createServer((req, res) => void handle(req, res));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  function track(entry: FakeRequest, res: ServerResponse): void {
    const key = entry.model ?? '';
    inFlight++;
    inFlightByModel.set(key, (inFlightByModel.get(key) ?? 0) + 1);
    maxAll = Math.max(maxAll, inFlight);
    maxByModel.set(key, Math.max(maxByModel.get(key) ?? 0, inFlightByModel.get(key)!));
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
      inFlightByModel.set(key, inFlightByModel.get(key)! - 1);
      entry.closedAt = now();
    };
    // Out of flight the moment the last byte is handed over, not when the 'finish' event gets its turn.
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      entry.respondedAt = now();
      finish();
      return end(...args);
    }) as ServerResponse['end'];
    res.on('close', () => {
      if (!res.writableFinished) entry.clientClosed = true;
      finish();
    });
  }

  function fail(entry: FakeRequest, res: ServerResponse, failure: FakeFailure): void {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (failure.retryAfter !== undefined) headers['retry-after'] = failure.retryAfter;
    if (failure.retryAfterMs !== undefined) headers['retry-after-ms'] = failure.retryAfterMs;
    entry.status = failure.status;
    const message = failure.message ?? `fake failure ${failure.status}`;
    const body =
      entry.api === 'vertex'
        ? {
            error: {
              code: failure.status,
              message,
              status:
                failure.status === 429
                  ? 'RESOURCE_EXHAUSTED'
                  : failure.status >= 500
                    ? 'INTERNAL'
                    : 'INVALID_ARGUMENT',
            },
          }
        : {
            error: {
              message,
              type:
                failure.status === 429
                  ? 'rate_limit_error'
                  : failure.status >= 500
                    ? 'server_error'
                    : 'invalid_request_error',
              code: null,
            },
          };
    res.writeHead(failure.status, headers).end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req);
    const entry: FakeRequest = {
      id: nextId++,
      api: 'other',
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      stream: false,
      headers: req.headers,
      body: raw,
      messages: [],
      receivedAt: now(),
      clientClosed: false,
      tokensSent: 0,
      socket: req.socket,
    };
    requests.push(entry);

    if (req.method === 'POST' && url.pathname === '/token') {
      entry.api = 'token';
      entry.status = 200;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: accessToken, expires_in: 3600, token_type: 'Bearer' }));
      return;
    }

    const vertex = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(url.pathname);
    if (req.method === 'POST' && url.pathname === '/v1/chat/completions') {
      entry.api = 'openai';
      const body = JSON.parse(raw || '{}') as OpenAiBody;
      entry.body = body;
      if (body.model !== undefined) entry.model = body.model;
      entry.stream = body.stream === true;
      entry.messages = (body.messages ?? []).map((m) => ({
        role: m.role,
        content: typeof m.content === 'string' ? m.content : JSON.stringify(m.content),
      }));
    } else if (req.method === 'POST' && vertex) {
      entry.api = 'vertex';
      const body = JSON.parse(raw || '{}') as VertexBody;
      entry.body = body;
      entry.model = vertex[1]!;
      entry.stream = vertex[2] === 'streamGenerateContent';
      const system = body.systemInstruction;
      if (system)
        entry.messages.push({
          role: 'system',
          content: typeof system === 'string' ? system : partsText(system.parts),
        });
      for (const c of body.contents ?? [])
        entry.messages.push({
          role: c.role === 'model' ? 'assistant' : (c.role ?? 'user'),
          content: partsText(c.parts),
        });
    } else {
      entry.status = 404;
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: `no route ${url.pathname}` } }));
      return;
    }

    track(entry, res);
    const header = req.headers['x-fake-script'];
    const key = (typeof header === 'string' && scripts.has(header) ? header : entry.model) ?? '';
    const script = scripts.get(key) ?? {};
    const count = served.get(key) ?? 0;
    served.set(key, count + 1);

    if (script.delayMs) await sleep(script.delayMs);
    if (res.destroyed) return;
    const failure = script.alwaysFail ?? script.failFirst?.[count];
    if (failure) return fail(entry, res, failure);

    const lastUser = [...entry.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const text =
      typeof script.reply === 'function'
        ? script.reply(entry)
        : (script.reply ??
          (script.tokens !== undefined
            ? Array.from({ length: script.tokens }, (_, i) => `t${i} `).join('')
            : `Echo: ${lastUser}`));
    const tokens =
      script.tokens !== undefined && script.reply === undefined ? text.match(/t\d+ /g)! : tokenize(text);
    const input = script.usage ? script.usage.input : words(entry.messages.map((m) => m.content).join(' '));
    const output = script.usage ? script.usage.output : tokens.length;
    const reportUsage = script.usage !== false;
    const model = entry.model ?? 'unknown';
    entry.status = 200;

    if (!entry.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          entry.api === 'openai'
            ? {
                id: `chatcmpl-${entry.id}`,
                object: 'chat.completion',
                created: Math.floor(Date.now() / 1000),
                model,
                choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
                ...(reportUsage
                  ? {
                      usage: {
                        prompt_tokens: input,
                        completion_tokens: output,
                        total_tokens: input + output,
                      },
                    }
                  : {}),
              }
            : {
                candidates: [
                  { content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 },
                ],
                modelVersion: `${model}-001`,
                ...(reportUsage
                  ? {
                      usageMetadata: {
                        promptTokenCount: input,
                        candidatesTokenCount: output,
                        totalTokenCount: input + output,
                      },
                    }
                  : {}),
              },
        ),
      );
      return;
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    const send = (data: unknown) => {
      if (!res.destroyed) res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    };
    const created = Math.floor(Date.now() / 1000);
    const openAiChunk = (delta: Record<string, unknown>, finish: string | null) => ({
      id: `chatcmpl-${entry.id}`,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    if (entry.api === 'openai') send(openAiChunk({ role: 'assistant', content: '' }, null));
    const stallAt = script.stall ? (script.stallAfterTokens ?? 0) : Infinity;
    for (const [i, token] of tokens.entries()) {
      if (i >= stallAt) return; // headers sent, then silence until the client gives up
      if (res.destroyed) return;
      if (script.tokenDelayMs && i > 0) await sleep(script.tokenDelayMs);
      if (res.destroyed) return;
      entry.tokensSent++;
      if (entry.api === 'openai') send(openAiChunk({ content: token }, null));
      else
        send({
          candidates: [{ content: { role: 'model', parts: [{ text: token }] }, index: 0 }],
          modelVersion: `${model}-001`,
        });
    }
    if (tokens.length <= stallAt && script.stall) return;
    if (entry.api === 'openai') {
      send(openAiChunk({}, 'stop'));
      const include = (entry.body as OpenAiBody).stream_options?.include_usage === true;
      if (include && reportUsage)
        send({
          id: `chatcmpl-${entry.id}`,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [],
          usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
        });
      send('[DONE]');
    } else {
      send({
        candidates: [{ content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'STOP', index: 0 }],
        modelVersion: `${model}-001`,
        ...(reportUsage
          ? {
              usageMetadata: {
                promptTokenCount: input,
                candidatesTokenCount: output,
                totalTokenCount: input + output,
              },
            }
          : {}),
      });
    }
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('fake AI server has no address');
  const url = `http://127.0.0.1:${address.port}`;

  return {
    url,
    openaiBaseUrl: `${url}/v1`,
    requests,
    accessToken,
    script(key, script) {
      scripts.set(key, script);
      served.delete(key);
    },
    inFlight: () => inFlight,
    maxInFlight: (model?: string) => (model === undefined ? maxAll : (maxByModel.get(model) ?? 0)),
    resetStats() {
      maxAll = inFlight;
      maxByModel.clear();
    },
    openSockets: () => sockets.size,
    requestsFor: (model) => requests.filter((r) => r.model === model),
    writeGoogleCredentials(dir) {
      const file = join(dir, 'fake-google-credentials.json');
      writeFileSync(
        file,
        JSON.stringify({
          type: 'external_account_authorized_user',
          audience: '//iam.googleapis.com/locations/global/workforcePools/fake/providers/fake',
          client_id: 'fake-client',
          client_secret: 'fake-secret',
          refresh_token: 'fake-refresh-token',
          token_url: `${url}/token`,
        }),
      );
      return file;
    },
    async stop() {
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
