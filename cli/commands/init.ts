import { Option, type Command } from 'commander';
import type { SigningAlg } from '../../registry/index.js';
import { addDbOption, durationOption, examples } from '../common.js';
import { out, printJson } from '../output.js';

interface Opts { db: string; alg?: SigningAlg; issuer?: string; maxGrantTtl?: string; json?: boolean }

export function registerInit(program: Command): void {
  addDbOption(program.command('init'))
    .description('create the registry: settings, the sensor and observer profiles and the first signing key (safe to run again)')
    .addOption(new Option('--alg <alg>', 'token signing algorithm, fixed at creation (default ES256)').choices(['ES256', 'EdDSA']))
    .option('--issuer <url>', 'the "iss" claim of every token, fixed at creation (default urn:credbroker)')
    .option('--max-grant-ttl <duration>', 'the cap on grant lifetimes (credbroker grant --ttl), fixed at creation (default 24h, at most 24h)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples(
      'credbroker init',
      'credbroker init --alg EdDSA --issuer https://iot.example.com --db /var/lib/credbroker/registry.db',
    ) + `
Running init again with the same settings changes nothing. If the registry exists
with another --alg, --issuer or --max-grant-ttl, init says so and exits non-zero: those settings are
fixed when the registry is created (every token in the field depends on them).
`)
    .action(async (opts: Opts) => {
      const { initRegistry } = await import('../../operations/init.js');
      const maxGrantTtlMs = durationOption(opts.maxGrantTtl, '--max-grant-ttl');
      const r = await initRegistry(opts.db, { alg: opts.alg, issuer: opts.issuer, maxGrantTtlMs });
      if (opts.json) {
        printJson({ path: r.path, created: r.created, alg: r.settings.alg, issuer: r.settings.issuer, audience: r.settings.audience, activeKid: r.activeKid, maxGrantTtlMs: r.settings.maxGrantTtlMs });
        return;
      }
      const what = `alg ${r.settings.alg}, issuer ${r.settings.issuer}, audience ${r.settings.audience}, signing key ${r.activeKid}`;
      out(r.created
        ? `created registry ${r.path} (${what}); profiles: sensor, observer`
        : `registry ${r.path} already initialised (${what}); nothing changed`);
    });
}
