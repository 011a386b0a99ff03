#!/usr/bin/env node
/**
 * `credbroker`: the command line for factories and operators. Every command is a
 * thin shell over the library (registry/, tokens/, provisioning/, operations/):
 * one file per command under cli/commands/, each exporting a registrar.
 */
import { isEntryPoint } from '../util/entry-point.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { isCredbrokerError } from '../errors/index.js';
import { exitCodeFor } from '../errors/map.js';
import { redactUrl } from '../util/redact-url.js';
import { registerAudit } from './commands/audit.js';
import { registerClaim } from './commands/claim.js';
import { registerClusterKey } from './commands/cluster-key.js';
import { registerDevices } from './commands/devices.js';
import { registerGrant } from './commands/grant.js';
import { registerGrants } from './commands/grants.js';
import { registerInit } from './commands/init.js';
import { registerKeys } from './commands/keys.js';
import { registerOperator } from './commands/operator.js';
import { registerProfile } from './commands/profile.js';
import { registerProvision } from './commands/provision.js';
import { registerRegistry } from './commands/registry.js';
import { registerRestore } from './commands/restore.js';
import { registerRevoke } from './commands/revoke.js';
import { registerServe } from './commands/serve.js';
import { registerSessions } from './commands/sessions.js';
import { registerShow } from './commands/show.js';
import { registerSim } from './commands/sim.js';
import { registerToken } from './commands/token.js';

/** Adds one command (with its options, help and action) to the program. */
export type CommandRegistrar = (program: Command) => void;

/**
 * The commands of `credbroker`, in help order. A new command (e.g. `serve`, `sim`)
 * is one more entry: `import { registerServe } from './commands/serve.js'` and add it here.
 */
export const commandRegistrars: CommandRegistrar[] = [
  registerInit,
  registerServe,
  registerProvision,
  registerToken,
  registerRevoke,
  registerRestore,
  registerGrant,
  registerGrants,
  registerDevices,
  registerShow,
  registerSessions,
  registerProfile,
  registerClaim,
  registerKeys,
  registerClusterKey,
  registerOperator,
  registerAudit,
  registerSim,
  registerRegistry,
];

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Builds the program. Usage errors are reported by commander as one line
 * (`credbroker: <message>`) and thrown as a CommanderError instead of exiting,
 * so `main` decides the exit code (2 for usage errors).
 */
export function buildProgram(registrars: readonly CommandRegistrar[] = commandRegistrars): Command {
  const program = new Command('credbroker')
    .description('IoT device credential broker over MQTT: provision devices, mint and revoke tokens, audit, manage profiles and signing keys')
    .version(version(), '-V, --version')
    .configureOutput({ outputError: (str, write) => write(`credbroker: ${oneLine(str.replace(/^error: /, ''))}\n`) })
    .exitOverride()
    // Options belong to the command they follow: `audit prune --db F` gives --db to
    // `prune`, and `devices delete ID --db F` to `delete`, not to the listings (which have their own --db).
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .addHelpText('after', `
Every command takes --db FILE (default ./data/credbroker.db, env CREDBROKER_DB), or a PostgreSQL
registry: --db postgres://USER@HOST:PORT/DB (the password from ~/.pgpass or PGPASSWORD; never shown).
Only "init" creates a registry file (and "serve" on that default, when no --db is given); the others
refuse a missing one.
Durations take a unit: 30s, 15m, 1h, 1h30m, 7d. --json prints machine-readable output on stdout and nothing else there.
Exit codes: 0 ok, 1 unexpected error, 2 bad usage or input, 3 not found, 4 conflicting state,
5 registry problem, 6 credential refused, 7 rate limited, 8 broker unreachable (ops HTTP, or sim --url),
130 stopped by Ctrl-C (run it again to resume).
Run "credbroker <command> --help" for a command's options and examples.
`);
  for (const register of registrars) register(program);
  return program;
}

/** The one line (without its newline) and the exit code for a failure. Never a stack trace for a CredbrokerError. */
export function errorLine(e: unknown): { line: string; code: number } {
  if (isCredbrokerError(e)) return { line: `credbroker: ${oneLine(redactUrl(e.message))}`, code: exitCodeFor(e) };
  // A driver's message may echo a connection string.
  const message = redactUrl(e instanceof Error ? e.message : String(e));
  return { line: `credbroker: unexpected error: ${oneLine(message)}${process.env.CREDBROKER_DEBUG ? '' : ' (set CREDBROKER_DEBUG=1 for details)'}`, code: 1 };
}

/** Prints one line on stderr for a failure and returns the exit code. */
export function reportError(e: unknown): number {
  const { line, code } = errorLine(e);
  process.stderr.write(`${line}\n`);
  if (!isCredbrokerError(e) && process.env.CREDBROKER_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${redactUrl(e.stack)}\n`);
  return code;
}

/** Runs the CLI and resolves with the exit code (does not exit). */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    // A command may set its own non-zero code (e.g. `sim` when an invariant failed).
    return Number(process.exitCode ?? 0) || 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed it
    return reportError(err);
  }
}

/** Runs the CLI as the `credbroker` process: sets the exit code when done. */
export function run(): void {
  // `credbroker devices | head`: a closed pipe is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  main().then((code) => {
    process.exitCode = code;
  }, (err: unknown) => {
    process.exitCode = reportError(err);
  });
}

if (isEntryPoint(import.meta.url)) run();
