// The storage abstraction behind actor state and durable reminders, independent of the actor
// runtime. A record is addressed by (table, key, optional sub-key) and is opaque bytes here: the
// caller Avro-encodes it, so providers never see schemas.
//
// Safety rests on the version (an etag) every record carries: each write names the version it
// was based on and succeeds only if that is still the stored one, so an activation that lost its
// placement (and so holds an old version) can never overwrite state a newer activation wrote.
//
// Clearing leaves a tombstone (no value, version + 1) rather than deleting the row. Without it a
// clear would reset the key's version history: a stale activation holding version 1, a newer one
// that clears and writes again (version 1 again), and the stale write would then match. With the
// tombstone a key's versions never repeat; `read` reports a cleared record as absent and a write
// with `expected` 0 re-creates it with the tombstone's version + 1.
import { KoalaError } from '../errors/errors.ts';

export interface StoredRecord {
  value: Buffer;
  /** The etag: 1 for a new record, + 1 per write (a record re-created after a clear continues from the clear). */
  version: number;
}

export interface StateStore {
  /** The record, or undefined if absent (never written, or cleared). */
  read(table: string, key: string, subKey?: string): Promise<StoredRecord | undefined>;
  /**
   * Optimistic concurrency: succeeds only if the current version equals `expected` (0 = must not
   * exist). Returns the new version. Throws StaleStateError when it does not match. Durable when
   * the promise resolves.
   */
  write(table: string, key: string, subKey: string | undefined, value: Buffer, expected: number): Promise<number>;
  /** Same optimistic check; removes the record (`expected` 0 on an absent record is a no-op). */
  clear(table: string, key: string, subKey: string | undefined, expected: number): Promise<void>;
  /**
   * All sub-keyed records of one key, by sub-key in byte order (for loading large split state).
   * The record without a sub-key is not included: read it with `read`.
   */
  readAll(table: string, key: string): Promise<Map<string, StoredRecord>>;
  /** Releases the database; idempotent. Other calls fail afterwards. */
  close(): Promise<void>;
}

export interface ReminderRow {
  /** Interface name of the actor the reminder belongs to. */
  iface: string;
  /** Actor key. */
  key: string;
  /** Reminder name, unique per actor. */
  name: string;
  /** When it is next due, ms since the epoch. */
  dueAt: number;
  /** Period in ms; 0 for a one-shot reminder. */
  periodMs: number;
}

export interface ReminderStore {
  /** Creates the reminder or replaces the one with the same (iface, key, name). */
  upsertReminder(r: ReminderRow): Promise<void>;
  /** Removes it; no error if it does not exist. */
  deleteReminder(iface: string, key: string, name: string): Promise<void>;
  /** Reminders due at or before `now`, oldest first (ties by iface, key, name), at most `limit`. */
  dueReminders(now: number, limit: number): Promise<ReminderRow[]>;
  /** All reminders (of one interface, if given), by iface, key, name. */
  listReminders(iface?: string): Promise<ReminderRow[]>;
}

/** What every provider implements, built in or plugin. */
export type Store = StateStore & ReminderStore;

/** A third-party provider module's default export. */
export type StoreFactory = (options: Record<string, unknown>) => Promise<Store>;

/** A write or clear based on a version that is no longer the stored one. */
export class StaleStateError extends KoalaError {
  readonly table: string;
  readonly key: string;
  /** undefined when the record has no sub-key. */
  readonly subKey: string | undefined;
  /** The version the write was based on (0 = expected absent). */
  readonly expected: number;
  /** The version stored when the write was refused (0 = absent). */
  readonly actual: number;

  constructor(table: string, key: string, subKey: string | undefined, expected: number, actual: number) {
    const where = `${table}/${key}${subKey ? ` (sub-key ${JSON.stringify(subKey)})` : ''}`;
    const show = (v: number) => (v === 0 ? 'version 0 (absent)' : `version ${v}`);
    super(
      'STALE_STATE',
      `stale state for ${where}: expected ${show(expected)} but the store has ${show(actual)}; ` +
        'the record changed since that version was read (another activation wrote or cleared it), so nothing was changed',
      { name: 'StaleStateError' },
    );
    this.table = table;
    this.key = key;
    this.subKey = subKey;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Providers store "no sub-key" as '' (a primary-key column cannot be NULL). */
export function subKeyColumn(subKey: string | undefined): string {
  return subKey ?? '';
}

/** Checks an `expected` version before it reaches SQL: a non-negative safe integer. */
export function checkExpected(expected: number): void {
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw new TypeError(`expected version must be a non-negative integer (0 = must not exist), got ${String(expected)}`);
  }
}

/** Checks a reminder before it is stored. */
export function checkReminder(r: ReminderRow): void {
  if (!Number.isSafeInteger(r.dueAt)) throw new TypeError(`reminder ${r.iface}/${r.key}/${r.name}: dueAt must be an integer (ms since the epoch), got ${String(r.dueAt)}`);
  if (!Number.isSafeInteger(r.periodMs) || r.periodMs < 0) {
    throw new TypeError(`reminder ${r.iface}/${r.key}/${r.name}: periodMs must be a non-negative integer, got ${String(r.periodMs)}`);
  }
}

/** Byte order of the UTF-8 encodings, as SQLite's BINARY and PostgreSQL's "C" collation sort. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function closedError(provider: string): Error {
  return new Error(`the ${provider} state store is closed`);
}
