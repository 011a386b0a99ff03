import { useEffect, useState } from 'preact/hooks';
import { resume, signOut, whenSignedOut, type Operator } from './api.js';
import { Audit } from './pages/audit.js';
import { Claims } from './pages/claims.js';
import { Device } from './pages/device.js';
import { Devices } from './pages/devices.js';
import { Fleet } from './pages/fleet.js';
import { Grants } from './pages/grants.js';
import { Keys } from './pages/keys.js';
import { SignIn } from './pages/sign-in.js';
import { href, useRoute } from './route.js';

const NAV = [
  ['fleet', 'Fleet'],
  ['devices', 'Devices'],
  ['claims', 'Claims'],
  ['grants', 'Grants'],
  ['keys', 'Keys'],
  ['audit', 'Audit log'],
] as const;

function Page({ route, op }: { route: string[]; op: Operator }) {
  const [page, id] = route;
  switch (page) {
    case 'devices':
      return id ? <Device id={id} op={op} /> : <Devices op={op} />;
    case 'claims':
      return <Claims op={op} />;
    case 'grants':
      return <Grants op={op} />;
    case 'keys':
      return <Keys op={op} />;
    case 'audit':
      return <Audit />;
    default:
      return <Fleet />;
  }
}

/** The console: sign-in until there is a session, then the page the fragment names. */
export function App() {
  const [op, setOp] = useState<Operator | null>(null);
  const [checked, setChecked] = useState(false);
  const route = useRoute();
  useEffect(() => {
    whenSignedOut(() => setOp(null));
    void resume().then((o) => {
      setOp(o);
      setChecked(true);
    });
  }, []);
  if (!checked) return null;
  if (!op) return <SignIn onSignedIn={setOp} />;
  const current = route[0] ?? 'fleet';
  return (
    <>
      <header>
        <strong>credbroker</strong>
        <nav>
          {NAV.map(([page, label]) => <a key={page} href={href(page)} class={current === page ? 'current' : ''}>{label}</a>)}
        </nav>
        <span class="who">
          <span data-testid="operator">{op.name}</span> <span class="muted">({op.role})</span>{' '}
          <button type="button" onClick={() => void signOut().finally(() => setOp(null))}>Sign out</button>
        </span>
      </header>
      <main>
        <Page route={route} op={op} />
      </main>
    </>
  );
}
