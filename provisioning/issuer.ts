import { localRegistryPath, openRegistry, SyncRegistry, type Registry, type Settings } from '../registry/index.js';
import { RegistryError } from '../errors/index.js';
import { Keyring } from '../tokens/index.js';

/** What minting needs: the registry, its keys and its settings, loaded once. */
export interface Issuer {
  readonly reg: Registry;
  /**
   * The same SQLite connection in its synchronous form, for the callers not yet
   * moved onto the async `reg` (being removed). Throws on another engine.
   */
  readonly syncReg: SyncRegistry;
  readonly keyring: Keyring;
  readonly settings: Settings;
}

/** Opens the registry (creating it on first use) and loads its signing keys. */
export async function openIssuer(target?: string, init: Partial<Settings> = {}): Promise<Issuer> {
  const file = target === undefined ? undefined : localRegistryPath(target);
  const sync = file === null ? null : SyncRegistry.open(file, init);
  const reg = sync ? sync.api : await openRegistry(target, { init });
  try {
    const keyring = await Keyring.load(reg);
    const settings = await reg.settings.read();
    return {
      reg, keyring, settings,
      get syncReg(): SyncRegistry {
        if (!sync) throw new RegistryError('ERR_REGISTRY', `registry ${reg.location}: this command does not support it yet`);
        return sync;
      },
    };
  } catch (err) {
    await reg.close();
    throw err;
  }
}
