// The gateway under hostile or broken clients: foreign origins, oversized messages, floods of
// messages, and a client that stops reading while its tasks push a lot.
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MAX_CONNECT_ATTEMPTS } from '../src/gateway/realtime.js';
import { socketLimits } from '../src/gateway/socket-limits.js';
import {
  GATEWAY_KINDS,
  GatewayEnv,
  api,
  probe,
  request,
  sleep,
  token,
  tryConnect,
  uid,
  until,
  type Client,
} from './gateway-harness.js';

/**
 * Bytes the process holds after a full garbage collection. (rss in this one process also counts
 * every transient copy made by the test's own requests, worker and store, so it says little.)
 */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function retainedBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const ALLOWED = 'http://app.example';
const ALSO_ALLOWED = 'http://localhost:3000';
const EVIL = 'http://evil.example';

/** The TCP socket under a socket.io-client websocket connection. */
function tcpOf(client: Client): TcpSocket {
  const transport = client.socket.io.engine.transport as unknown as { ws?: { _socket?: TcpSocket } };
  const tcp = transport.ws?._socket;
  if (!tcp) throw new Error('client is not on a websocket transport');
  return tcp;
}

/** Raw connections still open: a failed test leaves them, and a gateway's close would wait for them. */
const rawSockets = new Set<TcpSocket>();

/** A raw TCP connection to the gateway; `text` gathers what it answers, `closed` settles when it closes. */
async function rawConnection(url: string) {
  const { hostname, port } = new URL(url);
  const socket = tcpConnect({ host: hostname, port: Number(port) });
  rawSockets.add(socket);
  socket.once('close', () => rawSockets.delete(socket));
  socket.setNoDelay(true);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const write = (data: string | Buffer) =>
    new Promise<boolean>((resolve) => {
      if (socket.destroyed || !socket.writable) return resolve(false);
      socket.write(data, (error) => resolve(!error));
    });
  return {
    socket,
    text: () => text,
    closed,
    isClosed: () => socket.destroyed || socket.readableEnded,
    write,
  };
}

/** A raw connection upgraded to an engine.io WebSocket, without a token (nothing checks one yet). */
async function upgradedConnection(url: string) {
  const c = await rawConnection(url);
  const key = randomBytes(16).toString('base64');
  await c.write(
    `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await until(async () => c.text().includes('\r\n\r\n'), 10_000, 'the upgrade');
  expect(c.text()).toMatch(/^HTTP\/1\.1 101 /);
  return c;
}

/** One masked client frame (RFC 6455 §5.2) with this payload length, without its payload. */
function frameHeader(opcode: number, length: number, mask: Buffer): Buffer {
  if (length < 126) return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | length]), mask]);
  const header = Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff]);
  return Buffer.concat([header, mask]);
}

/** The gateway still serves HTTP and sockets. */
async function expectAlive(ge: GatewayEnv, url = ge.url): Promise<void> {
  expect((await request(url, '/healthz')).status).toBe(200);
  const user = uid('bystander');
  const c = await ge.client(user, { url });
  expect(await c.emitWithAck('ping')).toBe('pong');
  const res = await api(url, await token(user)).submit(probe('echo', { alive: true }));
  expect(res.status).toBe(202);
  await c.waitTerminal([res.body.task_id]);
  expect(c.terminal(res.body.task_id)).toMatchObject({
    status: 'completed',
    result: { echo: { alive: true } },
  });
  c.close();
}

describe.each(GATEWAY_KINDS)('gateway against hostile clients on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind, { CORS_ALLOWED_ORIGINS: `${ALLOWED},${ALSO_ALLOWED}` });
  });
  afterAll(async () => {
    for (const socket of rawSockets) socket.destroy();
    await ge?.cleanup();
  });

  it('refuses HTTP requests from an origin not in CORS_ALLOWED_ORIGINS and echoes allowed ones', async () => {
    const tok = await token(uid('cors'));
    for (const path of ['/healthz', '/api/tasks']) {
      const refused = await request(ge.url, path, { token: tok, headers: { origin: EVIL } });
      expect(refused.status, path).toBe(403);
      expect(refused.headers.get('access-control-allow-origin'), path).toBeNull();
      expect(refused.body.error.code).toBe('FORBIDDEN');
    }
    const post = await request(ge.url, '/api/tasks', {
      token: tok,
      headers: { origin: EVIL },
      body: probe('echo'),
    });
    expect(post.status).toBe(403);

    for (const origin of [ALLOWED, ALSO_ALLOWED]) {
      const ok = await request(ge.url, '/api/tasks', { token: tok, headers: { origin } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
      expect(ok.headers.get('vary')).toMatch(/origin/i);
    }
    // Preflight.
    const preflight = await request(ge.url, '/api/tasks', {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect([200, 204]).toContain(preflight.status);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toMatch(/authorization/);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toMatch(/content-type/);
    const badPreflight = await request(ge.url, '/api/tasks', {
      method: 'OPTIONS',
      headers: { origin: EVIL, 'access-control-request-method': 'POST' },
    });
    expect(badPreflight.status).toBe(403);
    expect(badPreflight.headers.get('access-control-allow-origin')).toBeNull();
    // Never a wildcard, whatever the origin.
    const plain = await request(ge.url, '/healthz');
    expect(plain.headers.get('access-control-allow-origin')).not.toBe('*');
  });

  it('refuses socket.io connections from a foreign origin, over websocket and polling', async () => {
    const tok = await token(uid('wscors'));
    for (const transports of [['websocket'], ['polling']]) {
      const refused = await tryConnect(ge.url, tok, { transports, extraHeaders: { origin: EVIL } });
      expect(refused.client, transports[0]).toBeUndefined();
      expect(refused.error, transports[0]).toBeDefined();
      const allowed = await tryConnect(ge.url, tok, { transports, extraHeaders: { origin: ALLOWED } });
      expect(allowed.error, transports[0]).toBeUndefined();
      expect(await allowed.client!.emitWithAck('ping')).toBe('pong');
      allowed.client!.close();
    }
    // A polling handshake from a foreign origin gets no CORS grant either.
    const handshake = await request(ge.url, '/socket.io/?EIO=4&transport=polling', {
      headers: { origin: EVIL },
    });
    expect(handshake.status).toBeGreaterThanOrEqual(400);
    expect(handshake.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('disconnects a client that sends a message over AIECS_WS_MAX_MESSAGE_BYTES and keeps serving others', async () => {
    const limit = ge.env.config.gateway.wsMaxMessageBytes;
    const user = uid('big');
    const other = await ge.client(uid('other'));
    for (const transports of [['websocket'], ['polling']]) {
      const c = await ge.client(user, { transports });
      // A message under the limit is fine.
      expect(await c.subscribe(`small-${'x'.repeat(64)}`)).toMatchObject({ ok: false });
      c.socket.emit('subscribe', { task_id: 'x'.repeat(limit + 1024) });
      await until(async () => c.disconnectReason !== undefined, 20_000, 'the oversized sender to be dropped');
      expect(c.connected).toBe(false);
    }
    expect(other.connected).toBe(true);
    expect(await other.emitWithAck('ping')).toBe('pong');
    await expectAlive(ge);
  });

  it('closes a WebSocket that sends one unfinished message in tiny fragments, before any token', async () => {
    const limits = socketLimits(ge.env.config.gateway.wsMaxMessageBytes);
    const before = retainedBytes();
    // No auth: engine.io reads frames before socket.io's middleware sees a token.
    const ws = new WebSocket(`${ge.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => {});
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    // A message that never ends: 10,000 one-byte fragments, under ws's default limit (16,384),
    // went unnoticed; a few times the limit close it (1008, policy violation).
    const fragments = Math.min(10_000, limits.maxFragments * 4);
    for (let sent = 0; sent < fragments && ws.readyState === WebSocket.OPEN; sent++) {
      await new Promise<void>((resolve) => ws.send(sent === 0 ? '4' : 'x', { fin: false }, () => resolve()));
    }
    const code = await Promise.race([closed, sleep(20_000).then(() => 'still open')]);
    expect(code).toBe(1008);
    expect(retainedBytes() - before).toBeLessThan(8 * 1024 * 1024);
    await expectAlive(ge);
  });

  it('closes a WebSocket that trickles one frame a byte at a time, before any token', async () => {
    const limits = socketLimits(ge.env.config.gateway.wsMaxMessageBytes);
    const c = await upgradedConnection(ge.url);
    // A frame of 4,000 bytes, each its own write (and, 1 ms apart, its own read on the server).
    const payload = 4_000;
    const mask = randomBytes(4);
    await c.write(frameHeader(0x1, payload, mask));
    let sent = 0;
    for (; sent < payload && !c.isClosed(); sent++) {
      if (!(await c.write(Buffer.from([0x78 ^ mask[sent % 4]!])))) break;
      await sleep(1);
    }
    await c.closed;
    expect(sent).toBeLessThan(payload);
    expect(sent).toBeGreaterThanOrEqual(limits.maxBufferedChunks - 1);
    await expectAlive(ge);
  });

  it('closes a connection that keeps asking to join with refused tokens, after a few tries', async () => {
    /** An engine.io WebSocket with what it was sent, packet by packet. */
    const open = async () => {
      const ws = new WebSocket(`${ge.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
      const got: string[] = [];
      ws.on('message', (data: Buffer) => got.push(data.toString()));
      ws.on('error', () => {});
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      await until(async () => got.some((p) => p.startsWith('0{')), 10_000, 'the open packet');
      return { ws, got, closed, refusals: () => got.filter((p) => p.startsWith('44')).length };
    };
    // A client whose token was refused may send a fresh one on the same connection.
    const retry = await open();
    for (let i = 1; i <= 2; i++) {
      retry.ws.send('40{"token":"not-a-token"}');
      await until(async () => retry.refusals() === i, 10_000, `refusal ${i}`);
    }
    retry.ws.send(`40${JSON.stringify({ token: await token(uid('retrier')) })}`);
    await until(async () => retry.got.some((p) => p.startsWith('40{"sid"')), 10_000, 'the join');
    retry.ws.close();

    // One that keeps trying is closed: each try was a token check, as fast as it could send.
    const flood = await open();
    const tries = 1_000;
    for (let i = 0; i < tries && flood.ws.readyState === WebSocket.OPEN; i++)
      flood.ws.send('40{"token":"x.y.z"}');
    await Promise.race([flood.closed, sleep(20_000)]);
    expect(flood.ws.readyState).toBe(WebSocket.CLOSED);
    // The tries still being checked when it closed are answered no more.
    expect(flood.refusals()).toBeGreaterThanOrEqual(1);
    expect(flood.refusals()).toBeLessThanOrEqual(MAX_CONNECT_ATTEMPTS + 1);
    expect(flood.got.some((p) => p.includes('too many connect attempts'))).toBe(true);
    await expectAlive(ge);
  });

  it('cuts off a WebSocket that floods pings while it reads nothing, before any token', async () => {
    const c = await upgradedConnection(ge.url);
    // Every ping asks for a pong the client never reads: before ws 8.23 the server queued them
    // all (memory without bound); now it cuts the peer off past 60 unsent pongs.
    c.socket.pause();
    const mask = randomBytes(4);
    const ping = Buffer.concat([
      frameHeader(0x9, 125, mask),
      Buffer.alloc(125, 0x70).map((b, i) => b ^ mask[i % 4]!),
    ]);
    const batch = Buffer.concat(Array.from({ length: 100 }, () => ping));
    let sent = 0;
    for (; sent < 2_000 && !c.socket.destroyed; sent++) if (!(await c.write(batch))) break;
    expect(sent).toBeLessThan(2_000);
    await expectAlive(ge);
  });

  it('refuses a polling request body sent in more chunks than the limit (413), before any token', async () => {
    const limits = socketLimits(ge.env.config.gateway.wsMaxMessageBytes);
    const open = await request(ge.url, '/socket.io/?EIO=4&transport=polling');
    expect(open.status).toBe(200);
    const sid = /"sid":"([^"]+)"/.exec(open.text)?.[1];
    expect(sid).toBeDefined();
    const c = await rawConnection(ge.url);
    await c.write(
      `POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: x\r\n` +
        `Content-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    // A body of 1,000 one-byte chunks (a few KiB on the wire, far under the size limit).
    const chunks = 1_000;
    let body = '1\r\n4\r\n';
    for (let i = 1; i < chunks; i++) body += '1\r\nx\r\n';
    await c.write(body + '0\r\n\r\n');
    await until(async () => /^HTTP\/1\.1 \d{3}/.test(c.text()), 10_000, 'an answer');
    expect(c.text()).toMatch(/^HTTP\/1\.1 413 /);
    expect(chunks).toBeGreaterThan(limits.maxBufferedChunks);
    c.socket.destroy();
    await expectAlive(ge);
  });

  it('answers 408 to a request whose headers or body never finish (AIECS_HTTP_REQUEST_TIMEOUT_S)', async () => {
    const g = await ge.addGateway({ CORS_ALLOWED_ORIGINS: ALLOWED, AIECS_HTTP_REQUEST_TIMEOUT_S: '1' });
    const body = JSON.stringify(probe('echo'));
    // A signed-in user's (without a token the gateway answers 401 before reading any body).
    const auth = `Authorization: Bearer ${await token(uid('slow'))}\r\n`;
    const starts = [
      // The body: its first bytes, then nothing (Fastify's default, no limit, held it for good).
      `POST /api/tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
      // The headers: never ended.
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: `,
    ];
    for (const start of starts) {
      const c = await rawConnection(g.url);
      await c.write(start);
      await until(
        async () => /^HTTP\/1\.1 \d{3}/.test(c.text()),
        15_000,
        'an answer to the unfinished request',
      );
      expect(c.text()).toMatch(/^HTTP\/1\.1 408 /);
      await c.closed;
      expect(JSON.parse(c.text().slice(c.text().indexOf('\r\n\r\n') + 4))).toMatchObject({
        error: { code: 'REQUEST_TIMEOUT' },
      });
    }
    await expectAlive(ge, g.url);
  });

  it('rate-limits a flood of subscribe messages, then disconnects the flooder; the server stays up', async () => {
    const user = uid('flood');
    const a = await ge.api(user);
    const id = (await a.submit(probe('echo'))).body.task_id as string;
    await a.settled(id);
    const other = await ge.client(uid('calm'));
    const c = await ge.client(user);
    const acks: Array<{ ok?: boolean; error?: { code?: string } }> = [];
    // Half the messages want an answer (they get a refusal), half do not (an `error` event instead).
    for (let i = 0; i < 2000; i++) {
      if (i % 2)
        c.socket.emit('subscribe', { task_id: id, after_seq: -1 }, (r: (typeof acks)[0]) => acks.push(r));
      else c.socket.emit('subscribe', { task_id: id, after_seq: -1 });
    }
    await until(async () => c.disconnectReason !== undefined, 30_000, 'the flooder to be dropped');
    expect(c.disconnectReason).toBe('io server disconnect');
    expect(c.errors.filter((e) => e.code === 'RATE_LIMITED').length).toBeGreaterThan(0);
    expect(acks.filter((a) => a.error?.code === 'RATE_LIMITED').length).toBeGreaterThan(0);
    // Far from all were served.
    expect(acks.filter((a) => a.ok).length).toBeLessThan(100);
    expect(other.connected).toBe(true);
    expect(await other.emitWithAck('ping')).toBe('pong');
    await expectAlive(ge);
  });

  it('drops a client that stops reading, with bounded memory, and the client catches up by replay', async () => {
    const g = await ge.addGateway({
      CORS_ALLOWED_ORIGINS: ALLOWED,
      AIECS_WS_MAX_BUFFERED_PACKETS: '100',
      AIECS_WS_MAX_BUFFERED_BYTES: String(1024 * 1024),
    });
    const user = uid('stalled');
    const a = api(g.url, await token(user));
    // The watcher reads everything, on the other gateway (every gateway relays every event).
    const watcher = await ge.client(user);
    const slow = await ge.client(user, { url: g.url });
    expect(g.gateway.connections).toBe(1);
    const before = retainedBytes();
    try {
      const tcp = tcpOf(slow);
      tcp.pause();
      // Each completed event carries its 256 KiB result: 8 MiB in all, more than socket buffers hold.
      const blob = 'x'.repeat(256 * 1024);
      const ids: string[] = [];
      for (let i = 0; i < 32; i++) {
        const res = await a.submit(probe('echo', { i, blob }));
        expect(res.status).toBe(202);
        ids.push(res.body.task_id);
      }
      await until(async () => g.gateway.connections === 0, 60_000, 'the stalled client to be dropped');
      await watcher.waitTerminal(ids, 60_000);
      expect(watcher.connected).toBe(true);
      // What the process keeps (the replay buffer holds the 8 MiB of results on purpose) stays far
      // below a generous bound; the dropped client's backlog is gone.
      const grown = retainedBytes() - before;
      expect(grown).toBeLessThan(200 * 1024 * 1024);

      // Back to reading: it learns it was dropped, reconnects and replays what it missed.
      tcp.resume();
      await until(
        async () => slow.disconnectReason !== undefined,
        60_000,
        'the stalled client to see the close',
      );
      // Let go by the gateway (engine.io's heartbeat timeout would close without a word, later).
      expect(slow.disconnectReason).toBe('io server disconnect');
      const seen = new Map<string, number>();
      for (const r of slow.log)
        seen.set(r.payload.task_id, Math.max(seen.get(r.payload.task_id) ?? -1, r.payload.seq));
      expect(ids.filter((id) => slow.terminal(id)).length).toBeLessThan(ids.length);
      const back = await ge.client(user, { url: g.url });
      for (const id of ids) {
        // A client catching up on many tasks paces itself when told to slow down.
        const ack = await until(
          async () => {
            const reply = await back.subscribe(id, seen.get(id) ?? -1);
            if (reply.error?.code === 'RATE_LIMITED') return sleep(100).then(() => undefined);
            return reply;
          },
          30_000,
          'subscribe',
        );
        expect(ack.ok).toBe(true);
      }
      await back.waitTerminal(ids.filter((id) => !slow.terminal(id)));
      for (const id of ids) {
        const union = new Set([...slow.of(id), ...back.of(id)].map((r) => `${r.kind}/${r.payload.seq}`));
        // The snapshot of a task first seen on replay stands in for the events before it.
        const terminal = slow.terminal(id) ?? back.terminal(id);
        expect(terminal, id).toMatchObject({ status: 'completed', result: { echo: { i: ids.indexOf(id) } } });
        expect(union.has(`progress/${terminal!.seq}`)).toBe(true);
        expect(back.of(id).filter((r) => r.payload.seq <= (seen.get(id) ?? -1))).toEqual([]);
      }
      expect(back.connected).toBe(true);
    } finally {
      slow.close();
    }
    await expectAlive(ge, g.url);
  });
});
