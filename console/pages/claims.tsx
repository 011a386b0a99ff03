import { useState } from 'preact/hooks';
import { call, may, named, type Operator } from '../api.js';
import type { Claim } from '../types.js';
import { ErrorLine, Loading, ReasonAction, SecretOnce, Section, statusOf, when } from '../ui.js';
import { useAction } from '../use-action.js';
import { useForm } from '../use-form.js';
import { useLoad } from '../use-load.js';

interface CreatedClaim {
  readonly name: string;
  readonly claimCredential: string;
}

/** Claims: quota used, create (the claim credential shown once), revoke. */
export function Claims({ op }: { op: Operator }) {
  const list = useLoad(() => call<{ claims: Claim[] }>('GET', '/claims'), []);
  const [created, setCreated] = useState<CreatedClaim | null>(null);
  return (
    <Section title="Claims">
      {created && <SecretOnce label={`Claim credential for ${created.name}`} value={created.claimCredential} onDone={() => setCreated(null)} />}
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
                <td>{statusOf(c)}</td>
                {may.operate(op) && <td>{statusOf(c) !== 'revoked' && <ReasonAction label="Revoke" onConfirm={async (reason) => { await call('POST', named('/claims', c.name, '/revoke'), reason ? { reason } : {}); list.reload(); }} />}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function CreateClaim({ onCreated }: { onCreated: (c: CreatedClaim) => void }) {
  const { form, setForm, field } = useForm({ name: '', profile: 'sensor', maxDevices: '', ttl: '', idPattern: '' });
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const c = await call<CreatedClaim>('POST', '/claims', {
        name: form.name.trim(),
        profile: form.profile.trim(),
        ...(form.maxDevices ? { maxDevices: Number(form.maxDevices) } : {}),
        ...(form.ttl ? { ttl: form.ttl.trim() } : {}),
        ...(form.idPattern ? { idPattern: form.idPattern } : {}),
      });
      setForm({ ...form, name: '' });
      onCreated(c);
    });
  };
  return (
    <form class="inline" onSubmit={submit}>
      <input name="claim-name" placeholder="claim name" aria-label="claim name" required {...field('name')} />
      <input name="claim-profile" placeholder="profile" aria-label="profile" required {...field('profile')} />
      <input name="claim-max" type="number" min={1} placeholder="max devices" aria-label="max devices" {...field('maxDevices')} />
      <input name="claim-ttl" placeholder="ttl (90d)" aria-label="ttl" {...field('ttl')} />
      <input name="claim-pattern" placeholder="id pattern (regex)" aria-label="id pattern" {...field('idPattern')} />
      <button type="submit" disabled={action.busy}>Create claim</button>
      <ErrorLine error={action.error} />
    </form>
  );
}
