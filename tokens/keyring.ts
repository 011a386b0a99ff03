import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { Actor, Kid, Registry, ScrubReport, SigningAlg, SigningKeyRecord, Stores } from '../registry/index.js';
import { RegistryError } from '../errors/index.js';

/** A public key the verifier accepts, imported once and cached by `kid`. */
export interface VerifyKey {
  readonly kid: Kid;
  readonly alg: SigningAlg;
  /** node:crypto form, for the synchronous hot-path verify. */
  readonly key: KeyObject;
  readonly jwk: JWK;
  /** ms; Infinity while active. A token whose `iat` is after this (beyond the leeway) was not signed by us: refused. */
  readonly retiredAt: number;
  /** ms; Infinity while active. From this instant the key verifies nothing, in a running broker too. */
  readonly verifyUntil: number;
}

export interface SigningKey {
  readonly kid: Kid;
  readonly alg: SigningAlg;
  readonly privateKey: CryptoKey;
  /** The same private key in node:crypto form: minting signs with it off the main thread. */
  readonly keyObject?: KeyObject;
}

/**
 * The registry's signing keys in memory: the active private key for minting and
 * every public key that may still verify (active + retired-but-not-expired).
 *
 * @example
 * const keyring = await Keyring.load(registry);
 * keyring.verifyKeys.get(kid)
 */
export class Keyring {
  readonly signer: SigningKey | null;
  readonly verifyKeys: ReadonlyMap<string, VerifyKey>;

  private constructor(signer: SigningKey | null, verifyKeys: Map<string, VerifyKey>) {
    this.signer = signer;
    this.verifyKeys = verifyKeys;
  }

  /**
   * Loads the keys. A registry without any key gets its first one only with `mintFirst`
   * (init, and the library's create-on-first-use): anywhere else that is a half-made
   * registry (a copy stopped half-way), and a key minted into it would quietly fork the fleet's trust.
   * @throws RegistryError `ERR_REGISTRY` when the registry has no key and `mintFirst` is not set.
   */
  static async load(reg: Stores, now = Date.now(), opts: { mintFirst?: boolean } = {}): Promise<Keyring> {
    if (!(await reg.keys.usable(now)).some((k) => k.status === 'active')) {
      if (!opts.mintFirst && (await reg.keys.all()).length === 0) {
        throw new RegistryError('ERR_REGISTRY', 'the registry has no signing key (never initialised, or a "registry copy" into it stopped half-way): run "credbroker init" on it to make its first key, or copy into a new one again');
      }
      await addActiveKey(reg, (await reg.settings.read()).alg, now, true);
    }
    const records = await reg.keys.usable(now);
    const verifyKeys = new Map<string, VerifyKey>();
    let signer: SigningKey | null = null;
    for (const r of records) {
      const jwk = JSON.parse(r.publicJwk) as JWK;
      verifyKeys.set(r.kid, {
        kid: r.kid, alg: r.alg, jwk, key: createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }),
        retiredAt: r.status === 'active' ? Infinity : r.retiredAt ?? 0,
        verifyUntil: r.status === 'active' ? Infinity : r.verifyUntil ?? 0,
      });
      if (r.status === 'active' && r.privateJwk) {
        const privateJwk = JSON.parse(r.privateJwk) as JWK;
        signer = {
          kid: r.kid, alg: r.alg,
          privateKey: (await importJWK(privateJwk, r.alg)) as CryptoKey,
          keyObject: createPrivateKey({ key: privateJwk as import('node:crypto').JsonWebKey, format: 'jwk' }),
        };
      }
    }
    return new Keyring(signer, verifyKeys);
  }

  /** When the next retired key stops verifying (ms), or null when none will: the broker reloads then. */
  nextExpiry(): number | null {
    let next = Infinity;
    for (const k of this.verifyKeys.values()) next = Math.min(next, k.verifyUntil);
    return Number.isFinite(next) ? next : null;
  }

  /** The public JWKS (`keys jwks`, `/.well-known/jwks.json`). */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.verifyKeys.values()].map((k) => ({ ...k.jwk, kid: k.kid, alg: k.alg, use: 'sig' })) };
  }
}

/** A fresh key pair, its thumbprint as `kid`, in the registry's stored form. */
async function newKeyMaterial(alg: SigningAlg): Promise<{ kid: Kid; alg: SigningAlg; publicJwk: string; privateJwk: string }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
  const publicJwk = await exportJWK(publicKey);
  const kid = (await calculateJwkThumbprint(publicJwk)) as Kid;
  return { kid, alg, publicJwk: JSON.stringify(publicJwk), privateJwk: JSON.stringify(await exportJWK(privateKey)) };
}

/**
 * Generates a key pair and stores it as the active key. With `onlyIfNone`, a
 * concurrent first use by another process wins and this one is discarded.
 */
async function addActiveKey(reg: Stores, alg: SigningAlg, now: number, onlyIfNone: boolean): Promise<Kid> {
  const key = await newKeyMaterial(alg);
  await reg.transaction(async (tx) => {
    if (onlyIfNone && (await tx.keys.usable(now)).some((k) => k.status === 'active')) return;
    await tx.keys.add(key, now);
  });
  return key.kid;
}

export interface Rotation {
  readonly activeKid: Kid;
  readonly retired: readonly { kid: Kid; verifyUntil: number }[];
  /** How far the registry got wiping the retired private keys from its storage (not complete: another reader still holds them; the engine finishes later). */
  readonly scrubbed: ScrubReport;
}

export interface RotateOptions {
  /** Key compromise: every other key stops verifying now, so every token they signed is refused. */
  readonly immediate?: boolean;
  /** Who asked (audited): `cli` by default. */
  readonly actor?: Actor;
  readonly now?: number;
}

/**
 * `keys rotate`: a new active key signs from now on; the old one keeps verifying
 * until the last token it signed has expired (plus a minute of clock leeway).
 * With `immediate` (`keys rotate --now`), the old keys die at once instead.
 * The retired private key is then wiped from the registry's storage (`SpaceStore.scrub`).
 */
export async function rotateKeys(reg: Registry, opts: RotateOptions = {}): Promise<Rotation> {
  const now = opts.now ?? Date.now();
  const key = await newKeyMaterial((await reg.settings.read()).alg);
  // The keys to retire are chosen in the same transaction that adds the new one:
  // two rotations at once still leave exactly one active key.
  // Durable: a key reported killed must stay killed after a power loss.
  const retired = await reg.transaction(async (tx) => {
    const previous: SigningKeyRecord[] = (await tx.keys.usable(now)).filter((k) => opts.immediate || k.status === 'active');
    const out: { kid: Kid; verifyUntil: number }[] = [];
    for (const k of previous) out.push({ kid: k.kid, verifyUntil: opts.immediate ? now : Math.max((await tx.tokens.lastExpiryOf(k.kid)) ?? now, now) + 60_000 });
    await tx.keys.add(key, now);
    for (const r of out) await tx.keys.retire(r.kid, r.verifyUntil, now);
    await tx.changes.append('keys_rotated', null, null, now);
    await tx.audit.append(opts.actor ?? 'cli', 'keys.rotate', null, { activeKid: key.kid, retired: out.map((r) => r.kid), immediate: !!opts.immediate }, now);
    return out;
  }, { durable: true });
  return { activeKid: key.kid, retired, scrubbed: await reg.space.scrub() };
}
