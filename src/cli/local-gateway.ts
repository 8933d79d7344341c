/**
 * What a running `aiecs up` leaves in its data directory so that commands on the same machine can
 * reach it: the JWT secret it signs with, and where its gateway listens.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AiecsConfig } from '../core/config.js';
import { parseBrokerUrl } from '../engine/store.js';

const SECRET_FILE = 'jwt-secret';
const GATEWAY_FILE = 'gateway.json';

/** The embedded store's directory, or ./.aiecs for shared stores. */
export function dataDir(config: AiecsConfig): string {
  const parsed = parseBrokerUrl(config.brokerUrl);
  return resolve(parsed.kind === 'embedded' ? parsed.dir : '.aiecs');
}

/** The configured secret, else the one kept in the data directory (created on first use). */
export function localSecret(config: AiecsConfig, create: boolean): string | undefined {
  if (config.auth.jwtSecret) return config.auth.jwtSecret;
  const file = join(dataDir(config), SECRET_FILE);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    if (!create) return undefined;
    mkdirSync(dataDir(config), { recursive: true });
    const secret = randomBytes(32).toString('hex');
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  }
}

/**
 * What to say when the running `aiecs up` refuses the token a command minted: the secrets differ,
 * and which one the command used says how to make them agree.
 */
export function refusedTokenMessage(config: AiecsConfig, url: string): string {
  const refused = `the gateway at ${url} refused the token signed with`;
  if (config.auth.jwtSecret) {
    return (
      `${refused} AIECS_JWT_SECRET; unset it to use the embedded store's own secret, ` +
      'or set it to the secret the gateway uses'
    );
  }
  return (
    `${refused} the embedded store's secret (${join(dataDir(config), SECRET_FILE)}); ` +
    'set AIECS_JWT_SECRET to the secret the gateway was started with'
  );
}

export interface GatewayFile {
  url: string;
  pid: number;
}

export function writeGatewayFile(config: AiecsConfig, info: GatewayFile): () => void {
  const file = join(dataDir(config), GATEWAY_FILE);
  mkdirSync(dataDir(config), { recursive: true });
  writeFileSync(file, JSON.stringify(info));
  return () => rmSync(file, { force: true });
}

/** The running `aiecs up` gateway for this data directory, if its process is alive. */
export function findGateway(config: AiecsConfig): GatewayFile | undefined {
  try {
    const info = JSON.parse(readFileSync(join(dataDir(config), GATEWAY_FILE), 'utf8')) as GatewayFile;
    process.kill(info.pid, 0);
    return info;
  } catch {
    return undefined;
  }
}
