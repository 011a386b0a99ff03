import { connect as tcpConnect } from 'node:net';
import { CredbrokerError } from '../errors/index.js';
import type { Keyring } from '../tokens/index.js';

/** How long the sim waits for the broker to accept a TCP connection before it gives up. */
export const REACH_TIMEOUT_MS = 5000;
/** How long it waits for the broker's JWKS; a silent ops port only skips the check. */
const JWKS_TIMEOUT_MS = 2000;

const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'tcp:': 1883, 'mqtts:': 8883, 'tls:': 8883, 'ws:': 80, 'wss:': 443 };

/**
 * Before anything is provisioned: is something listening at the broker URL? A
 * plain TCP connect, closed at once (no CONNECT, so no failed login is counted
 * against this address). Without it the sim would provision its fleet and then
 * wait on devices that can never connect.
 * @throws CredbrokerError `ERR_BROKER_UNREACHABLE`: `cannot connect to mqtt://…: ECONNREFUSED`
 */
export function checkBrokerListening(url: string, timeoutMs = REACH_TIMEOUT_MS): Promise<void> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : (DEFAULT_PORTS[u.protocol] ?? 1883);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port });
    const fail = (why: string) => {
      socket.destroy();
      reject(new CredbrokerError('ERR_BROKER_UNREACHABLE', `cannot connect to ${url}: ${why} (is "credbroker serve" running there? --url names its MQTT address)`));
    };
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs / 1000} s`));
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
  });
}

/**
 * The ops HTTP address the sim asks when none is given: port 9100 on the MQTT
 * host, but only for a broker on the default MQTT port (`serve`'s defaults pair
 * 1883 with 9100). A broker on another port may not own 9100 there: asking
 * another broker's JWKS would report a mismatch that is not there.
 * @returns null when there is no safe guess
 */
export function defaultOpsUrl(mqttUrl: string): string | null {
  const u = new URL(mqttUrl);
  const port = u.port ? Number(u.port) : (DEFAULT_PORTS[u.protocol] ?? 0);
  return port === 1883 ? `http://${u.host.replace(/:\d+$/, '')}:9100` : null;
}

/** What the registry check found: `match`, or `unchecked` with the reason (the broker's ops port did not answer). */
export type RegistryCheck = { readonly result: 'match'; readonly detail: string } | { readonly result: 'unchecked'; readonly detail: string };

/**
 * Does the broker trust the key this registry signs with? A broker on another
 * registry would refuse every device with CONNACK 4 ("bad user name or
 * password") although each credential is valid: the sim asks the broker's JWKS
 * first, and refuses to start on a mismatch rather than provisioning a fleet
 * that cannot connect.
 * @throws CredbrokerError `ERR_REGISTRY_MISMATCH`
 */
export async function checkSameRegistry(opsUrl: string, keyring: Keyring, db: string, guessed = false): Promise<RegistryCheck> {
  const kid = keyring.signer?.kid;
  if (!kid) return { result: 'unchecked', detail: 'the registry has no active signing key' };
  const where = new URL('.well-known/jwks.json', opsUrl.endsWith('/') ? opsUrl : `${opsUrl}/`).href;
  let kids: string[];
  try {
    const res = await fetch(where, { signal: AbortSignal.timeout(JWKS_TIMEOUT_MS), redirect: 'error' });
    const body = (await res.json()) as { keys?: { kid?: unknown }[] };
    if (!res.ok || !Array.isArray(body.keys)) return { result: 'unchecked', detail: `${where} answered HTTP ${res.status} without a JWKS` };
    kids = body.keys.map((k) => String(k.kid));
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string }; message?: string };
    const why = e.name === 'TimeoutError' ? `no answer within ${JWKS_TIMEOUT_MS / 1000} s` : (e.cause?.code ?? e.message ?? String(err));
    return { result: 'unchecked', detail: `could not read ${where} (${why}); give --broker the broker's ops HTTP address to check` };
  }
  if (!kids.includes(kid)) {
    throw new CredbrokerError('ERR_REGISTRY_MISMATCH', `the broker and the sim use different registries: the broker's JWKS (${where}) lacks the signing key ${kid.slice(0, 12)}… of ${db}, so it would refuse every sim device with CONNACK 4; run the sim with --db set to the broker's registry${guessed ? ' (that address was guessed from --url: give --broker if the broker\'s ops HTTP port is elsewhere)' : ''}`);
  }
  return { result: 'match', detail: `the broker's JWKS holds this registry's signing key (${where})` };
}
