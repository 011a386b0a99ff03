import { useState } from 'preact/hooks';
import { call, query } from '../api.js';
import { AuditTable } from '../audit-table.js';
import type { AuditRow, Page } from '../types.js';
import { ErrorLine, Loading, Pager, Section } from '../ui.js';
import { useLoad } from '../use-load.js';

const PAGE_SIZE = 100;

/** The audit log, filtered and paged on the server. */
export function Audit() {
  const [form, setForm] = useState({ device: '', action: '' });
  const [filter, setFilter] = useState(form);
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors[cursors.length - 1];
  const list = useLoad(() => call<Page<'events', AuditRow>>('GET', `/audit${query({ ...filter, limit: PAGE_SIZE, after })}`), [filter, after]);
  const submit = (e: Event) => {
    e.preventDefault();
    setFilter({ device: form.device.trim(), action: form.action.trim() });
    setCursors([]);
  };
  return (
    <Section title="Audit log">
      <form class="inline" onSubmit={submit}>
        <input name="audit-device" placeholder="device id" aria-label="device" value={form.device} onInput={(e) => setForm({ ...form, device: e.currentTarget.value })} />
        <input name="audit-action" placeholder="action" aria-label="action" value={form.action} onInput={(e) => setForm({ ...form, action: e.currentTarget.value })} />
        <button type="submit">Filter</button>
      </form>
      <ErrorLine error={list.error} />
      {!list.data ? <Loading what="the audit log" /> : (
        <>
          <AuditTable rows={list.data.events} />
          <Pager page={cursors.length} next={list.data.next} onFirst={() => setCursors([])} onNext={(c) => setCursors([...cursors, c])} />
        </>
      )}
    </Section>
  );
}
