/**
 * Fallback for the revocation benchmark when dist/cli/main.js does not exist:
 * one process that revokes the given devices in one call, as `credbroker revoke
 * ID...` would. Usage: node revoke-child.js DB ID...
 */
import { revokeDevices } from '../../operations/index.js';
import { openRegistry, type DeviceId } from '../../registry/index.js';

const [db, ...ids] = process.argv.slice(2);
const reg = await openRegistry(db);
try {
  await revokeDevices(reg, ids as DeviceId[], 'bench');
} finally {
  await reg.close();
}
