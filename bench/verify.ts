/**
 * 1. Token verify micro-benchmark: credbroker's `verifyAccessToken` (the CONNECT
 * hot path) against one raw node:crypto ES256 verify of the same token, and
 * against `jose.jwtVerify`.
 */
import { jwtVerify } from 'jose';
import { openIssuer } from '../provisioning/index.js';
import { registryVerifyOptions, verifyAccessToken } from '../tokens/index.js';
import type { Fixture } from './lib/fixture.js';
import { rawInput, rawVerify } from './lib/raw-verify.js';
import { median, now, pairedRatio } from './lib/stats.js';

export interface VerifyResult {
  readonly oursUs: number;
  readonly rawUs: number;
  readonly joseUs: number;
  readonly oursOverRaw: number;
  readonly oursOverJose: number;
}

export async function benchVerify(fx: Fixture, runs = 3, n = 500): Promise<VerifyResult> {
  const issuer = await openIssuer(fx.db);
  try {
    const token = fx.devices[0]!.accessToken;
    const keys = issuer.keyring.verifyKeys;
    const key = [...keys.values()][0]!;
    const opts = registryVerifyOptions(issuer.settings, 5); // as the broker verifies: with the lifetime cap
    const input = rawInput(token);
    const raw = () => rawVerify(key.key, input);
    const ours = () => verifyAccessToken(token, keys, opts);
    if (!raw()) throw new Error('raw verify failed');
    ours();
    await jwtVerify(token, key.key, { issuer: opts.issuer, audience: opts.audience });

    const timeSync = (f: () => unknown) => { const t0 = now(); for (let i = 0; i < n; i++) f(); return ((now() - t0) * 1000) / n; };
    const timeAsync = async () => { const t0 = now(); for (let i = 0; i < n; i++) await jwtVerify(token, key.key, { issuer: opts.issuer, audience: opts.audience, clockTolerance: 5 }); return ((now() - t0) * 1000) / n; };
    // warm-up
    timeSync(raw); timeSync(ours); await timeAsync();
    const r: number[] = [], o: number[] = [], j: number[] = [];
    // Many short alternating blocks: each triple sees the same machine load.
    for (let i = 0; i < Math.max(runs, 9); i++) {
      r.push(timeSync(raw));
      o.push(timeSync(ours));
      j.push(await timeAsync());
    }
    const oursUs = median(o), rawUs = median(r), joseUs = median(j);
    return { oursUs, rawUs, joseUs, oursOverRaw: pairedRatio(o, r), oursOverJose: pairedRatio(o, j) };
  } finally {
    await issuer.reg.close();
  }
}
