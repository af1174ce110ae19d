// In-process provider for unit tests: nothing survives the process, but versions are enforced
// exactly as the durable providers enforce them (tombstones included), so code tested against it
// meets the same StaleStateErrors in production.
import {
  StaleStateError,
  checkExpected,
  checkReminder,
  closedError,
  compareUtf8,
  subKeyColumn,
  type ReminderRow,
  type Store,
  type StoredRecord,
} from './provider.ts';

interface Row {
  /** undefined: a tombstone left by clear. */
  value: Buffer | undefined;
  version: number;
}

export class MemoryStore implements Store {
  /** table → key → sub-key → row. */
  readonly #rows = new Map<string, Map<string, Map<string, Row>>>();
  /** `iface\0key\0name` → reminder. */
  readonly #reminders = new Map<string, ReminderRow>();
  #closed = false;

  async read(table: string, key: string, subKey?: string): Promise<StoredRecord | undefined> {
    this.#open();
    const row = this.#rows.get(table)?.get(key)?.get(subKeyColumn(subKey));
    // Copies: a caller mutating a buffer must not change what is stored.
    return row?.value === undefined ? undefined : { value: Buffer.from(row.value), version: row.version };
  }

  async write(table: string, key: string, subKey: string | undefined, value: Buffer, expected: number): Promise<number> {
    const { sub, row } = this.#expect(table, key, subKey, expected);
    // A live row goes to expected + 1; a new record to 1, or past its tombstone.
    const version = (row?.version ?? 0) + 1;
    this.#subKeys(table, key).set(sub, { value: Buffer.from(value), version });
    return version;
  }

  async clear(table: string, key: string, subKey: string | undefined, expected: number): Promise<void> {
    const { sub, row } = this.#expect(table, key, subKey, expected);
    if (row?.value !== undefined) this.#subKeys(table, key).set(sub, { value: undefined, version: row.version + 1 });
  }

  async readAll(table: string, key: string): Promise<Map<string, StoredRecord>> {
    this.#open();
    const out = new Map<string, StoredRecord>();
    const subs = [...(this.#rows.get(table)?.get(key) ?? new Map<string, Row>())].sort(([a], [b]) => compareUtf8(a, b));
    for (const [sub, row] of subs) {
      if (sub !== '' && row.value !== undefined) out.set(sub, { value: Buffer.from(row.value), version: row.version });
    }
    return out;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async upsertReminder(r: ReminderRow): Promise<void> {
    this.#open();
    checkReminder(r);
    this.#reminders.set(reminderId(r.iface, r.key, r.name), { iface: r.iface, key: r.key, name: r.name, dueAt: r.dueAt, periodMs: r.periodMs });
  }

  async deleteReminder(iface: string, key: string, name: string): Promise<void> {
    this.#open();
    this.#reminders.delete(reminderId(iface, key, name));
  }

  async dueReminders(now: number, limit: number): Promise<ReminderRow[]> {
    this.#open();
    return [...this.#reminders.values()]
      .filter((r) => r.dueAt <= now)
      .sort((a, b) => a.dueAt - b.dueAt || byIdentity(a, b))
      .slice(0, Math.max(0, limit))
      .map((r) => ({ ...r }));
  }

  async listReminders(iface?: string): Promise<ReminderRow[]> {
    this.#open();
    return [...this.#reminders.values()]
      .filter((r) => iface === undefined || r.iface === iface)
      .sort(byIdentity)
      .map((r) => ({ ...r }));
  }

  #open(): void {
    if (this.#closed) throw closedError('memory');
  }

  /** The record's row, after checking that its live version is `expected` (STALE_STATE if not). */
  #expect(table: string, key: string, subKey: string | undefined, expected: number): { sub: string; row: Row | undefined } {
    this.#open();
    checkExpected(expected);
    const sub = subKeyColumn(subKey);
    const row = this.#rows.get(table)?.get(key)?.get(sub);
    const live = row?.value === undefined ? 0 : row.version;
    if (live !== expected) throw new StaleStateError(table, key, subKey || undefined, expected, live);
    return { sub, row };
  }

  #subKeys(table: string, key: string): Map<string, Row> {
    let keys = this.#rows.get(table);
    if (!keys) this.#rows.set(table, (keys = new Map()));
    let subs = keys.get(key);
    if (!subs) keys.set(key, (subs = new Map()));
    return subs;
  }
}

function reminderId(iface: string, key: string, name: string): string {
  return `${iface}\0${key}\0${name}`;
}

function byIdentity(a: ReminderRow, b: ReminderRow): number {
  return compareUtf8(a.iface, b.iface) || compareUtf8(a.key, b.key) || compareUtf8(a.name, b.name);
}
