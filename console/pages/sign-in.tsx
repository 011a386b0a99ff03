import { useState } from 'preact/hooks';
import { signIn, type Operator } from '../api.js';
import { ErrorLine } from '../ui.js';

export function SignIn({ onSignedIn }: { onSignedIn: (op: Operator) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      onSignedIn(await signIn(name, password));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
      setPassword('');
    }
  };
  return (
    <main class="sign-in">
      <h1>credbroker console</h1>
      <form onSubmit={submit}>
        <label>
          Operator name
          <input name="name" autoComplete="username" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>Sign in</button>
        <ErrorLine error={error} />
      </form>
    </main>
  );
}
