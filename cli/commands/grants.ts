import type { Command } from 'commander';
import { grantStatus } from '../../registry/index.js';
import { addDbOption, examples, withRegistry } from '../common.js';
import { count, out, printJson, printTable, time } from '../output.js';
import { grantJson } from '../../operations/json-views.js';

interface Opts { db: string; active?: boolean; json?: boolean }

/** `credbroker grants`: the grants on record (never their tokens). */
export function registerGrants(program: Command): void {
  addDbOption(program.command('grants'))
    .description('list grants: name, status (active, expired, revoked), expiry, device bound, patterns and reason')
    .option('--active', 'only grants neither expired nor revoked')
    .option('--json', 'print the grants as a JSON array')
    .addHelpText('after', examples('credbroker grants --active', 'credbroker grants --json | jq -r \'.[] | select(.status == "active") | .name\''))
    .action(async (opts: Opts) => {
      const now = Date.now();
      const list = await withRegistry(opts.db, (reg) => reg.grants.list({ activeAt: opts.active ? now : undefined }), { readonly: true });
      if (opts.json) {
        printJson(list.map((g) => grantJson(g, grantStatus(g, now))));
        return;
      }
      printTable(
        ['NAME', 'STATUS', 'ISSUED', 'EXPIRES', 'WITHIN', 'PUBLISH', 'SUBSCRIBE', 'REASON'],
        list.map((g) => [g.name, grantStatus(g, now), time(g.issuedAt), time(g.expiresAt), g.within, g.publish.join(' '), g.subscribe.join(' '), g.reason]),
      );
      const active = list.filter((g) => grantStatus(g, now) === 'active').length;
      out(`${count(list.length)} grant(s)${opts.active ? '' : `, ${count(active)} active`}`);
    });
}
