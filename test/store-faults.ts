// Store outages a test can cause and end: a redis-server of the test's own (killed, or stopped with
// SIGSTOP so it accepts but never answers), and a TCP proxy in front of PostgreSQL (refusing, or
// holding every byte).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../bench/lifecycle.js';
import { redisAnswers } from '../bench/redis-server.js';
import { until } from './harness.js';

/** A redis-server on its own port whose data survives a kill (append-only file, fsync always). */
export class OwnRedis {
  private proc: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'aiecs-outage-'));

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir];
    this.proc = spawn('redis-server', [...args, '--appendonly', 'yes', '--appendfsync', 'always'], {
      stdio: 'ignore',
    });
    await until(() => redisAnswers(this.port), 20_000, 'redis-server to start');
  }

  /** Gone: the port refuses connections; the connections that were open are closed. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await new Promise((resolve) => proc.once('exit', resolve));
  }

  /** Silent: connections stay open and commands are read by no one until `resume`. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  async close(): Promise<void> {
    this.resume();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TCP proxy to `target` that can refuse connections (`down`) or hold all traffic (`stall`). */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private stalled = false;
  private waiting: Array<() => void> = [];
  port = 0;

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  async up(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.server = server;
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    const open = () => {
      if (client.destroyed) return;
      const upstream = connect(this.targetPort, this.host);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const drop = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.once('close', drop);
      upstream.once('close', drop);
      // Forwarded by hand, not piped: a piped socket may resume by itself after pause().
      client.on('data', (chunk: Buffer) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      if (this.stalled) {
        client.pause();
        upstream.pause();
      }
    };
    // While stalled a new connection is accepted, and nothing more happens until `flow`.
    if (this.stalled) this.waiting.push(open);
    else open();
  }

  /** Refuses new connections and cuts the open ones. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise((resolve) => server.close(resolve)) : Promise.resolve();
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    await closed;
  }

  /** Holds every byte in both directions; connections stay open. */
  stall(): void {
    this.stalled = true;
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  flow(): void {
    this.stalled = false;
    for (const [a, b] of this.pairs) {
      a.resume();
      b.resume();
    }
    const waiting = this.waiting;
    this.waiting = [];
    for (const open of waiting) open();
  }

  async close(): Promise<void> {
    this.flow();
    await this.down();
  }
}
