import { useState } from 'preact/hooks';
import { call, may, query, type Operator } from '../api.js';
import { href } from '../route.js';
import type { DeviceRow, Page } from '../types.js';
import { ErrorLine, Loading, Pager, Section } from '../ui.js';
import { useLoad } from '../use-load.js';
import { DeviceActions } from './device-actions.js';

const PAGE_SIZE = 50;

/**
 * The device list: search, filter and paging happen on the server, one page at a
 * time, so a fleet of 100,000 devices is never loaded whole.
 */
export function Devices({ op }: { op: Operator }) {
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState('');
  const [filter, setFilter] = useState({ search: '', status: '' });
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors[cursors.length - 1];
  const list = useLoad(
    () => call<Page<'devices', DeviceRow>>('GET', `/devices${query({ search: filter.search, status: filter.status, limit: PAGE_SIZE, after })}`),
    [filter, after],
  );
  const submit = (e: Event) => {
    e.preventDefault();
    setFilter({ search: search.trim(), status });
    setCursors([]);
  };
  return (
    <Section title="Devices">
      <form class="inline" role="search" onSubmit={submit}>
        <input name="search" type="search" placeholder="device id" aria-label="search devices" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        <select name="status" aria-label="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">any status</option>
          <option value="active">active</option>
          <option value="revoked">revoked</option>
        </select>
        <button type="submit">Search</button>
      </form>
      <ErrorLine error={list.error} />
      {!list.data ? <Loading what="devices" /> : (
        <>
          <table>
            <thead>
              <tr><th>Device</th><th>Profile</th><th>Status</th><th>Connected</th>{may.operate(op) && <th>Action</th>}</tr>
            </thead>
            <tbody>
              {list.data.devices.map((d) => (
                <tr key={d.id} data-device={d.id}>
                  <td><a href={href('devices', d.id)}>{d.id}</a></td>
                  <td>{d.profile}</td>
                  <td class={`status ${d.status}`}>{d.status}{d.revokedReason ? ` — ${d.revokedReason}` : ''}</td>
                  <td>{d.connected ? 'yes' : 'no'}</td>
                  {may.operate(op) && <td><DeviceActions device={d} onChanged={list.reload} /></td>}
                </tr>
              ))}
            </tbody>
          </table>
          {list.data.devices.length === 0 && <p class="muted">No device matches.</p>}
          <Pager page={cursors.length} next={list.data.next} onFirst={() => setCursors([])} onNext={(c) => setCursors([...cursors, c])} />
        </>
      )}
    </Section>
  );
}

