// The networked provider for clusters of several machines: PostgreSQL through `pg` (a Pool).
//
// Concurrency: each check-and-write is one statement. Under READ COMMITTED a second
// `UPDATE … WHERE version = $n` on the same row waits for the first to commit and then re-checks
// its WHERE against the new row, so of concurrent writers with the same expected version exactly
// one matches. For expected 0 an `INSERT … ON CONFLICT` inserts, or revives a tombstone (the
// conflict clause only updates when the row has no value), and otherwise changes nothing.
//
// Durability: a statement outside a transaction commits when it returns, and with the server's
// default synchronous_commit=on the commit record is flushed to the WAL first.
//
// Text columns use the "C" collation: byte order, as SQLite sorts, whatever the database's locale.
import pg from 'pg';
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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS koala_state (
  tbl TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  sub_key TEXT COLLATE "C" NOT NULL,
  value BYTEA,             -- NULL: a tombstone left by clear (see provider.ts)
  version BIGINT NOT NULL,
  PRIMARY KEY (tbl, key, sub_key)
);
CREATE TABLE IF NOT EXISTS koala_reminders (
  iface TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  due_at BIGINT NOT NULL,
  period_ms BIGINT NOT NULL,
  PRIMARY KEY (iface, key, name)
);
CREATE INDEX IF NOT EXISTS koala_reminders_due ON koala_reminders (due_at, iface, key, name);
`;

/**
 * Serialises schema creation between hosts starting at once: concurrent CREATE TABLE IF NOT EXISTS
 * of the same table can fail with a unique violation in PostgreSQL's catalog. Any constant works;
 * this is "koala" in ASCII.
 */
const SCHEMA_LOCK = 0x6b6f616c61;

const SQL = {
  read: 'SELECT value, version FROM koala_state WHERE tbl = $1 AND key = $2 AND sub_key = $3 AND value IS NOT NULL',
  insert: `INSERT INTO koala_state AS s (tbl, key, sub_key, value, version) VALUES ($1, $2, $3, $4, 1)
           ON CONFLICT (tbl, key, sub_key) DO UPDATE SET value = EXCLUDED.value, version = s.version + 1 WHERE s.value IS NULL
           RETURNING version`,
  update: `UPDATE koala_state SET value = $1, version = version + 1
           WHERE tbl = $2 AND key = $3 AND sub_key = $4 AND version = $5 AND value IS NOT NULL
           RETURNING version`,
  current: 'SELECT version FROM koala_state WHERE tbl = $1 AND key = $2 AND sub_key = $3 AND value IS NOT NULL',
  clear: `UPDATE koala_state SET value = NULL, version = version + 1
          WHERE tbl = $1 AND key = $2 AND sub_key = $3 AND version = $4 AND value IS NOT NULL`,
  readAll: `SELECT sub_key, value, version FROM koala_state
            WHERE tbl = $1 AND key = $2 AND sub_key <> '' AND value IS NOT NULL ORDER BY sub_key`,
  upsertReminder: `INSERT INTO koala_reminders (iface, key, name, due_at, period_ms) VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (iface, key, name) DO UPDATE SET due_at = EXCLUDED.due_at, period_ms = EXCLUDED.period_ms`,
  deleteReminder: 'DELETE FROM koala_reminders WHERE iface = $1 AND key = $2 AND name = $3',
  dueReminders: 'SELECT iface, key, name, due_at, period_ms FROM koala_reminders WHERE due_at <= $1 ORDER BY due_at, iface, key, name LIMIT $2',
  listReminders: 'SELECT iface, key, name, due_at, period_ms FROM koala_reminders ORDER BY iface, key, name',
  listRemindersOf: 'SELECT iface, key, name, due_at, period_ms FROM koala_reminders WHERE iface = $1 ORDER BY iface, key, name',
} as const;

interface StateRow {
  sub_key?: string;
  value: Buffer;
  /** BIGINT: pg returns it as a string. */
  version: string;
}

interface ReminderDbRow {
  iface: string;
  key: string;
  name: string;
  due_at: string;
  period_ms: string;
}

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database` */
  url: string;
  /** Pool size; default 10 (pg's default). */
  maxConnections?: number;
}

export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  #closed = false;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Connects and creates the tables if they do not exist. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 10 });
    // An idle pooled connection that breaks (server restart, network) emits 'error' on the pool;
    // unhandled, that would crash the host. The pool drops that connection, and the next query
    // reports the problem to its caller, so there is nothing more to do here.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
        await client.query(SCHEMA);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new Error(`postgres state store at ${redact(options.url)}: ${(err as Error).message}`, { cause: err });
    }
    return new PostgresStore(pool);
  }

  async read(table: string, key: string, subKey?: string): Promise<StoredRecord | undefined> {
    const row = (await this.#query<StateRow>(SQL.read, [table, key, subKeyColumn(subKey)]))[0];
    return row ? { value: row.value, version: Number(row.version) } : undefined;
  }

  async write(table: string, key: string, subKey: string | undefined, value: Buffer, expected: number): Promise<number> {
    checkExpected(expected);
    const sub = subKeyColumn(subKey);
    const rows =
      expected === 0
        ? await this.#query<StateRow>(SQL.insert, [table, key, sub, value])
        : await this.#query<StateRow>(SQL.update, [value, table, key, sub, expected]);
    const row = rows[0];
    if (row) return Number(row.version);
    throw await this.#stale(table, key, sub, expected);
  }

  async clear(table: string, key: string, subKey: string | undefined, expected: number): Promise<void> {
    checkExpected(expected);
    const sub = subKeyColumn(subKey);
    if (expected === 0) {
      // Must not exist: then there is nothing to clear.
      if ((await this.#query<StateRow>(SQL.current, [table, key, sub])).length > 0) throw await this.#stale(table, key, sub, expected);
      return;
    }
    this.#open();
    const res = await this.#pool.query(SQL.clear, [table, key, sub, expected]);
    if (res.rowCount !== 1) throw await this.#stale(table, key, sub, expected);
  }

  async readAll(table: string, key: string): Promise<Map<string, StoredRecord>> {
    const out = new Map<string, StoredRecord>();
    for (const row of await this.#query<StateRow>(SQL.readAll, [table, key])) {
      out.set(row.sub_key ?? '', { value: row.value, version: Number(row.version) });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  async upsertReminder(r: ReminderRow): Promise<void> {
    checkReminder(r);
    await this.#query(SQL.upsertReminder, [r.iface, r.key, r.name, r.dueAt, r.periodMs]);
  }

  async deleteReminder(iface: string, key: string, name: string): Promise<void> {
    await this.#query(SQL.deleteReminder, [iface, key, name]);
  }

  async dueReminders(now: number, limit: number): Promise<ReminderRow[]> {
    return (await this.#query<ReminderDbRow>(SQL.dueReminders, [now, Math.max(0, Math.floor(limit))])).map(toReminder);
  }

  async listReminders(iface?: string): Promise<ReminderRow[]> {
    const rows = iface === undefined ? await this.#query<ReminderDbRow>(SQL.listReminders, []) : await this.#query<ReminderDbRow>(SQL.listRemindersOf, [iface]);
    return rows.map(toReminder);
  }

  #open(): void {
    if (this.#closed) throw closedError('postgres');
  }

  async #query<R extends object>(sql: string, params: unknown[]): Promise<R[]> {
    this.#open();
    return (await this.#pool.query<R & pg.QueryResultRow>(sql, params)).rows;
  }

  async #stale(table: string, key: string, sub: string, expected: number): Promise<StaleStateError> {
    const row = (await this.#query<StateRow>(SQL.current, [table, key, sub]))[0];
    return new StaleStateError(table, key, sub || undefined, expected, row ? Number(row.version) : 0);
  }
}

function toReminder(row: ReminderDbRow): ReminderRow {
  return { iface: row.iface, key: row.key, name: row.name, dueAt: Number(row.due_at), periodMs: Number(row.period_ms) };
}

/** The URL without its password, for error messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}
