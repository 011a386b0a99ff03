import { call, may, type Operator } from '../api.js';
import type { SigningKey } from '../types.js';
import { ActionButton, ErrorLine, Loading, Section, when } from '../ui.js';
import { useLoad } from '../use-load.js';

/** Signing keys (public facts only); rotation is offered to admins. */
export function Keys({ op }: { op: Operator }) {
  const list = useLoad(() => call<{ keys: SigningKey[] }>('GET', '/keys'), []);
  return (
    <Section title="Signing keys">
      {may.administer(op) && <ActionButton label="Rotate signing key" onClick={async () => { await call('POST', '/keys/rotate', {}); list.reload(); }} />}
      <ErrorLine error={list.error} />
      {!list.data ? <Loading what="keys" /> : (
        <table>
          <thead><tr><th>Key id</th><th>Algorithm</th><th>Status</th><th>Created</th><th>Retired</th><th>Verifies until</th></tr></thead>
          <tbody>
            {list.data.keys.map((k) => (
              <tr key={k.kid}><td class="mono">{k.kid}</td><td>{k.alg}</td><td>{k.status}</td><td>{when(k.createdAt)}</td><td>{when(k.retiredAt)}</td><td>{when(k.verifyUntil)}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
