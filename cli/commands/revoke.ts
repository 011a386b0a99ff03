import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Jti } from '../../registry/ids.js';
import { parseRevokeReason } from '../../operations/revoke-reason.js';
import { addDbOption, deviceIdArgs, examples, withRegistry } from '../common.js';
import { count, out, plural, printJson } from '../output.js';

interface Opts { db: string; reason?: string; token?: string; grant?: string; keepRetained?: boolean; json?: boolean }

export function registerRevoke(program: Command): void {
  addDbOption(program.command('revoke'))
    .description('revoke devices (all their tokens and refresh credentials), one token, or a grant; the broker closes affected sessions within a second')
    .argument('[ids...]', 'device ids (all or nothing: one unknown id and none is revoked)')
    .option('--reason <text>', 'why (kept in the audit log)')
    .option('--token <jti>', 'revoke this access token (its jti, see: credbroker show ID) and its family: the tokens renewed from it, and those it was renewed from')
    .option('--grant <name>', 'revoke this grant (see: credbroker grants); its session is closed within a second')
    .option('--keep-retained', 'keep the retained messages the devices published (by default the broker deletes them)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples(
      'credbroker revoke pump-0042 --reason "reported stolen"',
      'credbroker revoke pump-0042 pump-0043 pump-0044 --reason "decommissioned line 3"',
      'credbroker revoke --token 3q2-7wEzC9uS2Cz1xTv0Gg',
      'credbroker revoke --grant tech-anna --reason "inspection done"',
    ) + `
The broker also deletes the retained messages the revoked devices published, so new
subscribers no longer get them (--keep-retained keeps them; revoking again without it
clears them later). A revoked device's tokens and refresh credential stay dead for good; "credbroker restore ID"
re-enables the device, which then needs a new token ("credbroker token ID").
`)
    .action(async (ids: string[], opts: Opts) => {
      if ([ids.length > 0, opts.token !== undefined, opts.grant !== undefined].filter(Boolean).length > 1) throw new UsageError('give device ids, --token JTI or --grant NAME: one of them');
      if (opts.grant !== undefined) return revokeGrantCommand(opts);
      if (opts.token === undefined && !ids.length) throw new UsageError('give one or more device ids, --token JTI or --grant NAME');
      if (opts.token !== undefined && opts.reason !== undefined) throw new UsageError('--reason applies to revoking devices or a grant, not --token');
      if (opts.token !== undefined && opts.keepRetained) throw new UsageError('--keep-retained applies to revoking devices, not --token');
      const reason = revokeReason(opts);

      const { revokeDevices, revokeToken } = await import('../../operations/revoke.js');
      if (opts.token !== undefined) {
        const jti = opts.token;
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(jti)) throw new UsageError(`invalid --token "${jti.slice(0, 64)}": give the token's jti (see: credbroker show ID), not the token itself`);
        const r = await withRegistry(opts.db, (reg) => revokeToken(reg, jti as Jti));
        if (opts.json) printJson({ token: { jti, deviceId: r.deviceId, revoked: r.changed, alreadyRevoked: !r.changed, familyRevoked: r.familyRevoked, family: r.revoked.filter((j) => j !== jti) } });
        else if (!r.changed) out(`token ${jti} of device ${r.deviceId} was already revoked, with its family; nothing changed`);
        else {
          // The operator sees which tokens went: the family may hold tokens of sessions they did not mean to end.
          const others = r.revoked.filter((j) => j !== jti);
          out(`revoked token ${jti} of device ${r.deviceId}${others.length > 0 ? ` and ${plural(others.length, 'other token')} of its family (renewed from it or it from them): ${others.join(', ')}` : ''}; the broker closes the session holding any of them within a second`);
        }
        return;
      }

      const deviceIds = deviceIdArgs(ids);
      const results = await withRegistry(opts.db, (reg) => revokeDevices(reg, deviceIds, reason, 'cli', Date.now(), { keepRetained: opts.keepRetained }));
      const tokens = results.reduce((n, r) => n + r.tokensRevoked, 0);
      const changed = results.filter((r) => r.changed).length;
      if (opts.json) {
        printJson({ devices: results.map((r) => ({ deviceId: r.deviceId, revoked: r.changed, alreadyRevoked: !r.changed, tokensRevoked: r.tokensRevoked, retainedCleared: r.retainedCleared })), tokensRevoked: tokens });
        return;
      }
      for (const r of results) {
        out(r.changed
          ? `revoked ${r.deviceId} (${plural(r.tokensRevoked, 'live token')} revoked)`
          : `${r.deviceId} was already revoked${r.tokensRevoked ? ` (${plural(r.tokensRevoked, 'live token')} revoked)` : ''}`);
      }
      out(`revoked ${plural(changed, 'device')}${results.length > changed ? ` (${count(results.length - changed)} already revoked)` : ''}, ${plural(tokens, 'token')}`
        + (changed || tokens ? '; the broker closes their sessions within a second' : '')
        + (opts.keepRetained ? '; their retained messages are kept' : '; the broker deletes the retained messages they published'));
    });
}

function revokeReason(opts: Opts): string {
  return parseRevokeReason(opts.reason, '--reason');
}

/** `revoke --grant NAME`: the live grant of that name dies; the broker closes its session within a second. */
async function revokeGrantCommand(opts: Opts): Promise<void> {
  if (opts.keepRetained) throw new UsageError('--keep-retained applies to revoking devices, not --grant');
  const why = revokeReason(opts);
  const { revokeGrant } = await import('../../operations/grant.js');
  const r = await withRegistry(opts.db, (reg) => revokeGrant(reg, opts.grant!, { why }));
  if (opts.json) printJson({ grant: { name: r.grant.name, jti: r.grant.jti, revoked: r.changed, alreadyOver: !r.changed } });
  else if (!r.changed) out(`grant ${r.grant.name} was already ${r.grant.revokedAt !== null ? 'revoked' : 'expired'}; nothing changed`);
  else out(`revoked grant ${r.grant.name} (jti ${r.grant.jti}); the broker closes its session within a second`);
}
