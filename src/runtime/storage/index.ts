// Opening a state store: the built-in providers by name, third-party ones as plugin modules.
// Providers are imported on demand, so a host that only uses memory or sqlite never loads `pg`.
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Store, StoreFactory } from './provider.ts';

export {
  StaleStateError,
  type ReminderRow,
  type ReminderStore,
  type StateStore,
  type Store,
  type StoreFactory,
  type StoredRecord,
} from './provider.ts';

export type StoreConfig = { provider: 'memory' } | { provider: 'sqlite'; file: string } | { provider: 'postgres'; url: string };

export async function openStore(config: StoreConfig): Promise<Store> {
  switch (config.provider) {
    case 'memory': {
      const { MemoryStore } = await import('./memory.ts');
      return new MemoryStore();
    }
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite.ts');
      return new SqliteStore(config.file);
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres.ts');
      return PostgresStore.open({ url: config.url });
    }
    default: {
      const unknown: never = config;
      throw new Error(`unknown state store provider ${JSON.stringify((unknown as { provider?: unknown }).provider)}; use memory, sqlite or postgres`);
    }
  }
}

const STORE_METHODS = ['read', 'write', 'clear', 'readAll', 'close', 'upsertReminder', 'deleteReminder', 'dueReminders', 'listReminders'] as const;

/**
 * Imports a third-party provider: a module (path absolute or relative to `root`) whose default
 * export is a `StoreFactory`. The returned factory checks that what it opens has every `Store`
 * method, so a broken plugin fails at open with its name rather than at the first write.
 */
export async function loadStoreProvider(modulePath: string, root: string = process.cwd()): Promise<StoreFactory> {
  const file = isAbsolute(modulePath) ? modulePath : resolve(root, modulePath);
  if (!(await stat(file).catch(() => undefined))?.isFile()) {
    throw new Error(`state store provider ${modulePath} not found (looked for ${file})`);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new Error(`state store provider ${modulePath} failed to load: ${String((err as Error).message ?? err).split('\n')[0]}`, { cause: err });
  }
  const factory = mod.default;
  if (typeof factory !== 'function') {
    throw new Error(`state store provider ${modulePath} must \`export default async (options) => store\` (its default export is ${typeof factory})`);
  }
  return async (options: Record<string, unknown>): Promise<Store> => {
    const store: unknown = await (factory as (options: Record<string, unknown>) => unknown)(options);
    const missing = STORE_METHODS.filter((m) => typeof (store as Record<string, unknown> | null)?.[m] !== 'function');
    if (missing.length > 0) {
      throw new Error(`state store provider ${modulePath} returned a store without ${missing.join(', ')}`);
    }
    return store as Store;
  };
}
