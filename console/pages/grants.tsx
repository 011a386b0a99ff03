import { useState } from 'preact/hooks';
import { call, may, named, type Operator } from '../api.js';
import type { Grant } from '../types.js';
import { ActionButton, ErrorLine, Loading, SecretOnce, Section, statusOf, when } from '../ui.js';
import { useAction } from '../use-action.js';
import { useForm } from '../use-form.js';
import { useLoad } from '../use-load.js';

interface IssuedGrant {
  readonly name: string;
  readonly token: string;
}

const patterns = (s: string) => s.split(/[\s,]+/).filter(Boolean);

/** Grants: issue (the token shown once), revoke. */
export function Grants({ op }: { op: Operator }) {
  const list = useLoad(() => call<{ grants: Grant[] }>('GET', '/grants'), []);
  const [issued, setIssued] = useState<IssuedGrant | null>(null);
  return (
    <Section title="Grants">
      {issued && <SecretOnce label={`Grant token for ${issued.name}`} value={issued.token} onDone={() => setIssued(null)} />}
      {may.operate(op) && <IssueGrant onIssued={(g) => { setIssued(g); list.reload(); }} />}
      <ErrorLine error={list.error} />
      {!list.data ? <Loading what="grants" /> : list.data.grants.length === 0 ? <p class="muted">No grants.</p> : (
        <table>
          <thead><tr><th>Name</th><th>Publish</th><th>Subscribe</th><th>Reason</th><th>Expires</th><th>Status</th>{may.operate(op) && <th>Action</th>}</tr></thead>
          <tbody>
            {list.data.grants.map((g, i) => (
              <tr key={`${g.name}-${i}`} data-grant={g.name}>
                <td>{g.name}</td>
                <td class="mono">{g.publish.join(' ')}</td>
                <td class="mono">{g.subscribe.join(' ')}</td>
                <td>{g.reason ?? ''}</td>
                <td>{when(g.expiresAt)}</td>
                <td>{statusOf(g)}</td>
                {may.operate(op) && <td>{statusOf(g) !== 'revoked' && <ActionButton danger label="Revoke" onClick={async () => { await call('POST', named('/grants', g.name, '/revoke'), {}); list.reload(); }} />}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function IssueGrant({ onIssued }: { onIssued: (g: IssuedGrant) => void }) {
  const { form, setForm, field } = useForm({ name: '', pub: '', sub: '', ttl: '30m', within: '', reason: '' });
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const g = await call<IssuedGrant>('POST', '/grants', {
        name: form.name.trim(),
        publish: patterns(form.pub),
        subscribe: patterns(form.sub),
        ttl: form.ttl.trim(),
        ...(form.within ? { within: form.within.trim() } : {}),
        ...(form.reason ? { reason: form.reason } : {}),
      });
      setForm({ ...form, name: '', reason: '' });
      onIssued(g);
    });
  };
  return (
    <form class="inline" onSubmit={submit}>
      <input name="grant-name" placeholder="grant name" aria-label="grant name" required {...field('name')} />
      <input name="grant-pub" placeholder="publish patterns" aria-label="publish patterns" {...field('pub')} />
      <input name="grant-sub" placeholder="subscribe patterns" aria-label="subscribe patterns" {...field('sub')} />
      <input name="grant-ttl" placeholder="ttl" aria-label="ttl" required {...field('ttl')} />
      <input name="grant-within" placeholder="within device (optional)" aria-label="within device" {...field('within')} />
      <input name="grant-reason" placeholder="reason" aria-label="grant reason" {...field('reason')} />
      <button type="submit" disabled={action.busy}>Issue grant</button>
      <ErrorLine error={action.error} />
    </form>
  );
}
