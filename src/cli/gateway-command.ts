/** `aiecs gateway` (the HTTP/WebSocket gateway alone) and `aiecs token` (mint a JWT). */
import type { Command } from 'commander';
import { ConfigError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { openStore } from '../engine/store.js';
import { localSecret } from './local-gateway.js';
import type { GlobalOptions } from './options.js';
import { cliConfig, collectList, intFlag } from './options.js';
import { displayBroker, untilShutdown } from './worker-command.js';
import { loadServiceModules } from '../registry/service-loader.js';

export function registerGatewayCommands(program: Command): void {
  program
    .command('gateway')
    .description('run the HTTP API and WebSocket gateway alone (workers run elsewhere on the same store)')
    .option('--port <n>', 'port (default: PORT, 8000)', intFlag(0))
    .option('--host <host>', 'address (default: AIECS_HOST, 127.0.0.1)')
    .option(
      '--services <path>',
      "service modules to list and accept besides the workers' (repeatable)",
      collectList,
      [],
    )
    .action(async (flags: { port?: number; host?: string; services: string[] }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const config = cliConfig(globals);
      if (!config.auth.jwtSecret && !config.auth.jwksUrl) {
        throw new ConfigError(
          'aiecs gateway needs AIECS_JWT_SECRET or AIECS_JWKS_URL (aiecs up creates a secret for you)',
        );
      }
      const logger = createLogger(config.logLevel);
      await loadServiceModules(flags.services);
      const namespace = globals.namespace !== undefined ? { namespace: globals.namespace } : {};
      const store = await openStore(config.brokerUrl, { logger, role: 'producer', ...namespace });
      // Loaded here, not at the top: every command imports this module, and the app brings zod.
      const { createApp } = await import('../engine/app.js');
      const app = createApp({ config, logger, store, ...namespace });
      const { Gateway } = await import('../gateway/server.js');
      const gateway = new Gateway({ app, store, config, logger });
      const stopped = untilShutdown(async () => {
        await gateway.close();
        await app.close();
        await store.close();
      }, logger);
      const url = await gateway.listen(flags.port ?? config.port, flags.host ?? config.host);
      console.log(`aiecs gateway: ${url}, store ${displayBroker(config.brokerUrl, globals.namespace)}`);
      await stopped;
    });

  program
    .command('token')
    .description('mint a JWT for a user with the configured secret (or the one `aiecs up` keeps)')
    .requiredOption('--user <id>', "the user (the token's sub)")
    .option('--admin', 'may see and cancel every task')
    .option('--ttl <duration>', 'lifetime: 90s, 30m, 1h, 7d', '1h')
    .action(async (flags: { user: string; admin?: boolean; ttl: string }, cmd: Command) => {
      const config = cliConfig(cmd.optsWithGlobals<GlobalOptions>());
      const secret = localSecret(config, false);
      if (!secret)
        throw new ConfigError('no secret: set AIECS_JWT_SECRET, or run `aiecs up` once to create one');
      const { mintToken, parseTtl } = await import('../gateway/auth.js');
      console.log(
        await mintToken(secret, flags.user, { admin: flags.admin === true, ttlS: parseTtl(flags.ttl) }),
      );
    });
}
