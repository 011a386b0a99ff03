import { Option, type Command } from 'commander';
import { parseDeviceId } from '../../registry/ids.js';
import { DEFAULT_BROKER_URL, parseBrokerUrl } from '../../provisioning/broker-url.js';
import { addDbOption, durationOption, examples, prepareOutDir, withIssuer } from '../common.js';
import { out, printJson } from '../output.js';

interface Opts { db: string; json?: boolean; out?: string; brokerUrl: string; ttl?: string }

export function registerRestore(program: Command): void {
  addDbOption(program.command('restore'))
    .description('re-enable a revoked device (its old tokens and refresh credentials stay dead); with --out, also write it a new credentials file')
    .argument('<id>', 'device id')
    .option('--out <dir>', 'also issue a complete new credentials set (access token + refresh credential) into DIR/<id>.json')
    .option('--ttl <duration>', 'access token lifetime for --out (default: the profile\'s)')
    .addOption(new Option('--broker-url <url>', 'broker address written into the credentials file').env('CREDBROKER_BROKER_URL').default(DEFAULT_BROKER_URL))
    .option('--json', 'print the result as JSON (with --out: the new credentials too)')
    .addHelpText('after', examples(
      'credbroker restore pump-0042',
      'credbroker restore pump-0042 --out /secure/creds        # new access token + refresh credential for the device',
      'credbroker restore pump-0042 && credbroker token pump-0042 --json',
    ))
    .action(async (id: string, opts: Opts) => {
      const deviceId = parseDeviceId(id);
      const ttlMs = durationOption(opts.ttl, '--ttl');
      const brokerUrl = parseBrokerUrl(opts.brokerUrl);
      const { restoreDevice, reissueCredentials } = await import('../../operations/index.js');
      const { writeCredentialsFile } = await import('../../provisioning/credentials-file.js');
      const { checkTtl } = await import('../../tokens/mint.js');
      const result = await withIssuer(opts.db, async (issuer) => {
        if (ttlMs !== undefined) checkTtl(ttlMs, issuer.settings, `--ttl ${opts.ttl}`);
        if (opts.out) prepareOutDir(opts.out);
        const changed = await restoreDevice(issuer.reg, deviceId);
        const creds = opts.out ? await reissueCredentials(issuer, deviceId, { brokerUrl, ttlMs }) : null;
        const file = creds && opts.out ? writeCredentialsFile(opts.out, creds) : null;
        return { changed, creds, file };
      });
      if (opts.json) {
        printJson({ deviceId, restored: result.changed, wasRevoked: result.changed, ...(result.creds && { credentials: result.creds, file: result.file }) });
        return;
      }
      out(result.changed ? `restored ${deviceId}: tokens and refresh credentials issued before now stay dead` : `${deviceId} is not revoked; nothing changed`);
      if (result.file) out(`new credentials (access token + refresh credential) written to ${result.file} (mode 0600)`);
      else if (result.changed) out(`issue new credentials with: credbroker restore ${deviceId} --out DIR   (or only a token: credbroker token ${deviceId})`);
    });
}
