// The embedded default provider: one SQLite file through Node's built-in `node:sqlite`.
//
// Durability: WAL journal with synchronous=FULL, so every commit fsyncs the WAL before it
// returns; an acknowledged write survives a killed process and a power loss. (NORMAL, the usual
// WAL pairing, can lose the last commits on power loss.)
//
// Concurrency: every check-and-write is one statement (`UPDATE … WHERE version = ?`, or an
// INSERT whose conflict clause only revives a tombstone), so it is atomic without an explicit
// transaction, also between processes sharing the file: SQLite serialises writers.
//
// `DatabaseSync` is synchronous: a write blocks the event loop for its fsync (about a
// millisecond on an SSD). That keeps the provider small and the acknowledgement exact; a host that
// writes state at a high rate should use the postgres provider (or a future worker-thread one).
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  StaleStateError,
  checkExpected,
  checkReminder,
  closedError,
  subKeyColumn,
  type ReminderRow,
  type Store,
  type StoredRecord,
} from './provider.ts';

/** How long a write waits for another connection's write lock before failing (SQLITE_BUSY). */
const BUSY_TIMEOUT_MS = 10_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS koala_state (
  tbl TEXT NOT NULL,
  key TEXT NOT NULL,
  sub_key TEXT NOT NULL,
  value BLOB,              -- NULL: a tombstone left by clear (see provider.ts)
  version INTEGER NOT NULL,
  PRIMARY KEY (tbl, key, sub_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS koala_reminders (
  iface TEXT NOT NULL,
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  due_at INTEGER NOT NULL,
  period_ms INTEGER NOT NULL,
  PRIMARY KEY (iface, key, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS koala_reminders_due ON koala_reminders (due_at, iface, key, name);
`;

interface Statements {
  read: StatementSync;
  insert: StatementSync;
  update: StatementSync;
  current: StatementSync;
  clear: StatementSync;
  readAll: StatementSync;
  upsertReminder: StatementSync;
  deleteReminder: StatementSync;
  dueReminders: StatementSync;
  listReminders: StatementSync;
  listRemindersOf: StatementSync;
}

export class SqliteStore implements Store {
  readonly file: string;
  readonly #db: DatabaseSync;
  readonly #q: Statements;
  #closed = false;

  /** Opens (creating the file and its parent directories if needed) and sets up the schema. */
  constructor(file: string) {
    this.file = resolve(file);
    mkdirSync(dirname(this.file), { recursive: true });
    try {
      this.#db = new DatabaseSync(this.file, { timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      throw new Error(`sqlite state store at ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      // journal_mode is persistent in the file; synchronous is per connection.
      this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
      this.#db.exec(SCHEMA);
      this.#q = this.#prepare();
    } catch (err) {
      this.#db.close();
      throw new Error(`sqlite state store at ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }

  #prepare(): Statements {
    const db = this.#db;
    return {
      read: db.prepare('SELECT value, version FROM koala_state WHERE tbl = ? AND key = ? AND sub_key = ? AND value IS NOT NULL'),
      // expected 0: a new row at version 1, or a tombstone revived past its version; a live row
      // is left alone and RETURNING yields nothing.
      insert: db.prepare(
        `INSERT INTO koala_state (tbl, key, sub_key, value, version) VALUES (?, ?, ?, ?, 1)
         ON CONFLICT (tbl, key, sub_key) DO UPDATE SET value = excluded.value, version = version + 1 WHERE value IS NULL
         RETURNING version`,
      ),
      update: db.prepare(
        `UPDATE koala_state SET value = ?, version = version + 1
         WHERE tbl = ? AND key = ? AND sub_key = ? AND version = ? AND value IS NOT NULL
         RETURNING version`,
      ),
      // Only to name the stored version in a StaleStateError.
      current: db.prepare('SELECT version FROM koala_state WHERE tbl = ? AND key = ? AND sub_key = ? AND value IS NOT NULL'),
      clear: db.prepare(
        `UPDATE koala_state SET value = NULL, version = version + 1
         WHERE tbl = ? AND key = ? AND sub_key = ? AND version = ? AND value IS NOT NULL`,
      ),
      readAll: db.prepare(
        `SELECT sub_key, value, version FROM koala_state
         WHERE tbl = ? AND key = ? AND sub_key <> '' AND value IS NOT NULL ORDER BY sub_key`,
      ),
      upsertReminder: db.prepare(
        `INSERT INTO koala_reminders (iface, key, name, due_at, period_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (iface, key, name) DO UPDATE SET due_at = excluded.due_at, period_ms = excluded.period_ms`,
      ),
      deleteReminder: db.prepare('DELETE FROM koala_reminders WHERE iface = ? AND key = ? AND name = ?'),
      dueReminders: db.prepare(
        'SELECT iface, key, name, due_at, period_ms FROM koala_reminders WHERE due_at <= ? ORDER BY due_at, iface, key, name LIMIT ?',
      ),
      listReminders: db.prepare('SELECT iface, key, name, due_at, period_ms FROM koala_reminders ORDER BY iface, key, name'),
      listRemindersOf: db.prepare('SELECT iface, key, name, due_at, period_ms FROM koala_reminders WHERE iface = ? ORDER BY iface, key, name'),
    };
  }

  /** The durability settings in effect on this connection (for diagnostics and tests). */
  pragmas(): { journalMode: string; synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA' } {
    this.#open();
    const journalMode = String(this.#db.prepare('PRAGMA journal_mode').get()?.journal_mode);
    const level = Number(this.#db.prepare('PRAGMA synchronous').get()?.synchronous);
    return { journalMode, synchronous: (['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const)[level] ?? 'OFF' };
  }

  async read(table: string, key: string, subKey?: string): Promise<StoredRecord | undefined> {
    this.#open();
    const row = this.#q.read.get(table, key, subKeyColumn(subKey));
    return row ? { value: toBuffer(row.value), version: Number(row.version) } : undefined;
  }

  async write(table: string, key: string, subKey: string | undefined, value: Buffer, expected: number): Promise<number> {
    this.#open();
    checkExpected(expected);
    const sub = subKeyColumn(subKey);
    const row =
      expected === 0 ? this.#q.insert.get(table, key, sub, value) : this.#q.update.get(value, table, key, sub, expected);
    if (row) return Number(row.version);
    throw this.#stale(table, key, sub, expected);
  }

  async clear(table: string, key: string, subKey: string | undefined, expected: number): Promise<void> {
    this.#open();
    checkExpected(expected);
    const sub = subKeyColumn(subKey);
    if (expected === 0) {
      // Must not exist: then there is nothing to clear.
      if (this.#q.current.get(table, key, sub)) throw this.#stale(table, key, sub, expected);
      return;
    }
    if (Number(this.#q.clear.run(table, key, sub, expected).changes) !== 1) throw this.#stale(table, key, sub, expected);
  }

  async readAll(table: string, key: string): Promise<Map<string, StoredRecord>> {
    this.#open();
    const out = new Map<string, StoredRecord>();
    for (const row of this.#q.readAll.all(table, key)) {
      out.set(String(row.sub_key), { value: toBuffer(row.value), version: Number(row.version) });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  async upsertReminder(r: ReminderRow): Promise<void> {
    this.#open();
    checkReminder(r);
    this.#q.upsertReminder.run(r.iface, r.key, r.name, r.dueAt, r.periodMs);
  }

  async deleteReminder(iface: string, key: string, name: string): Promise<void> {
    this.#open();
    this.#q.deleteReminder.run(iface, key, name);
  }

  async dueReminders(now: number, limit: number): Promise<ReminderRow[]> {
    this.#open();
    return this.#q.dueReminders.all(now, Math.max(0, Math.floor(limit))).map(toReminder);
  }

  async listReminders(iface?: string): Promise<ReminderRow[]> {
    this.#open();
    const rows = iface === undefined ? this.#q.listReminders.all() : this.#q.listRemindersOf.all(iface);
    return rows.map(toReminder);
  }

  #open(): void {
    if (this.#closed) throw closedError('sqlite');
  }

  #stale(table: string, key: string, sub: string, expected: number): StaleStateError {
    const row = this.#q.current.get(table, key, sub);
    return new StaleStateError(table, key, sub || undefined, expected, row ? Number(row.version) : 0);
  }
}

/** node:sqlite returns BLOBs as plain Uint8Arrays; callers get Buffers (a view, no copy). */
function toBuffer(v: unknown): Buffer {
  if (!(v instanceof Uint8Array)) throw new TypeError(`koala_state.value is not a BLOB (got ${typeof v})`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function toReminder(row: Record<string, unknown>): ReminderRow {
  return {
    iface: String(row.iface),
    key: String(row.key),
    name: String(row.name),
    dueAt: Number(row.due_at),
    periodMs: Number(row.period_ms),
  };
}
