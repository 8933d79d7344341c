/** `aiecs gateway` (the HTTP/WebSocket gateway alone) and `aiecs token` (mint a JWT). */
import type { Command } from 'commander';
import { ConfigError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { configuredStoreOptions, openStore } from '../engine/open-store.js';
import { historyOffLine } from '../engine/history/run-history.js';
import { localSecret } from './local-gateway.js';
import { checkPort, portError } from './port.js';
import type { GlobalOptions } from './options.js';
import { cliConfig } from './options.js';
import { displayBroker, untilShutdown } from './worker-command.js';
import { ServiceRegistry } from '../registry/registry.js';
import { loadServiceModules } from '../registry/service-loader.js';
import { registerBuiltinServices } from '../services/builtin.js';

export interface GatewayFlags {
  port?: number;
  host?: string;
  services: string[];
  templates?: string;
}

export interface TokenFlags {
  user: string;
  admin?: boolean;
  ttl: string;
}

/** The `aiecs gateway` action. */
export async function gatewayAction(flags: GatewayFlags, cmd: Command): Promise<void> {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const config = cliConfig(globals);
  if (flags.templates !== undefined) config.templatesFile = flags.templates;
  if (!config.auth.jwtSecret && !config.auth.jwksUrl) {
    throw new ConfigError(
      'the gateway needs AIECS_JWT_SECRET or AIECS_JWKS_URL to verify tokens; set one (aiecs up creates a secret for you)',
    );
  }
  const port = flags.port ?? config.port;
  const host = flags.host ?? config.host;
  await checkPort(port, host, 'another aiecs gateway or up?');
  const logger = createLogger(config.logLevel);
  // What this gateway accepts with no worker up: the built-in services and its --services.
  const registry = registerBuiltinServices(new ServiceRegistry());
  await loadServiceModules(flags.services, registry);
  const namespace = globals.namespace !== undefined ? { namespace: globals.namespace } : {};
  const store = await openStore(
    config.brokerUrl,
    configuredStoreOptions(config, { logger, role: 'producer', ...namespace }),
  );
  // Loaded here, not at the top: `aiecs token` shares this module and needs neither.
  const { createApp } = await import('../engine/app.js');
  const { TemplateRegistry } = await import('../core/template-registry.js');
  // The templates its --services modules declared, then the file's (the app loads it).
  const templates = new TemplateRegistry().registerAll(registry.templates, 'templates of --services');
  const app = createApp({ config, logger, store, templates, ...namespace });
  const { Gateway } = await import('../gateway/server.js');
  const gateway = new Gateway({ app, store, config, logger, registry });
  const stopped = untilShutdown(async () => {
    await gateway.close();
    await app.close();
    await store.close();
  }, logger);
  const url = await gateway.listen(port, host).catch((error: unknown) => {
    throw portError(error, port, host, 'another aiecs gateway or up?');
  });
  console.log(`aiecs gateway: ${url}, store ${displayBroker(config.brokerUrl, globals.namespace)}`);
  console.log(`  dashboard: ${url}/dashboard/`);
  const historyOff = historyOffLine(config, store.kind);
  if (historyOff) console.log(`  history: ${historyOff}`);
  const { authWarning } = await import('../gateway/auth.js');
  const warning = authWarning(config.auth);
  if (warning) console.error(`aiecs gateway: ${warning}`);
  await stopped;
}

/** The `aiecs token` action. */
export async function tokenAction(flags: TokenFlags, cmd: Command): Promise<void> {
  const config = cliConfig(cmd.optsWithGlobals<GlobalOptions>());
  const secret = localSecret(config, false);
  if (!secret) throw new ConfigError('no secret: set AIECS_JWT_SECRET, or run `aiecs up` once to create one');
  const { describeTtl, mintOptions, mintToken, parseTtl } = await import('../gateway/auth.js');
  const ttlS = parseTtl(flags.ttl);
  // Refused rather than clamped: a token shorter than asked for would fail later, far from here.
  if (ttlS > config.auth.maxTtlS) {
    throw new ConfigError(
      `--ttl ${flags.ttl} exceeds AIECS_JWT_MAX_TTL (${describeTtl(config.auth.maxTtlS)}); the gateway would refuse the token`,
    );
  }
  console.log(
    await mintToken(secret, flags.user, { ...mintOptions(config.auth), admin: flags.admin === true, ttlS }),
  );
}
