import { useState } from 'preact/hooks';
import { signIn, type Operator } from '../api.js';
import { ErrorLine } from '../ui.js';
import { useAction } from '../use-action.js';

export function SignIn({ onSignedIn }: { onSignedIn: (op: Operator) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => onSignedIn(await signIn(name, password))).finally(() => setPassword(''));
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
        <button type="submit" disabled={action.busy}>Sign in</button>
        <ErrorLine error={action.error} />
      </form>
    </main>
  );
}
