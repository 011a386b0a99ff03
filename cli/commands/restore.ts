import type { Command } from 'commander';
import { parseDeviceId } from '../../registry/ids.js';
import { addDbOption, examples, withRegistry } from '../common.js';
import { out, printJson } from '../output.js';

interface Opts { db: string; json?: boolean }

export function registerRestore(program: Command): void {
  addDbOption(program.command('restore'))
    .description('re-enable a revoked device (its old tokens stay dead; mint a new one with "credbroker token ID")')
    .argument('<id>', 'device id')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples(
      'credbroker restore pump-0042',
      'credbroker restore pump-0042 && credbroker token pump-0042 --json',
    ))
    .action(async (id: string, opts: Opts) => {
      const deviceId = parseDeviceId(id);
      const { restoreDevice } = await import('../../operations/revoke.js');
      const changed = await withRegistry(opts.db, (reg) => restoreDevice(reg, deviceId), { mustExist: true });
      if (opts.json) printJson({ deviceId, restored: changed, wasRevoked: changed });
      else if (changed) out(`restored ${deviceId}: tokens issued before now stay dead; issue a new one with: credbroker token ${deviceId}`);
      else out(`${deviceId} is not revoked; nothing changed`);
    });
}
