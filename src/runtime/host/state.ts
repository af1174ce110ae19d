// Persistent actor state on a host: the stores (opened once, shared by all actors of an interface)
// and each activation's view of its record (value + the version it read, for optimistic writes).
import { join, isAbsolute } from 'node:path';
import type { StorageConfig, StorageSettings } from '../config/manifest.ts';
import type { StateAccess } from '../actor/actor.ts';
import { typeForSchema, type AvroResolver, type AvroType } from '../interface/avro.ts';
import { loadStoreProvider, openStore, StaleStateError, type Store } from '../storage/index.ts';

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

// A stored record is [FORMAT][16-byte MD5 fingerprint of the writer's schema][Avro body]. Each
// writer schema is kept too (table `koala.schemas`, key = interface, sub-key = fingerprint), so a
// record written with an older schema is read through Avro schema resolution.
const FORMAT = 1;
const HEADER = 17;
const SCHEMAS = 'koala.schemas';

/** How an interface's state is read and written: its type, and readers for older schemas. */
export interface StateCodec {
  type: AvroType;
  fingerprint: Buffer;
  resolvers: Map<string, AvroResolver>;
}

/**
 * Checks the state schema against every schema records of this interface were written with, and
 * records it. An incompatible change (a field removed without… added without a default, a type
 * that cannot be promoted) is refused here, at host start, naming the interface and the problem.
 */
export async function prepareStateCodec(store: Store, iface: string, type: AvroType): Promise<StateCodec> {
  const fingerprint = type.fingerprint('md5');
  const own = fingerprint.toString('hex');
  const resolvers = new Map<string, AvroResolver>();
  for (const [fp, record] of await store.readAll(SCHEMAS, iface)) {
    if (fp === own) continue;
    const writer = typeForSchema(JSON.parse(record.value.toString('utf8')));
    try {
      resolvers.set(fp, type.createResolver(writer));
    } catch (err) {
      const fields = incompatibleFields(type, writer);
      const which = fields.length ? `field ${fields.map((f) => `"${f}"`).join(', ')}: ` : '';
      throw new Error(`${iface}: the new state schema cannot read state stored with an earlier one (${which}${(err as Error).message}); give added fields a default, or keep the old field types`);
    }
  }
  try {
    await store.write(SCHEMAS, iface, own, Buffer.from(JSON.stringify(type.schema())), 0);
  } catch (err) {
    if (!(err instanceof StaleStateError)) throw err; // another host recorded it first
  }
  return { type, fingerprint, resolvers };
}

/** The top-level record fields that keep `reader` from reading `writer` data, to name them. */
function incompatibleFields(reader: AvroType, writer: AvroType): string[] {
  type Fielded = AvroType & { fields?: { name: string; type: AvroType; defaultValue?: () => unknown }[] };
  const readerFields = (reader as Fielded).fields;
  const writerFields = new Map(((writer as Fielded).fields ?? []).map((f) => [f.name, f]));
  if (!readerFields) return [];
  const bad: string[] = [];
  for (const field of readerFields) {
    const old = writerFields.get(field.name);
    if (old === undefined) {
      if (field.defaultValue?.() === undefined) bad.push(field.name);
      continue;
    }
    try {
      field.type.createResolver(old.type);
    } catch {
      bad.push(field.name);
    }
  }
  return bad;
}

function decode(codec: StateCodec, iface: string, key: string, bytes: Buffer): unknown {
  if (bytes[0] !== FORMAT || bytes.length < HEADER) throw new Error(`${iface}/${key}: stored state is not in Koala's state format`);
  const fp = bytes.subarray(1, HEADER).toString('hex');
  const body = bytes.subarray(HEADER);
  if (fp === codec.fingerprint.toString('hex')) return codec.type.fromBuffer(body);
  const resolver = codec.resolvers.get(fp);
  if (resolver === undefined) throw new Error(`${iface}/${key}: stored state was written with a schema this host does not know (${fp}); restart the host to load it`);
  return codec.type.fromBuffer(body, resolver);
}

function encode(codec: StateCodec, value: unknown): Buffer {
  return Buffer.concat([Buffer.from([FORMAT]), codec.fingerprint, codec.type.toBuffer(value)]);
}

/** Loads an actor's record and gives it `this.state` / `writeState()` / `clearState()` and its rows. */
export async function loadState(store: Store, iface: string, key: string, codec: StateCodec, initial: unknown, rows: AvroType | undefined): Promise<StateAccess> {
  const { type } = codec;
  /** Versions of the rows this activation has read or written. */
  const rowVersions = new Map<string, number>();
  const rowType = (): AvroType => {
    if (rows === undefined) throw new Error(`${iface}: declare the rows' schema (definePlugin state.rows) to use sub-keyed state`);
    return rows;
  };
  const checkSubKey = (subKey: string) => {
    if (typeof subKey !== 'string' || subKey === '') throw new TypeError(`${iface}/${key}: a state row needs a non-empty string sub-key`);
  };
  const record = await store.read(iface, key);
  let value = record && record.value.length > 0 ? decode(codec, iface, key, record.value) : type.clone(initial);
  let version = record?.version ?? 0;
  // Writes of one activation go one after another: each needs the version the previous produced.
  let writes: Promise<unknown> = Promise.resolve();
  const serially = <T>(op: () => Promise<T>): Promise<T> => {
    const next = writes.then(op, op);
    writes = next.catch(() => {});
    return next;
  };
  return {
    get: () => value,
    set: (next) => {
      value = next;
    },
    write: () =>
      serially(async () => {
        if (!type.isValid(value)) throw new TypeError(`${iface}/${key}: this.state does not match the state schema`);
        version = await store.write(iface, key, undefined, encode(codec, value), version);
      }),
    clear: () =>
      serially(async () => {
        await store.clear(iface, key, undefined, version);
        // Absent again (the store keeps a tombstone, so a stale writer's old version never matches).
        version = 0;
        value = type.clone(initial);
      }),
    readRow: async (subKey) => {
      checkSubKey(subKey);
      const t = rowType();
      const row = await store.read(iface, key, subKey);
      rowVersions.set(subKey, row?.version ?? 0);
      return row && row.value.length > 0 ? t.fromBuffer(row.value) : undefined;
    },
    writeRow: async (subKey, rowValue) => {
      checkSubKey(subKey);
      const t = rowType();
      if (!t.isValid(rowValue)) throw new TypeError(`${iface}/${key}: row "${subKey}" does not match the rows' schema`);
      // A row this activation has not read can only be created: overwriting one unseen could
      // clobber a newer activation's row (STALE_STATE says: read it first).
      const expected = rowVersions.get(subKey) ?? 0;
      rowVersions.set(subKey, await serially(() => store.write(iface, key, subKey, t.toBuffer(rowValue), expected)));
    },
    clearRow: async (subKey) => {
      checkSubKey(subKey);
      const expected = rowVersions.get(subKey) ?? 0;
      await serially(() => store.clear(iface, key, subKey, expected));
      rowVersions.set(subKey, 0);
    },
  };
}
