// The brokers the conformance cases run against, and their devices.
import { setProfile } from '../../operations/index.js';
import { provisionDevices, type Issuer } from '../../provisioning/index.js';
import type { ConformanceTarget } from '../helpers/raw-mqtt.js';

/** What every conformance device may do: its cases keep to `conf/<device id>/…`, and `elsewhere/…` is outside. */
const PROFILE = { name: 'conform', publish: ['conf/#'], subscribe: ['conf/#'] };

/** A target on `port`, whose devices are provisioned on demand into `issuer`'s registry. */
export async function conformanceTarget(label: string, port: number, issuer: Issuer): Promise<ConformanceTarget> {
  await setProfile(issuer.reg, PROFILE);
  let n = 0;
  return {
    label, port,
    async device() {
      const id = `conf-${label}-${++n}`;
      const [cred] = (await provisionDevices(issuer, [{ line: 2, id }], { profile: PROFILE.name, brokerUrl: `mqtt://127.0.0.1:${port}` })).provisioned;
      return cred!;
    },
  };
}
