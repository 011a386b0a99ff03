import { call, may, named, type Operator } from '../api.js';
import { AuditTable } from '../audit-table.js';
import type { DeviceDetail } from '../types.js';
import { ErrorLine, Loading, Section, when } from '../ui.js';
import { useLoad } from '../use-load.js';
import { DeviceActions } from './device-actions.js';

/** One device: its state, live sessions, live tokens (ids and expiry only), refresh credentials and audit timeline. */
export function Device({ id, op }: { id: string; op: Operator }) {
  const detail = useLoad(() => call<DeviceDetail>('GET', named('/devices', id)), [id]);
  const d = detail.data;
  return (
    <Section title={`Device ${id}`}>
      <ErrorLine error={detail.error} />
      {!d ? <Loading what="the device" /> : (
        <>
          <dl class="facts">
            <dt>Profile</dt><dd>{d.device.profile}</dd>
            <dt>Status</dt><dd class={`status ${d.device.status}`} data-testid="device-status">{d.device.status}</dd>
            {d.device.revokedReason && <><dt>Revoked because</dt><dd data-testid="revoked-reason">{d.device.revokedReason}</dd></>}
            {d.device.revokedAt && <><dt>Revoked at</dt><dd>{when(d.device.revokedAt)}</dd></>}
            <dt>Created</dt><dd>{when(d.device.createdAt)}</dd>
            <dt>Last seen</dt><dd>{when(d.device.lastSeenAt)}</dd>
            <dt>Credentials valid until</dt><dd>{when(d.device.credentialExpiresAt)}</dd>
          </dl>
          {may.operate(op) && <DeviceActions device={d.device} onChanged={detail.reload} />}
          <h3>Session</h3>
          {!d.session ? <p class="muted">Not connected.</p> : (
            <table>
              <thead><tr><th>Kind</th><th>Address</th><th>Transport</th><th>Connected</th><th>Session ends</th></tr></thead>
              <tbody>
                <tr><td>{d.session.kind}</td><td>{d.session.address}</td><td>{d.session.transport}</td><td>{when(d.session.connectedAt)}</td><td>{when(d.session.expiresAt)}</td></tr>
              </tbody>
            </table>
          )}
          <h3>Live tokens</h3>
          {d.liveTokens.length === 0 ? <p class="muted">No live token.</p> : (
            <table>
              <thead><tr><th>Token id (jti)</th><th>Issued</th><th>Expires</th></tr></thead>
              <tbody>
                {d.liveTokens.map((t) => <tr key={t.jti}><td class="mono">{t.jti}</td><td>{when(t.issuedAt)}</td><td>{when(t.expiresAt)}</td></tr>)}
              </tbody>
            </table>
          )}
          <h3>Refresh credential</h3>
          {d.refreshCredentials.length === 0 ? <p class="muted">None on record.</p> : (
            <table>
              <thead><tr><th>State</th><th>Issued</th><th>Used</th><th>Expires</th></tr></thead>
              <tbody>
                {d.refreshCredentials.map((r, i) => <tr key={i}><td>{r.state}</td><td>{when(r.issuedAt)}</td><td>{when(r.usedAt)}</td><td>{when(r.expiresAt)}</td></tr>)}
              </tbody>
            </table>
          )}
          <h3>Audit timeline</h3>
          <AuditTable rows={d.recentAudit} showDevice={false} />
        </>
      )}
    </Section>
  );
}
