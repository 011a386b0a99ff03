import { openRegistry, type Registry, type Settings } from '../registry/index.js';
import { Keyring } from '../tokens/index.js';

/** What minting needs: the registry, its keys and its settings, loaded once. */
export interface Issuer {
  readonly reg: Registry;
  readonly keyring: Keyring;
  readonly settings: Settings;
}

/**
 * Opens the registry (creating it on first use) and loads its signing keys. Commands
 * other than `init` pass `mintFirstKey: false`: they refuse a registry without a key.
 */
export async function openIssuer(target?: string, init: Partial<Settings> = {}, opts: { mintFirstKey?: boolean } = {}): Promise<Issuer> {
  const reg = await openRegistry(target, { init });
  try {
    const keyring = await Keyring.load(reg, Date.now(), { mintFirst: opts.mintFirstKey ?? true });
    const settings = await reg.settings.read();
    return { reg, keyring, settings };
  } catch (err) {
    await reg.close();
    throw err;
  }
}
