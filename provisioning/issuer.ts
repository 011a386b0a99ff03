import { SyncRegistry, type Settings } from '../registry/index.js';
import { Keyring } from '../tokens/index.js';

/** What minting needs: the registry, its keys and its settings, loaded once. */
export interface Issuer {
  readonly reg: SyncRegistry;
  readonly keyring: Keyring;
  readonly settings: Settings;
}

/** Opens the registry (creating it on first use) and loads its signing keys. */
export async function openIssuer(dbPath?: string, init: Partial<Settings> = {}): Promise<Issuer> {
  const reg = SyncRegistry.open(dbPath, init);
  try {
    return { reg, keyring: await Keyring.load(reg), settings: reg.settings() };
  } catch (err) {
    reg.close();
    throw err;
  }
}
