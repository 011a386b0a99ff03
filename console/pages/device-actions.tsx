import { call, named } from '../api.js';
import type { DeviceRow } from '../types.js';
import { ActionButton, ReasonAction } from '../ui.js';

/** Revoke (with a reason) or restore one device; shown only to roles that may. */
export function DeviceActions({ device, onChanged }: { device: DeviceRow; onChanged: () => void }) {
  const path = (action: string) => named('/devices', device.id, `/${action}`);
  if (device.status === 'revoked') {
    return <ActionButton label="Restore" onClick={async () => { await call('POST', path('restore'), {}); onChanged(); }} />;
  }
  return <ReasonAction label="Revoke" onConfirm={async (reason) => { await call('POST', path('revoke'), reason ? { reason } : {}); onChanged(); }} />;
}
