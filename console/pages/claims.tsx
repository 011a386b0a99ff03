import { useState } from 'preact/hooks';
import { call, may, named, type Operator } from '../api.js';
import type { Claim } from '../types.js';
import { ActionButton, ErrorLine, Loading, SecretOnce, Section, when } from '../ui.js';
import { useLoad } from '../use-load.js';

interface CreatedClaim {
  readonly name: string;
  readonly credential: string;
}

/** Claims: quota used, create (the claim credential shown once), revoke. */
export function Claims({ op }: { op: Operator }) {
  const list = useLoad(() => call<{ claims: Claim[] }>('GET', '/claims'), []);
  const [created, setCreated] = useState<CreatedClaim | null>(null);
  return (
    <Section title="Claims">
      {created && <SecretOnce label={`Claim credential for ${created.name}`} value={created.credential} onDone={() => setCreated(null)} />}
      {may.operate(op) && <CreateClaim onCreated={(c) => { setCreated(c); list.reload(); }} />}
      <ErrorLine error={list.error} />
      {!list.data ? <Loading what="claims" /> : list.data.claims.length === 0 ? <p class="muted">No claims.</p> : (
        <table>
          <thead><tr><th>Name</th><th>Profile</th><th>Devices claimed</th><th>Expires</th><th>Status</th>{may.operate(op) && <th>Action</th>}</tr></thead>
          <tbody>
            {list.data.claims.map((c) => (
              <tr key={c.name}>
                <td>{c.name}</td>
                <td>{c.profile}</td>
                <td>{c.used ?? 0}{c.maxDevices ? ` of ${c.maxDevices}` : ''}</td>
                <td>{when(c.expiresAt)}</td>
                <td>{c.status ?? (c.revokedAt ? 'revoked' : 'active')}</td>
                {may.operate(op) && <td>{!c.revokedAt && c.status !== 'revoked' && <ActionButton danger label="Revoke" onClick={async () => { await call('POST', named('/claims', c.name, '/revoke'), {}); list.reload(); }} />}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function CreateClaim({ onCreated }: { onCreated: (c: CreatedClaim) => void }) {
  const [form, setForm] = useState({ name: '', profile: 'sensor', maxDevices: '', ttl: '', idPattern: '' });
  const [error, setError] = useState<string | null>(null);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const body = {
        name: form.name.trim(),
        profile: form.profile.trim(),
        ...(form.maxDevices ? { maxDevices: Number(form.maxDevices) } : {}),
        ...(form.ttl ? { ttl: form.ttl.trim() } : {}),
        ...(form.idPattern ? { idPattern: form.idPattern } : {}),
      };
      const c = await call<CreatedClaim>('POST', '/claims', body);
      setForm({ ...form, name: '' });
      setError(null);
      onCreated(c);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <form class="inline" onSubmit={submit}>
      <input name="claim-name" placeholder="claim name" aria-label="claim name" required value={form.name} onInput={set('name')} />
      <input name="claim-profile" placeholder="profile" aria-label="profile" required value={form.profile} onInput={set('profile')} />
      <input name="claim-max" type="number" min={1} placeholder="max devices" aria-label="max devices" value={form.maxDevices} onInput={set('maxDevices')} />
      <input name="claim-ttl" placeholder="ttl (90d)" aria-label="ttl" value={form.ttl} onInput={set('ttl')} />
      <input name="claim-pattern" placeholder="id pattern (regex)" aria-label="id pattern" value={form.idPattern} onInput={set('idPattern')} />
      <button type="submit">Create claim</button>
      <ErrorLine error={error} />
    </form>
  );
}
