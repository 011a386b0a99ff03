import type { Command } from 'commander';
import { durationOption, examples, subcommand, withRegistry } from '../common.js';
import { iso, out, printJson, printTable, time } from '../output.js';

interface Opts { db: string; json?: boolean; role?: string; ttl?: string }

/** `credbroker operator add|passwd|token|list|remove`: thin shells over operations/operators.ts, audited as `cli`. */
export function registerOperator(program: Command): void {
  const op = program.command('operator')
    .description('manage operators: the people who use the API and the console (roles viewer, operator, admin)')
    .addHelpText('after', examples(
      'credbroker operator add alice --role operator',
      'credbroker operator token ci-bot --ttl 30d --json',
      'credbroker operator list',
    ) + `
Roles: viewer reads everything except secrets; operator also revokes and restores devices,
revokes tokens, issues and revokes grants and manages claims; admin also manages profiles,
signing keys and operators. Passwords and API tokens are printed once and stored only as hashes.
`);

  subcommand(op, 'add <name>', 'create an operator and print their new password (once)')
    .requiredOption('--role <role>', 'viewer, operator or admin')
    .option('--json', 'print {"name","role","password"}')
    .action(async (name: string, opts: Opts) => {
      const { addOperator } = await import('../../operations/operators.js');
      const r = await withRegistry(opts.db, (reg) => addOperator(reg, name, opts.role));
      if (opts.json) printJson({ name: r.name, role: r.role, password: r.password });
      else out(`operator ${r.name} (${r.role}) created; password (shown once): ${r.password}`);
    });

  subcommand(op, 'passwd <name>', 'give an operator a new random password and print it (once)')
    .option('--json', 'print {"name","role","password"}')
    .action(async (name: string, opts: Opts) => {
      const { resetOperatorPassword } = await import('../../operations/operators.js');
      const r = await withRegistry(opts.db, (reg) => resetOperatorPassword(reg, name));
      if (opts.json) printJson({ name: r.name, role: r.role, password: r.password });
      else out(`new password for ${r.name} (shown once): ${r.password}`);
    });

  subcommand(op, 'token <name>', 'mint an API token (cbop_…) for the operator and print it (once)')
    .option('--ttl <duration>', 'lifetime, at most 365d (default 90d)')
    .option('--json', 'print {"name","token","expiresAt"}')
    .action(async (name: string, opts: Opts) => {
      const ttlMs = durationOption(opts.ttl, '--ttl');
      const { issueOperatorToken } = await import('../../operations/operators.js');
      const r = await withRegistry(opts.db, (reg) => issueOperatorToken(reg, name, ttlMs));
      if (opts.json) printJson({ name: r.name, token: r.token, expiresAt: iso(r.expiresAt) });
      else out(`API token for ${r.name} (shown once, expires ${time(r.expiresAt)}): ${r.token}`);
    });

  subcommand(op, 'list', 'list operators: name, role, last sign-in and live API tokens (never a password or token)')
    .option('--json', 'print the operators as a JSON array')
    .action(async (opts: Opts) => {
      const { listOperators } = await import('../../operations/operators.js');
      const list = await withRegistry(opts.db, (reg) => listOperators(reg), { readonly: true });
      if (opts.json) {
        printJson(list.map((o) => ({ name: o.name, role: o.role, createdAt: iso(o.createdAt), lastLoginAt: iso(o.lastLoginAt), tokens: o.tokens })));
        return;
      }
      printTable(['NAME', 'ROLE', 'CREATED', 'LAST SIGN-IN', 'API TOKENS'], list.map((o) => [o.name, o.role, time(o.createdAt), time(o.lastLoginAt), o.tokens]));
    });

  subcommand(op, 'remove <name>', 'remove an operator and their API tokens (their console sessions end at the next request)')
    .option('--json', 'print {"removed": NAME}')
    .action(async (name: string, opts: Opts) => {
      const { removeOperator } = await import('../../operations/operators.js');
      await withRegistry(opts.db, (reg) => removeOperator(reg, name));
      if (opts.json) printJson({ removed: name });
      else out(`removed operator ${name}`);
    });
}
