import { useEffect } from 'preact/hooks';
import { call } from '../api.js';
import { RateChart } from '../rate-chart.js';
import type { Stats } from '../types.js';
import { ErrorLine, Loading, Section } from '../ui.js';
import { useLoad } from '../use-load.js';

const REFRESH_MS = 10_000;

/** The fleet at a glance: devices by status, live sessions, connect and renewal rates. */
export function Fleet() {
  const stats = useLoad(() => call<Stats>('GET', '/stats'), []);
  useEffect(() => {
    const timer = setInterval(stats.reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [stats.reload]);
  const s = stats.data;
  return (
    <Section title="Fleet">
      <ErrorLine error={stats.error} />
      {!s ? <Loading what="the fleet" /> : (
        <>
          <dl class="tiles">
            {Object.entries(s.devices).map(([status, n]) => (
              <div key={status}>
                <dt>{status} devices</dt>
                <dd data-testid={`devices-${status}`}>{n}</dd>
              </div>
            ))}
            <div>
              <dt>live sessions</dt>
              <dd data-testid="sessions">{s.sessions}</dd>
            </div>
          </dl>
          <RateChart points={s.rates} />
        </>
      )}
    </Section>
  );
}
