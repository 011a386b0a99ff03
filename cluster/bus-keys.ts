import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Registry } from '../registry/index.js';

/** The registry secret (settings store) that holds the cluster's bus keys. */
const SECRET_NAME = 'busKeys';
/** A new key seals only this long after it is written: every node reads it (FOLLOW_MS) and accepts it first. */
export const PROPAGATE_MS = 5_000;
/** After a rotation the previous key still opens messages this long past the new one's start (messages in flight, slow nodes). */
export const OVERLAP_MS = 60_000;
/** How often a running node re-reads the keys from the registry. */
export const FOLLOW_MS = 1_000;

/** As stored (JSON): a 4-byte key id (hex), the 32-byte AES key (base64url), when it starts sealing, when it stops opening (null: not yet planned). */
interface StoredKey { kid: string; key: string; activeFrom: number; acceptUntil: number | null }

/** What bus-auth.ts seals and opens with, at one instant. */
export interface BusKeys {
  readonly sealing: { readonly kid: Buffer; readonly key: KeyObject };
  /** Every key that may open a message now, by its 4-byte id. */
  readonly opening: ReadonlyMap<number, KeyObject>;
  /** Every key there has been, by id: what was stored in Redis (retained, queued) under an earlier key stays readable. */
  readonly stored: ReadonlyMap<number, KeyObject>;
}

/** A key as `cluster-key list` shows it: never the key itself. */
export interface BusKeyInfo { kid: string; state: 'active' | 'next' | 'previous'; activeFrom: number; acceptUntil: number | null }

function newKey(activeFrom: number): StoredKey {
  return { kid: randomBytes(4).toString('hex'), key: randomBytes(32).toString('base64url'), activeFrom, acceptUntil: null };
}

function parse(json: string): StoredKey[] {
  return (JSON.parse(json) as { keys: StoredKey[] }).keys;
}

/** The keys stored in `reg`, created (and stored) if there are none yet: the first `serve --bus`. */
export async function ensureBusKeys(reg: Registry, now = Date.now()): Promise<void> {
  if (await reg.settings.readSecret(SECRET_NAME) !== null) return;
  // A node starting at the same time may win: its keys are the cluster's.
  await reg.settings.swapSecret(SECRET_NAME, null, JSON.stringify({ keys: [newKey(now)] }));
}

/**
 * A new key: accepted by every node at once, sealing from `PROPAGATE_MS` on; the
 * current one keeps opening bus messages until `OVERLAP_MS` after that. Earlier
 * keys stay in the registry, for the messages stored in Redis under them. Returns
 * the new key's id.
 */
export async function rotateBusKeys(reg: Registry, now = Date.now()): Promise<{ kid: string; activeFrom: number; previousUntil: number }> {
  for (;;) {
    const stored = await reg.settings.readSecret(SECRET_NAME);
    const next = newKey(now + PROPAGATE_MS);
    const previousUntil = next.activeFrom + OVERLAP_MS;
    const kept = (stored === null ? [] : parse(stored)).map((k) => ({ ...k, acceptUntil: k.acceptUntil ?? previousUntil }));
    if (await reg.settings.swapSecret(SECRET_NAME, stored, JSON.stringify({ keys: [...kept, next] }))) {
      return { kid: next.kid, activeFrom: next.activeFrom, previousUntil };
    }
  }
}

/** The stored keys, as operators see them. */
export async function listBusKeys(reg: Registry, now = Date.now()): Promise<BusKeyInfo[]> {
  const stored = await reg.settings.readSecret(SECRET_NAME);
  const keys = stored === null ? [] : parse(stored).filter((k) => k.acceptUntil === null || k.acceptUntil > now);
  const active = sealingKey(keys, now);
  return keys.map((k) => ({ kid: k.kid, state: k === active ? 'active' : k.activeFrom > now ? 'next' : 'previous', activeFrom: k.activeFrom, acceptUntil: k.acceptUntil }));
}

/** A stored key made ready for use: imported once (a KeyObject), not on every message. */
interface LoadedKey { readonly stored: StoredKey; readonly kid: Buffer; readonly id: number; readonly key: KeyObject }

function load(k: StoredKey): LoadedKey {
  const kid = Buffer.from(k.kid, 'hex');
  return { stored: k, kid, id: kid.readUInt32BE(0), key: createSecretKey(Buffer.from(k.key, 'base64url')) };
}

const byKid = (keys: LoadedKey[]): Map<number, KeyObject> => new Map(keys.map((k) => [k.id, k.key]));

/** The key that seals at `now`: the latest one already started (or, before any has, the earliest). */
function sealingKey(keys: StoredKey[], now: number): StoredKey | undefined {
  const started = keys.filter((k) => k.activeFrom <= now);
  return started.length ? started.reduce((a, b) => (b.activeFrom > a.activeFrom ? b : a)) : keys[0];
}

/**
 * The cluster's bus keys in a running node: read from the registry at start and
 * every `FOLLOW_MS` after, so that a rotation reaches every node without a restart.
 * Which key seals and which open is decided at each use, so a key starts sealing
 * at its `activeFrom` and stops opening at its `acceptUntil` on time.
 */
export class BusKeyring {
  private loaded: LoadedKey[] = [];
  private json = '';
  /** The keys in force, and until when: the next instant a key starts sealing or stops opening. */
  private view: { until: number; keys: BusKeys } | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** Reads the keys (created first if there are none). */
  static async load(reg: Registry): Promise<BusKeyring> {
    await ensureBusKeys(reg);
    const ring = new BusKeyring();
    await ring.read(reg);
    return ring;
  }

  /** From now on, re-reads from `reg` (the running broker's registry); a failed read keeps the keys it has (`onError` once per outage). */
  follow(reg: Registry, onError: (err: Error) => void): void {
    let failing = false;
    this.timer = setInterval(() => void this.read(reg).then(() => { failing = false; }, (err: Error) => {
      if (!failing) onError(err);
      failing = true;
    }), FOLLOW_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The keys in force now: on every message's path, so recomputed only when a key starts or stops, or the keys change. */
  keys(): BusKeys {
    const now = Date.now();
    if (!this.view || now >= this.view.until) this.view = this.compute(now);
    return this.view.keys;
  }

  private compute(now: number): { until: number; keys: BusKeys } {
    const all = this.loaded.map((k) => k.stored);
    const live = this.loaded.filter((k) => k.stored.acceptUntil === null || k.stored.acceptUntil > now);
    const sealing = sealingKey(live.map((k) => k.stored), now) ?? sealingKey(all, now)!;
    const sealer = this.loaded.find((k) => k.stored === sealing)!;
    const changes = all.flatMap((k) => [k.activeFrom, k.acceptUntil ?? Infinity]).filter((t) => t > now);
    return {
      until: Math.min(Infinity, ...changes),
      keys: { sealing: { kid: sealer.kid, key: sealer.key }, opening: byKid(live), stored: byKid(this.loaded) },
    };
  }

  private async read(reg: Registry): Promise<void> {
    const json = await reg.settings.readSecret(SECRET_NAME);
    if (json === null || json === this.json) return;
    const stored = parse(json);
    if (!stored.length) return;
    this.loaded = stored.map(load);
    this.json = json;
    this.view = null;
  }
}
