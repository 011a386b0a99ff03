import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions } from 'mqtt';
import { CONNACK } from '../protocol/connack.js';
import { CLAIM_RETRYABLE, claimTopics, claimUsername, isClaimRejectionCode, type ClaimAcceptedBody, type ClaimRejectionCode } from '../protocol/claim.js';
import { checkCredentials, type DeviceCredentials } from './credentials-store.js';
import { DeviceError } from './errors.js';

/** What a unit needs to claim its credentials (SPEC "Provisioning by claim"). */
export interface ClaimOptions {
  /** The unit's own device id (from its serial number): the id it claims. */
  readonly deviceId: string;
  /** The claim file flashed on every unit (`credbroker claim create --out`): `claim`, `claimCredential`, `brokerUrl`. */
  readonly path?: string;
  /** Or the claim's values directly. */
  readonly name?: string;
  readonly credential?: string;
  /** Null or absent: the claim file's, else the client's `url`. */
  readonly brokerUrl?: string | null;
}

export interface ClaimSource {
  readonly deviceId: string;
  readonly name: string;
  readonly credential: string;
  readonly brokerUrl: string | null;
}

/**
 * How one claim ended:
 * - `claimed`: the credentials set;
 * - `retry`: try again after a backoff (no CONNACK, CONNACK 3, `rate_limited`, `unavailable`, no answer);
 * - `refused`: final for this claim and id (CONNACK 2, 4, 5, or any other rejection code;
 *   `code` null for a CONNACK, or a code this client does not know, named in `message`).
 */
export type ClaimResult =
  | { readonly outcome: 'claimed'; readonly credentials: DeviceCredentials }
  | { readonly outcome: 'retry' | 'refused'; readonly connack: number | null; readonly code: ClaimRejectionCode | null; readonly message: string };

/** Reads the claim file, or takes the values given; the error names what is missing, never a value. */
export function claimSource(o: ClaimOptions): ClaimSource {
  let file: Record<string, unknown> = {};
  if (o.path) {
    try {
      file = JSON.parse(readFileSync(o.path, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new DeviceError('ERR_BAD_CREDENTIALS', `cannot read claim file ${o.path}: ${(err as NodeJS.ErrnoException).code ?? 'not JSON'}`);
    }
  }
  const pick = (given: string | null | undefined, key: string): string | undefined => given ?? (typeof file[key] === 'string' ? (file[key] as string) : undefined);
  const name = pick(o.name, 'claim');
  const credential = pick(o.credential, 'claimCredential');
  if (!o.deviceId || !name || !credential) throw new DeviceError('ERR_BAD_CREDENTIALS', `claim: ${!o.deviceId ? 'deviceId' : !name ? 'the claim name' : 'the claim credential'} is missing`);
  return { deviceId: o.deviceId, name, credential, brokerUrl: pick(o.brokerUrl, 'brokerUrl') ?? null };
}

/**
 * One claim, exactly as the wire contract spells it: CONNECT (client id = the
 * device id, user name `claim:<NAME>`, password = the claim credential),
 * SUBSCRIBE `$claims/{id}/provision/+`, PUBLISH `{"requestId"}` on
 * `$claims/{id}/provision`, take the answer, hang up. Never throws: every
 * ending is a ClaimResult, and no message carries a secret.
 */
export function claimOnce(url: string, src: ClaimSource, opts: { mqtt?: IClientOptions; timeoutMs?: number } = {}): Promise<ClaimResult> {
  const topics = claimTopics(src.deviceId);
  const requestId = randomBytes(16).toString('base64url');
  return new Promise((resolve) => {
    const client = mqtt.connect(url, {
      keepalive: 30, connectTimeout: 10_000, ...opts.mqtt,
      clientId: src.deviceId, username: claimUsername(src.name), password: src.credential,
      protocolVersion: 4, clean: true, reconnectPeriod: 0, resubscribe: false,
    });
    let settled = false;
    const finish = (r: ClaimResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end(r.outcome !== 'claimed', {}, () => resolve(r));
      setTimeout(() => resolve(r), 2000).unref(); // end's callback may never come on a dead socket
    };
    const retry = (message: string, connack: number | null = null, code: ClaimRejectionCode | null = null) => finish({ outcome: 'retry', connack, code, message });
    const timer = setTimeout(() => retry('no answer to the claim in time'), opts.timeoutMs ?? 30_000);
    client.on('error', (err: Error & { code?: unknown }) => {
      const connack = typeof err.code === 'number' ? err.code : null;
      if (connack === CONNACK.IDENTIFIER_REJECTED || connack === CONNACK.BAD_USERNAME_OR_PASSWORD || connack === CONNACK.NOT_AUTHORIZED) finish({ outcome: 'refused', connack, code: null, message: `the broker refused the claim (CONNACK ${connack})` });
      else retry(err.message, connack);
    });
    client.on('close', () => retry('connection closed before the answer'));
    client.on('message', (topic, payload) => {
      let body: Record<string, unknown> | null = null;
      try {
        body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      } catch {
        // not an answer: wait for one
      }
      if (!body || body.requestId !== requestId) return;
      if (topic === topics.accepted) {
        try {
          const { requestId: _ignored, ...file } = body as unknown as ClaimAcceptedBody;
          const credentials = checkCredentials(file, 'claim answer');
          if (credentials.deviceId !== src.deviceId) throw new DeviceError('ERR_BAD_ANSWER', 'claim answer is for another device');
          finish({ outcome: 'claimed', credentials });
        } catch (err) {
          retry((err as Error).message);
        }
      } else if (topic === topics.rejected) {
        const message = typeof body.message === 'string' ? body.message : 'claim rejected';
        // No code: taken as `unavailable`. A code this client does not know (a newer broker's) is final, as the others.
        if (typeof body.code === 'string' && !isClaimRejectionCode(body.code)) return finish({ outcome: 'refused', connack: null, code: null, message: `${body.code.slice(0, 64)}: ${message}` });
        const code = isClaimRejectionCode(body.code) ? body.code : 'unavailable';
        finish({ outcome: CLAIM_RETRYABLE.has(code) ? 'retry' : 'refused', connack: null, code, message });
      }
    });
    client.once('connect', () => {
      client.subscribe(topics.filter, { qos: 1 }, (err) => {
        if (err) return retry(`subscribe failed: ${err.message}`);
        client.publish(topics.provision, JSON.stringify({ requestId }), { qos: 1 });
      });
    });
  });
}
