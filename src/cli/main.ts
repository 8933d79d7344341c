#!/usr/bin/env node
/**
 * The `aiecs` command. Exit codes: 0 success, 1 a task or the engine failed, 2 the command was
 * called wrongly (flags, JSON, configuration), 130 a second Ctrl-C during shutdown.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import {
  registerAdminCommands,
  registerDemoCommand,
  registerGatewayCommands,
  registerScheduleCommands,
  registerTemplatesCommand,
  registerStatusCommands,
  registerSubmitCommand,
  registerUpCommand,
  registerWorkflowCommand,
} from './commands.js';
import { EXIT_USAGE, addLogFlags, applyLogFlags, checkRequiredFlags } from './options.js';
import { registerWorkerCommand } from './worker-command.js';

/** Errors that mean "called wrongly" rather than "something broke". */
const USAGE_CODES = new Set([
  'USAGE_ERROR',
  'CONFIG_ERROR',
  'VALIDATION_ERROR',
  'PAYLOAD_TOO_LARGE',
  'SERVICE_NOT_FOUND',
  'WORKFLOW_INVALID',
  'WORKFLOW_TOO_LARGE',
  'WORKER_NOT_FOUND',
  'QUEUE_NOT_FOUND',
  'SCHEDULE_INVALID',
  'SCHEDULE_NOT_FOUND',
  'TEMPLATE_INVALID',
  'TEMPLATE_NOT_FOUND',
  'METRICS_PORT_ERROR',
]);

/** One line, whatever commander or an error message holds (suggestions come on a second line). */
const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ').trim();

export function buildProgram(): Command {
  const program = new Command('aiecs')
    .description('distributed execution engine for AI tasks')
    .version(VERSION)
    .option(
      '--broker <url>',
      'store URL: embedded:<dir>, redis://…, postgres://… (default: AIECS_BROKER_URL)',
    )
    .option('--namespace <name>', 'Redis key prefix / PostgreSQL schema (default: aiecs)')
    // Settings that subcommands inherit: set before the commands are added.
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(`aiecs: ${oneLine(text.replace(/^error: /, ''))}\n`),
    })
    .showSuggestionAfterError(true)
    // After commander's own checks, so an unknown (mistyped) option is reported first.
    .hook('preAction', checkRequiredFlags)
    .hook('preAction', applyLogFlags);
  addLogFlags(program);
  registerWorkerCommand(program);
  registerUpCommand(program);
  registerSubmitCommand(program);
  registerStatusCommands(program);
  registerWorkflowCommand(program);
  registerDemoCommand(program);
  registerGatewayCommands(program);
  registerAdminCommands(program);
  registerScheduleCommands(program);
  registerTemplatesCommand(program);
  return program;
}

function debugging(): boolean {
  const level = process.env.AIECS_LOG_LEVEL;
  return level === 'debug' || level === 'trace';
}

/** Prints an error as one line (a stack only when debugging) and returns the exit code. */
export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander already printed its message (or the help or version) through outputError.
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  const message = error instanceof Error ? error.message : String(error);
  console.error(`aiecs: ${oneLine(message)}`);
  if (debugging() && error instanceof Error && error.stack) console.error(error.stack);
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && USAGE_CODES.has(code) ? EXIT_USAGE : 1;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    return reportError(error);
  }
}

// Anything that escapes the commands still ends as one line, not a stack trace.
process.on('uncaughtException', (error) => process.exit(reportError(error)));
process.on('unhandledRejection', (error) => process.exit(reportError(error)));

// Exit explicitly: a store connection or timer left open must not keep a finished command alive.
void main(process.argv).then((code) => process.exit(code));
