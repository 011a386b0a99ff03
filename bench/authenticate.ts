/**
 * 2b. The authenticate hook in-process: credbroker's aedes `authenticate` hook
 * (throttle checks, token verify, revocation check, ACL compile, session timer,
 * metrics, audit) called directly on fake clients, against one raw node:crypto
 * verify of the same kind of token. A low-noise view of the CPU that
 * authentication adds to a CONNECT (the connect-rate figure measures the same
 * thing end to end, through the kernel and aedes, and is much noisier).
 */
import type { Client } from 'aedes';
import { createAuthenticate } from '../broker/authenticate.js';
import { startBroker, validateConfig, createLogger } from '../broker/index.js';
import type { Fixture } from './lib/fixture.js';
import { rawInput, rawVerify } from './lib/raw-verify.js';
import { median, now, pairedRatio } from './lib/stats.js';
import { Writable } from 'node:stream';

export interface AuthHookResult { readonly hookUs: number; readonly rawUs: number; readonly ratio: number }

export async function benchAuthenticateHook(fx: Fixture, runs = 3): Promise<AuthHookResult> {
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  const broker = await startBroker(validateConfig({ db: fx.db, host: '127.0.0.1', mqttPort: null, wsPort: null, httpPort: null, logLevel: 'info' }), { logger: createLogger('info', sink) });
  try {
    const ctx = broker.context;
    const authenticate = createAuthenticate(ctx);
    const devs = fx.devices;
    const passwords = devs.map((d) => Buffer.from(d.accessToken, 'utf8'));
    const key = [...ctx.issuer.keyring.verifyKeys.values()][0]!;
    const raws = devs.map((d) => rawInput(d.accessToken));
    // Many short alternating blocks (raw, hook, raw, hook, ...): on shared, noisy
    // cores each pair sees the same load, and the median of the paired ratios is stable.
    const blocks = Math.max(runs, 9);
    const slice = Math.floor(devs.length / (blocks + 1));
    let failures = 0;
    // Timed until every callback has come back, so a hook that answered later
    // (asynchronously) would be timed in full too.
    const hook = (from: number) => new Promise<number>((resolve) => {
      const t0 = now();
      let left = slice;
      const done = (err: Error | null) => {
        if (err) failures++;
        if (--left === 0) resolve(((now() - t0) * 1000) / slice);
      };
      for (let i = from; i < from + slice; i++) {
        const d = devs[i]!;
        const client = { id: d.deviceId, conn: { remoteAddress: '127.0.0.1' } } as unknown as Client;
        authenticate(client, d.deviceId, passwords[i], done);
      }
    });
    const raw = (from: number) => {
      const t0 = now();
      for (let i = from; i < from + slice; i++) {
        if (!rawVerify(key.key, raws[i]!)) failures++;
      }
      return ((now() - t0) * 1000) / slice;
    };
    raw(0); await hook(0); // warm-up on the first slice
    const h: number[] = [], r: number[] = [];
    for (let k = 1; k <= blocks; k++) { r.push(raw(k * slice)); h.push(await hook(k * slice)); }
    if (failures) throw new Error(`${failures} authentications failed in the hook benchmark`);
    return { hookUs: median(h), rawUs: median(r), ratio: pairedRatio(h, r) };
  } finally {
    await broker.close();
  }
}
