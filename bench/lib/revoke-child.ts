/**
 * Fallback for the revocation benchmark when dist/cli/main.js does not exist:
 * one process that revokes the given devices in one call, as `credbroker revoke
 * ID...` would. Usage: node revoke-child.js DB ID...
 */
import { revokeDevices } from '../../operations/index.js';
import { SyncRegistry, type DeviceId } from '../../registry/index.js';

const [db, ...ids] = process.argv.slice(2);
const reg = SyncRegistry.open(db);
try {
  revokeDevices(reg, ids as DeviceId[], 'bench');
} finally {
  reg.close();
}
