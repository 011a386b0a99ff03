import { CredbrokerError, UsageError } from '../errors/index.js';
import { DEFAULT_SETTINGS, openRegistry, type Settings, type SigningAlg } from '../registry/index.js';
import { formatDuration } from '../util/duration.js';
import { Keyring } from '../tokens/index.js';

export interface InitOptions {
  readonly alg?: SigningAlg;
  readonly issuer?: string;
  /** The cap on grant lifetimes (ms), at most the cap on access tokens. */
  readonly maxGrantTtlMs?: number;
}

export interface InitResult {
  /** False when the registry already existed (with matching settings). */
  readonly created: boolean;
  /** The registry's location as shown to people (a URL without its password). */
  readonly path: string;
  readonly settings: Settings;
  readonly activeKid: string;
}

/**
 * `credbroker init`: creates the registry (settings, the seeded profiles, the first
 * signing key) or, when it exists, checks that it was made with the same settings.
 * Idempotent; settings are fixed at creation (changing `alg` or `issuer` would
 * invalidate every token in the field).
 * @throws UsageError `ERR_CONFIG` when the existing registry has another alg or issuer.
 */
export async function initRegistry(target: string, opts: InitOptions = {}): Promise<InitResult> {
  if (opts.issuer !== undefined) checkIssuer(opts.issuer);
  if (opts.maxGrantTtlMs !== undefined && opts.maxGrantTtlMs > DEFAULT_SETTINGS.maxTokenTtlMs) {
    throw new UsageError(`--max-grant-ttl ${formatDuration(opts.maxGrantTtlMs)} is above the cap of ${formatDuration(DEFAULT_SETTINGS.maxTokenTtlMs)} on access token lifetimes`, 'ERR_TTL_TOO_LONG');
  }
  const init: Partial<Settings> = {
    ...(opts.alg ? { alg: opts.alg } : {}),
    ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
    ...(opts.maxGrantTtlMs !== undefined ? { maxGrantTtlMs: opts.maxGrantTtlMs } : {}),
  };
  const reg = await openRegistry(target, { init });
  const path = reg.location;
  try {
    // A registry is made by its first use, and its first use makes its first signing key.
    const existed = (await reg.keys.all()).length > 0;
    const settings = await reg.settings.read();
    const conflicts: string[] = [];
    if (opts.alg && settings.alg !== opts.alg) conflicts.push(`alg ${settings.alg} (asked for ${opts.alg})`);
    if (opts.issuer !== undefined && settings.issuer !== opts.issuer) conflicts.push(`issuer ${settings.issuer} (asked for ${opts.issuer})`);
    if (opts.maxGrantTtlMs !== undefined && settings.maxGrantTtlMs !== opts.maxGrantTtlMs) {
      conflicts.push(`grant lifetime cap ${formatDuration(settings.maxGrantTtlMs)} (asked for ${formatDuration(opts.maxGrantTtlMs)})`);
    }
    if (conflicts.length) {
      throw new UsageError(
        `registry ${path} already exists with ${conflicts.join(' and ')}; settings are fixed when a registry is created (use another --db file for other settings)`,
        'ERR_CONFIG',
      );
    }
    const keyring = await Keyring.load(reg, Date.now(), { mintFirst: true });
    if (!keyring.signer) throw new CredbrokerError('ERR_REGISTRY', `registry ${path} has no active signing key: run credbroker keys rotate`);
    return { created: !existed, path, settings, activeKid: keyring.signer.kid };
  } finally {
    await reg.close();
  }
}

function checkIssuer(issuer: string): void {
  let ok = issuer.length > 0 && issuer.length <= 512 && !/\s/.test(issuer);
  if (ok) {
    try {
      new URL(issuer);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new UsageError(`invalid --issuer "${issuer.slice(0, 80)}": use a URL or URN, e.g. https://iot.example.com or urn:example:credbroker`, 'ERR_CONFIG');
}
