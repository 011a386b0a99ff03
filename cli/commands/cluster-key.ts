import type { Command } from 'commander';
import { examples, subcommand, withRegistry } from '../common.js';
import { iso, out, printJson, printTable, time } from '../output.js';

interface Opts { db: string; json?: boolean }

export function registerClusterKey(program: Command): void {
  const key = program.command('cluster-key')
    .description('manage the key that seals every message between the brokers of a cluster on its Redis bus (the key is never printed)')
    .addHelpText('after', examples('credbroker cluster-key list', 'credbroker cluster-key rotate'));

  subcommand(key, 'list', 'list the cluster keys: the active one, and the next or previous one during a rotation')
    .option('--json', 'print the keys (ids and times only) as a JSON array')
    .addHelpText('after', examples('credbroker cluster-key list', 'credbroker cluster-key list --json'))
    .action(async (opts: Opts) => {
      const { listBusKeys } = await import('../../cluster/bus-keys.js');
      const list = await withRegistry(opts.db, (reg) => listBusKeys(reg), { readonly: true });
      if (opts.json) {
        printJson(list.map((k) => ({ kid: k.kid, state: k.state, activeFrom: iso(k.activeFrom), acceptUntil: iso(k.acceptUntil) })));
        return;
      }
      // An empty table would leave an operator guessing whether the bus is sealed at all.
      if (list.length === 0) return out('no cluster key yet: the first "serve --bus" on this registry makes one (or run "credbroker cluster-key rotate")');
      printTable(['KID', 'STATE', 'SEALS FROM', 'ACCEPTED UNTIL'], list.map((k) => [k.kid, k.state, time(k.activeFrom), time(k.acceptUntil)]));
    });

  subcommand(key, 'rotate', 'make a new cluster key: running nodes accept it at once and seal with it a few seconds later; the previous one is accepted for a minute more')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples('credbroker cluster-key rotate') + `
Every node reads the cluster key from the registry (created by the first "serve --bus")
and follows a rotation without a restart.
`)
    .action(async (opts: Opts) => {
      const { rotateBusKeys } = await import('../../cluster/bus-keys.js');
      const r = await withRegistry(opts.db, (reg) => rotateBusKeys(reg));
      if (opts.json) {
        printJson({ kid: r.kid, activeFrom: iso(r.activeFrom), previousAcceptedUntil: iso(r.previousUntil) });
        return;
      }
      out(`new cluster key ${r.kid}: seals from ${time(r.activeFrom)}; the previous key is accepted until ${time(r.previousUntil)}`);
    });
}
