import type { Command } from 'commander';
import { parseDeviceId } from '../../registry/ids.js';
import { addDbOption, durationOption, examples, withIssuer } from '../common.js';
import { iso, note, out, printJson, time } from '../output.js';

interface Opts { db: string; ttl?: string; json?: boolean }

export function registerToken(program: Command): void {
  addDbOption(program.command('token'))
    .description('mint a new access token for an active device and print it')
    .argument('<id>', 'device id')
    .option('--ttl <duration>', 'token lifetime (default: the device profile\'s, at most 24h)')
    .option('--json', 'print {deviceId, jti, accessToken, accessTokenExpiresAt} as JSON')
    .addHelpText('after', examples(
      'credbroker token pump-0001',
      'credbroker token pump-0001 --ttl 30m --json',
      'mosquitto_pub -u pump-0001 -i pump-0001 -P "$(credbroker token pump-0001)" -t devices/pump-0001/telemetry -m 1',
    ) + `
The token alone goes to stdout (so it can be captured); its jti and expiry go to stderr.
It is a bearer secret: do not paste it into tickets or logs.
`)
    .action(async (id: string, opts: Opts) => {
      const deviceId = parseDeviceId(id);
      const ttlMs = durationOption(opts.ttl, '--ttl');
      const { issueAccessToken } = await import('../../operations/token.js');
      const { checkTtl } = await import('../../tokens/mint.js');
      await withIssuer(opts.db, async (issuer) => {
        if (ttlMs !== undefined) checkTtl(ttlMs, issuer.settings, `--ttl ${opts.ttl}`);
        const t = await issueAccessToken(issuer, deviceId, { ttlMs });
        if (opts.json) {
          printJson({ deviceId, jti: t.jti, kid: t.kid, accessToken: t.token, accessTokenIssuedAt: iso(t.issuedAt), accessTokenExpiresAt: iso(t.expiresAt) });
        } else {
          out(t.token);
          note(`minted access token for ${deviceId}: jti ${t.jti}, expires ${time(t.expiresAt)}`);
        }
      });
    });
}
