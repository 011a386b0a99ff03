import type { Command } from 'commander';
import { keyJson, keyState } from '../../operations/json-views.js';
import { examples, subcommand, withRegistry } from '../common.js';
import { iso, note, out, printJson, printTable, time } from '../output.js';

interface Opts { db: string; json?: boolean; now?: boolean }

export function registerKeys(program: Command): void {
  const keys = program.command('keys')
    .description('manage the token signing keys (private keys are never printed)')
    .addHelpText('after', examples('credbroker keys list', 'credbroker keys rotate', 'credbroker keys rotate --now', 'credbroker keys jwks > jwks.json'));

  subcommand(keys, 'list', 'list signing keys: the active one and retired ones with the time they verify until')
    .option('--json', 'print the keys (public information only) as a JSON array')
    .addHelpText('after', examples('credbroker keys list', 'credbroker keys list --json | jq ".[] | select(.status == \\"retired\\")"'))
    .action(async (opts: Opts) => {
      const now = Date.now();
      const { Keyring } = await import('../../tokens/keyring.js');
      const list = await withRegistry(opts.db, async (reg) => {
        await Keyring.load(reg);
        return reg.keys.all();
      }, { readonly: true });
      if (opts.json) {
        printJson(list.map((k) => keyJson(k, now)));
        return;
      }
      printTable(
        ['KID', 'ALG', 'STATUS', 'CREATED', 'RETIRED', 'VERIFIES UNTIL'],
        list.map((k) => [k.kid, k.alg, keyState(k, now), time(k.createdAt), time(k.retiredAt), k.status === 'active' ? '(active)' : time(k.verifyUntil)]),
      );
    });

  subcommand(keys, 'rotate', 'make a new active signing key; the old one keeps verifying until the last token it signed expires')
    .option('--now', 'key compromise: every old key stops verifying at once; running brokers close the sessions of its tokens within a second and devices come back through their refresh credentials')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples('credbroker keys rotate', 'credbroker keys rotate --now') + `
The broker picks up the new key from the registry; publish the new JWKS ("credbroker keys jwks")
to any other verifier before devices start presenting tokens signed by the new key.
`)
    .action(async (opts: Opts) => {
      const { Keyring, rotateKeys } = await import('../../tokens/keyring.js');
      const r = await withRegistry(opts.db, async (reg) => {
        await Keyring.load(reg);
        return rotateKeys(reg, { immediate: !!opts.now });
      });
      if (!r.scrubbed.complete) note(`warning: another reader held the registry's storage: the retired private key is wiped from it later (${r.scrubbed.detail})`);
      if (opts.json) {
        printJson({ activeKid: r.activeKid, retired: r.retired.map((k) => ({ kid: k.kid, verifyUntil: iso(k.verifyUntil) })) });
        return;
      }
      out(`new active signing key ${r.activeKid}`);
      for (const k of r.retired) {
        out(opts.now ? `killed ${k.kid}: every token it signed is refused from now on` : `retired ${k.kid}: verifies the tokens it signed until ${time(k.verifyUntil)}`);
      }
    });

  subcommand(keys, 'jwks', 'print the public keys as a JWKS (the same document the broker serves at /.well-known/jwks.json)')
    .option('--json', 'accepted for symmetry with the other commands: the JWKS is JSON either way')
    .addHelpText('after', examples('credbroker keys jwks > jwks.json', 'credbroker keys jwks | jq -r ".keys[].kid"'))
    .action(async (opts: Opts) => {
      const { Keyring } = await import('../../tokens/keyring.js');
      const jwks = await withRegistry(opts.db, async (reg) => (await Keyring.load(reg)).jwks(), { readonly: true });
      printJson(jwks);
    });
}
