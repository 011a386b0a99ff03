import { href } from './route.js';
import type { AuditRow } from './types.js';
import { when } from './ui.js';

/** Details as `key=value` text: whatever a row holds is shown, and never as markup. */
function details(d: AuditRow['details']): string {
  if (!d) return '';
  return Object.entries(d).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

/** Audit rows, newest first as the API gives them. */
export function AuditTable({ rows, showDevice = true }: { rows: readonly AuditRow[]; showDevice?: boolean }) {
  if (rows.length === 0) return <p class="muted">No audit rows.</p>;
  return (
    <table class="audit">
      <thead>
        <tr><th>When</th><th>Actor</th><th>Action</th>{showDevice && <th>Device</th>}<th>Details</th></tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={r.id ?? i}>
            <td>{when(r.at)}</td>
            <td>{r.actor}</td>
            <td>{r.action}</td>
            {showDevice && <td>{r.deviceId ? <a href={href('devices', r.deviceId)}>{r.deviceId}</a> : ''}</td>}
            <td class="details">{details(r.details)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
