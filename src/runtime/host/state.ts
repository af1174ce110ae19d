// Persistent actor state on a host: the stores (opened once, shared by all actors of an interface)
// and each activation's view of its record (value + the version it read, for optimistic writes).
import { join, isAbsolute } from 'node:path';
import type { StorageConfig, StorageSettings } from '../config/manifest.ts';
import type { StateAccess } from '../actor/actor.ts';
import type { AvroType } from '../interface/avro.ts';
import { loadStoreProvider, openStore, type Store } from '../storage/index.ts';

export class StateStores {
  readonly #settings: StorageSettings;
  readonly #root: string;
  readonly #open = new Map<string, Promise<Store>>();

  constructor(settings: StorageSettings, root: string) {
    this.#settings = settings;
    this.#root = root;
  }

  /** The store of an interface (its own settings, else the default), opened on first use. */
  for(iface: string): Promise<Store> {
    const config = this.#settings.interfaces[iface] ?? this.#settings;
    const id = JSON.stringify([config.provider, config.file, config.url, config.module]);
    let store = this.#open.get(id);
    if (store === undefined) {
      store = this.#openStore(config);
      store.catch(() => this.#open.delete(id));
      this.#open.set(id, store);
    }
    return store;
  }

  async close(): Promise<void> {
    const stores = await Promise.allSettled(this.#open.values());
    this.#open.clear();
    for (const s of stores) if (s.status === 'fulfilled') await s.value.close().catch(() => {});
  }

  async #openStore(config: StorageConfig): Promise<Store> {
    switch (config.provider) {
      case 'sqlite':
        return openStore({ provider: 'sqlite', file: isAbsolute(config.file) ? config.file : join(this.#root, config.file) });
      case 'memory':
        return openStore({ provider: 'memory' });
      case 'postgres':
        if (!config.url) throw new Error('storage.provider is postgres but storage.url (or KOALA_STORAGE_URL) is not set');
        return openStore({ provider: 'postgres', url: config.url });
      case 'module':
        if (!config.module) throw new Error('storage.provider is module but storage.module names no provider module');
        return (await loadStoreProvider(config.module, this.#root))(config.options ?? {});
    }
  }
}

/** Loads an actor's record and gives it `this.state` / `writeState()` / `clearState()`. */
export async function loadState(store: Store, iface: string, key: string, type: AvroType, initial: unknown): Promise<StateAccess> {
  const record = await store.read(iface, key);
  let value = record && record.value.length > 0 ? type.fromBuffer(record.value) : type.clone(initial);
  let version = record?.version ?? 0;
  return {
    get: () => value,
    set: (next) => {
      value = next;
    },
    write: async () => {
      if (!type.isValid(value)) throw new TypeError(`${iface}/${key}: this.state does not match the state schema`);
      version = await store.write(iface, key, undefined, type.toBuffer(value), version);
    },
    clear: async () => {
      await store.clear(iface, key, undefined, version);
      // Absent again (the store keeps a tombstone, so a stale writer's old version never matches).
      version = 0;
      value = type.clone(initial);
    },
  };
}
