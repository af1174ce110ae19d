// The storage layer on its own (no actor runtime): one suite run against every provider (memory,
// sqlite in a temp file, postgres on a real private server), then what only the durable ones can
// show (reopening, several processes at once, a SIGKILL in the middle of a stream of writes).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { KoalaError, fromErrorRecord, toErrorRecord } from '../src/runtime/errors/errors.ts';
import { StaleStateError, loadStoreProvider, openStore, type ReminderRow, type Store, type StoreConfig } from '../src/runtime/storage/index.ts';
import { SqliteStore } from '../src/runtime/storage/sqlite.ts';
import { startPostgres, type PostgresServer } from './helpers/postgres.ts';

const STORAGE = new URL('../src/runtime/storage/', import.meta.url);

// ---- fixtures ----------------------------------------------------------------------------------

/** One PostgreSQL server for the whole file; each test gets its own database on it. */
let pgServer: Promise<PostgresServer> | undefined;
function postgresServer(): Promise<PostgresServer> {
  return (pgServer ??= startPostgres());
}
test.after.always(async () => {
  const server = await pgServer?.catch(() => undefined);
  await server?.stop();
});

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'koala-storage-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Fixture {
  /** A fresh, empty store, closed at teardown. */
  store: Store;
  /** For the durable providers: where the data lives, to open more stores on it (also closed at teardown). */
  config: StoreConfig | undefined;
}

async function openClosedAtTeardown(t: ExecutionContext, config: StoreConfig): Promise<Store> {
  const store = await openStore(config);
  t.teardown(() => store.close());
  return store;
}

const PROVIDERS: Record<'memory' | 'sqlite' | 'postgres', (t: ExecutionContext) => Promise<StoreConfig>> = {
  memory: async () => ({ provider: 'memory' }),
  // A nested path: the provider creates the parent directories.
  sqlite: async (t) => ({ provider: 'sqlite', file: join(await tempDir(t), 'nested', 'dir', 'state.db') }),
  postgres: async () => ({ provider: 'postgres', url: await (await postgresServer()).createDatabase() }),
};

async function fixture(t: ExecutionContext, provider: keyof typeof PROVIDERS): Promise<Fixture> {
  const config = await PROVIDERS[provider](t);
  return { store: await openClosedAtTeardown(t, config), config: provider === 'memory' ? undefined : config };
}

const buf = (s: string) => Buffer.from(s, 'utf8');

async function staleError(t: ExecutionContext, promise: Promise<unknown>): Promise<StaleStateError> {
  const err = await t.throwsAsync(promise, { instanceOf: StaleStateError });
  return err as StaleStateError;
}

// ---- the shared suite --------------------------------------------------------------------------

for (const provider of Object.keys(PROVIDERS) as (keyof typeof PROVIDERS)[]) {
  test(`${provider}: absent reads as undefined; versions start at 1 and count writes`, async (t) => {
    const { store } = await fixture(t, provider);
    t.is(await store.read('Counter', 'a'), undefined);
    t.is(await store.write('Counter', 'a', undefined, buf('one'), 0), 1);
    t.deepEqual(await store.read('Counter', 'a'), { value: buf('one'), version: 1 });
    t.is(await store.write('Counter', 'a', undefined, buf('two'), 1), 2);
    t.is(await store.write('Counter', 'a', undefined, buf('three'), 2), 3);
    t.deepEqual(await store.read('Counter', 'a'), { value: buf('three'), version: 3 });
    // Tables and keys are separate namespaces.
    t.is(await store.read('Counter', 'b'), undefined);
    t.is(await store.read('Other', 'a'), undefined);
    t.is(await store.write('Other', 'a', undefined, buf('x'), 0), 1);
    t.deepEqual(await store.read('Counter', 'a'), { value: buf('three'), version: 3 });
  });

  test(`${provider}: values are opaque bytes (empty, binary, 1 MiB)`, async (t) => {
    const { store } = await fixture(t, provider);
    const big = randomBytes(1 << 20);
    const binary = Buffer.from([0, 1, 0xff, 0, 0x80, 0]);
    await store.write('Bytes', 'empty', undefined, Buffer.alloc(0), 0);
    await store.write('Bytes', 'binary', undefined, binary, 0);
    await store.write('Bytes', 'big', undefined, big, 0);
    // An empty record (e.g. an Avro record with no fields) is present, not absent.
    const empty = await store.read('Bytes', 'empty');
    t.truthy(empty);
    t.is(empty!.value.length, 0);
    t.true(Buffer.isBuffer(empty!.value));
    t.true((await store.read('Bytes', 'binary'))!.value.equals(binary));
    t.true((await store.read('Bytes', 'big'))!.value.equals(big));
    // The store keeps its own copy: changing the caller's buffer afterwards changes nothing.
    binary[0] = 42;
    t.is((await store.read('Bytes', 'binary'))!.value[0], 0);
  });

  test(`${provider}: a write with a stale version is refused with StaleStateError and changes nothing`, async (t) => {
    const { store } = await fixture(t, provider);
    await store.write('Counter', 'a', undefined, buf('v1'), 0);
    await store.write('Counter', 'a', undefined, buf('v2'), 1);

    const err = await staleError(t, store.write('Counter', 'a', undefined, buf('stale'), 1));
    t.true(err instanceof KoalaError);
    t.is(err.code, 'STALE_STATE');
    t.is(err.name, 'StaleStateError');
    t.regex(err.message, /Counter\/a/);
    t.regex(err.message, /expected version 1\b/);
    t.regex(err.message, /the store has version 2\b/);
    t.like(err, { table: 'Counter', key: 'a', subKey: undefined, expected: 1, actual: 2 });
    t.deepEqual(await store.read('Counter', 'a'), { value: buf('v2'), version: 2 });

    // "Must not exist" on an existing record, and a version from the future.
    t.like(await staleError(t, store.write('Counter', 'a', undefined, buf('new'), 0)), { expected: 0, actual: 2 });
    t.like(await staleError(t, store.write('Counter', 'a', undefined, buf('future'), 3)), { expected: 3, actual: 2 });
    t.deepEqual(await store.read('Counter', 'a'), { value: buf('v2'), version: 2 });

    // A version for a record that does not exist creates nothing.
    const absent = await staleError(t, store.write('Counter', 'nobody', undefined, buf('x'), 4));
    t.like(absent, { expected: 4, actual: 0 });
    t.regex(absent.message, /version 0 \(absent\)/);
    t.is(await store.read('Counter', 'nobody'), undefined);

    // Bad versions are a programming error, not a stale write.
    await t.throwsAsync(store.write('Counter', 'a', undefined, buf('x'), -1), { instanceOf: TypeError });
    await t.throwsAsync(store.write('Counter', 'a', undefined, buf('x'), 1.5), { instanceOf: TypeError });

    // It travels as a typed error: code and name survive the wire record.
    const remote = fromErrorRecord(toErrorRecord(err));
    t.is(remote.code, 'STALE_STATE');
    t.is(remote.name, 'StaleStateError');
  });

  test(`${provider}: concurrent writers with the same expected version: exactly one wins`, async (t) => {
    const { store } = await fixture(t, provider);
    const race = async (expected: number, n: number) => {
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => store.write('Race', 'r', undefined, buf(`w${expected}-${i}`), expected)));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      for (const r of results) if (r.status === 'rejected') t.true(r.reason instanceof StaleStateError, String(r.reason));
      t.is(won.length, 1, `expected ${expected}: ${won.length} writers won`);
      const stored = await store.read('Race', 'r');
      t.deepEqual(stored, { value: buf(`w${expected}-${won[0]}`), version: expected + 1 });
    };
    await race(0, 12); // creating
    await race(1, 12); // updating
    await race(2, 12);
  });

  test(`${provider}: clear checks the version, removes the record, and a cleared version never matches again`, async (t) => {
    const { store } = await fixture(t, provider);
    await store.write('Counter', 'a', undefined, buf('v1'), 0);
    t.like(await staleError(t, store.clear('Counter', 'a', undefined, 0)), { expected: 0, actual: 1 });
    t.like(await staleError(t, store.clear('Counter', 'a', undefined, 2)), { expected: 2, actual: 1 });
    t.deepEqual(await store.read('Counter', 'a'), { value: buf('v1'), version: 1 });

    await store.clear('Counter', 'a', undefined, 1);
    t.is(await store.read('Counter', 'a'), undefined);
    t.like(await staleError(t, store.clear('Counter', 'a', undefined, 1)), { expected: 1, actual: 0 });
    await store.clear('Counter', 'a', undefined, 0); // must not exist, and does not: a no-op
    await store.clear('Counter', 'never', undefined, 0);

    // Re-created with "must not exist"; its versions continue past the clear (1, cleared 2, now 3),
    // so an activation still holding version 1 cannot overwrite the new record.
    const v = await store.write('Counter', 'a', undefined, buf('again'), 0);
    t.is(v, 3);
    t.like(await staleError(t, store.write('Counter', 'a', undefined, buf('stale'), 1)), { expected: 1, actual: 3 });
    t.deepEqual(await store.read('Counter', 'a'), { value: buf('again'), version: 3 });
  });

  test(`${provider}: sub-keyed records are read and written individually; readAll returns them all`, async (t) => {
    const { store } = await fixture(t, provider);
    t.deepEqual(await store.readAll('Big', 'k'), new Map());
    t.is(await store.write('Big', 'k', undefined, buf('head'), 0), 1);
    for (const sub of ['b', 'a', 'c', 'é']) t.is(await store.write('Big', 'k', sub, buf(`part ${sub}`), 0), 1);
    await store.write('Big', 'other', 'a', buf('not mine'), 0);
    await store.write('Big', 'k', 'b', buf('part b, v2'), 1);

    t.deepEqual(await store.read('Big', 'k'), { value: buf('head'), version: 1 });
    t.deepEqual(await store.read('Big', 'k', 'a'), { value: buf('part a'), version: 1 });
    t.deepEqual(await store.read('Big', 'k', 'b'), { value: buf('part b, v2'), version: 2 });
    t.is(await store.read('Big', 'k', 'zz'), undefined);
    // Each sub-key has its own version.
    t.like(await staleError(t, store.write('Big', 'k', 'c', buf('x'), 2)), { subKey: 'c', expected: 2, actual: 1 });
    t.regex((await staleError(t, store.write('Big', 'k', 'c', buf('x'), 2))).message, /sub-key "c"/);

    // readAll: every sub-keyed record of the key, in byte order, without the un-sub-keyed one.
    const all = await store.readAll('Big', 'k');
    t.deepEqual([...all.keys()], ['a', 'b', 'c', 'é']);
    t.deepEqual(all.get('b'), { value: buf('part b, v2'), version: 2 });
    t.deepEqual(all.get('é'), { value: buf('part é'), version: 1 });

    await store.clear('Big', 'k', 'a', 1);
    t.deepEqual([...(await store.readAll('Big', 'k')).keys()], ['b', 'c', 'é']);
    t.deepEqual(await store.read('Big', 'k'), { value: buf('head'), version: 1 });
  });

  test(`${provider}: reminders: upsert, due (oldest first, limited), delete, list`, async (t) => {
    const { store } = await fixture(t, provider);
    const base = 1_900_000_000_000; // beyond 2^31: must round-trip as a number
    const r = (iface: string, key: string, name: string, dueAt: number, periodMs = 0): ReminderRow => ({ iface, key, name, dueAt, periodMs });
    await store.upsertReminder(r('Counter', 'b', 'tick', base + 300, 60_000));
    await store.upsertReminder(r('Counter', 'a', 'tick', base + 100, 60_000));
    await store.upsertReminder(r('Alarm', 'z', 'ring', base + 100));
    await store.upsertReminder(r('Alarm', 'z', 'later', base + 5_000));
    await store.upsertReminder(r('Counter', 'a', 'once', base + 200));

    t.deepEqual(await store.dueReminders(base + 99, 10), []);
    // Oldest first; same due time by iface, key, name.
    t.deepEqual(await store.dueReminders(base + 300, 10), [
      r('Alarm', 'z', 'ring', base + 100),
      r('Counter', 'a', 'tick', base + 100, 60_000),
      r('Counter', 'a', 'once', base + 200),
      r('Counter', 'b', 'tick', base + 300, 60_000),
    ]);
    t.deepEqual(
      (await store.dueReminders(base + 300, 2)).map((x) => x.name),
      ['ring', 'tick'],
    );
    t.deepEqual(await store.dueReminders(base + 300, 0), []);

    // Upsert replaces (a periodic reminder moving to its next due time).
    await store.upsertReminder(r('Counter', 'a', 'tick', base + 60_100, 60_000));
    t.deepEqual(
      (await store.dueReminders(base + 1_000, 10)).map((x) => `${x.iface}/${x.key}/${x.name}`),
      ['Alarm/z/ring', 'Counter/a/once', 'Counter/b/tick'],
    );

    await store.deleteReminder('Alarm', 'z', 'ring');
    await store.deleteReminder('Alarm', 'z', 'no-such-reminder');
    t.deepEqual(await store.listReminders(), [
      r('Alarm', 'z', 'later', base + 5_000),
      r('Counter', 'a', 'once', base + 200),
      r('Counter', 'a', 'tick', base + 60_100, 60_000),
      r('Counter', 'b', 'tick', base + 300, 60_000),
    ]);
    t.deepEqual(
      (await store.listReminders('Counter')).map((x) => `${x.key}/${x.name}`),
      ['a/once', 'a/tick', 'b/tick'],
    );
    t.deepEqual(await store.listReminders('Nobody'), []);
    await t.throwsAsync(store.upsertReminder(r('Counter', 'a', 'bad', base, -1)), { instanceOf: TypeError });
  });

  test(`${provider}: a closed store refuses calls; close is idempotent`, async (t) => {
    const { store } = await fixture(t, provider);
    await store.write('Counter', 'a', undefined, buf('x'), 0);
    await store.close();
    await store.close();
    await t.throwsAsync(store.read('Counter', 'a'), { message: /closed/ });
    await t.throwsAsync(store.write('Counter', 'a', undefined, buf('y'), 1), { message: /closed/ });
    await t.throwsAsync(store.listReminders(), { message: /closed/ });
  });
}

// ---- durable providers: another store on the same data --------------------------------------------

for (const provider of ['sqlite', 'postgres'] as const) {
  test(`${provider}: a second store on the same data sees it, also after close and reopen`, async (t) => {
    const { store, config } = await fixture(t, provider);
    await store.write('Counter', 'a', undefined, buf('v1'), 0);
    await store.write('Counter', 'a', undefined, buf('v2'), 1);
    await store.write('Big', 'k', 'p1', buf('part 1'), 0);
    await store.write('Gone', 'g', undefined, buf('x'), 0);
    await store.clear('Gone', 'g', undefined, 1);
    await store.upsertReminder({ iface: 'Counter', key: 'a', name: 'tick', dueAt: 1_000, periodMs: 500 });

    // Open at the same time: sees committed data, and the versions guard across stores.
    const other = await openClosedAtTeardown(t, config!);
    t.deepEqual(await other.read('Counter', 'a'), { value: buf('v2'), version: 2 });
    t.is(await other.write('Counter', 'a', undefined, buf('v3 from other'), 2), 3);
    t.like(await staleError(t, store.write('Counter', 'a', undefined, buf('stale'), 2)), { expected: 2, actual: 3 });

    // Everything closed, then reopened.
    await store.close();
    await other.close();
    const reopened = await openClosedAtTeardown(t, config!);
    t.deepEqual(await reopened.read('Counter', 'a'), { value: buf('v3 from other'), version: 3 });
    t.deepEqual(await reopened.readAll('Big', 'k'), new Map([['p1', { value: buf('part 1'), version: 1 }]]));
    t.is(await reopened.read('Gone', 'g'), undefined);
    t.is(await reopened.write('Gone', 'g', undefined, buf('back'), 0), 3); // the tombstone survived too
    t.deepEqual(await reopened.listReminders(), [{ iface: 'Counter', key: 'a', name: 'tick', dueAt: 1_000, periodMs: 500 }]);
  });

  test(`${provider}: four processes incrementing one counter lose no update`, async (t) => {
    const { config } = await fixture(t, provider);
    const processes = 4;
    const each = 40;
    // Each child: read, add one, write with the version it read; on StaleStateError read again.
    const script = `
      const { openStore } = await import(${JSON.stringify(new URL('index.ts', STORAGE).href)});
      const store = await openStore(JSON.parse(process.argv[1]));
      process.stdout.write('ready\\n');
      await new Promise((resolve) => process.stdin.once('data', resolve));
      let won = 0, lost = 0;
      while (won < ${each}) {
        const cur = await store.read('Counter', 'shared');
        const n = cur ? Number(cur.value.toString()) : 0;
        try {
          await store.write('Counter', 'shared', undefined, Buffer.from(String(n + 1)), cur ? cur.version : 0);
          won++;
        } catch (err) {
          if (err.code !== 'STALE_STATE') throw err;
          lost++;
        }
      }
      await store.close();
      process.stdout.write(JSON.stringify({ won, lost }) + '\\n');
      process.exit(0);
    `;
    const children = Array.from({ length: processes }, () => runNode(t, script, [JSON.stringify(config)]));
    // All open and waiting, then all start at once, so they really contend.
    await Promise.all(children.map((c) => c.waitFor(/^ready$/m)));
    for (const c of children) c.child.stdin!.end('go\n');
    const codes = await Promise.all(children.map((c) => c.exit));
    t.deepEqual(codes, Array(processes).fill(0), children.map((c) => c.stderr()).join('\n'));
    const results = children.map((c) => JSON.parse(c.stdout().trim().split('\n').at(-1)!) as { won: number; lost: number });
    t.log(`${provider}: ${results.reduce((s, r) => s + r.lost, 0)} writes refused as stale and retried`);

    const store = await openClosedAtTeardown(t, config!);
    const final = await store.read('Counter', 'shared');
    t.is(Number(final!.value.toString()), processes * each);
    t.is(final!.version, processes * each);
  });
}

// ---- sqlite: an acknowledged write survives SIGKILL ----------------------------------------------

test('sqlite: WAL journal and synchronous=FULL (each commit fsyncs the WAL), in a new file and a reopened one', async (t) => {
  const file = join(await tempDir(t), 'state.db');
  for (let i = 0; i < 2; i++) {
    const store = new SqliteStore(file);
    t.teardown(() => store.close());
    t.deepEqual(store.pragmas(), { journalMode: 'wal', synchronous: 'FULL' });
    await store.write('Counter', `k${i}`, undefined, buf('x'), 0);
    await store.close();
  }
});

test('sqlite: a process killed with SIGKILL during a stream of writes loses no acknowledged write', async (t) => {
  const file = join(await tempDir(t), 'state.db');
  // Writes increments one at a time and prints each version once write() resolved (stdout to a
  // pipe is synchronous on Linux, so a printed version was acknowledged before the next write).
  const script = `
    const { SqliteStore } = await import(${JSON.stringify(new URL('sqlite.ts', STORAGE).href)});
    const store = new SqliteStore(process.argv[1]);
    let v = (await store.read('Counter', 'c'))?.version ?? 0;
    for (;;) {
      v = await store.write('Counter', 'c', undefined, Buffer.from(String(v + 1)), v);
      process.stdout.write(v + '\\n');
    }
  `;
  let last = 0;
  for (let round = 1; round <= 3; round++) {
    const child = runNode(t, script, [file]);
    const started = Date.now();
    const acks = 150 * round;
    // Kill as soon as enough acknowledgements arrived: the child is then in the middle of a write.
    await child.waitFor(new RegExp(`^${last + acks}$`, 'm'));
    child.child.kill('SIGKILL');
    t.is(await child.exit, null, 'killed by the signal, not exited');
    const out = child.stdout();
    const complete = out.slice(0, out.lastIndexOf('\n') + 1).trim().split('\n');
    const acknowledged = Number(complete.at(-1));
    t.log(`round ${round}: ${acknowledged - last} acknowledged writes in ${Date.now() - started} ms before SIGKILL`);
    t.true(acknowledged >= last + acks);

    const store = new SqliteStore(file);
    const stored = await store.read('Counter', 'c');
    await store.close();
    t.truthy(stored);
    // Every acknowledged write is there; at most the one write in flight went further.
    t.true(stored!.version >= acknowledged, `stored ${stored!.version} < acknowledged ${acknowledged}`);
    t.true(stored!.version <= acknowledged + 1, `stored ${stored!.version} > acknowledged ${acknowledged} + 1`);
    t.is(stored!.value.toString(), String(stored!.version));
    last = stored!.version;
  }
});

// ---- third-party providers ----------------------------------------------------------------------

test('loadStoreProvider: a plugin module whose default export opens a store', async (t) => {
  const dir = await tempDir(t);
  await writeFile(
    join(dir, 'good.mjs'),
    `import { MemoryStore } from ${JSON.stringify(new URL('memory.ts', STORAGE).href)};
     export default async (options) => { const s = new MemoryStore(); s.options = options; return s; };`,
  );
  await writeFile(join(dir, 'not-a-function.mjs'), 'export default { read() {} };');
  await writeFile(join(dir, 'incomplete.mjs'), 'export default async () => ({ read: async () => undefined, close: async () => {} });');

  const factory = await loadStoreProvider('good.mjs', dir);
  const store = await factory({ region: 'eu' });
  t.teardown(() => store.close());
  t.is(await store.write('Counter', 'a', undefined, buf('x'), 0), 1);
  await t.throwsAsync(store.write('Counter', 'a', undefined, buf('y'), 0), { instanceOf: StaleStateError });
  t.deepEqual((store as unknown as { options: unknown }).options, { region: 'eu' });
  // An absolute path works regardless of the root.
  t.is(typeof (await loadStoreProvider(join(dir, 'good.mjs'), '/')), 'function');

  await t.throwsAsync(loadStoreProvider('missing.mjs', dir), { message: /state store provider missing\.mjs not found/ });
  await t.throwsAsync(loadStoreProvider('not-a-function.mjs', dir), { message: /must `export default async \(options\) => store`.*object/ });
  const incomplete = await loadStoreProvider('incomplete.mjs', dir);
  await t.throwsAsync(incomplete({}), { message: /returned a store without write, clear, readAll, upsertReminder, deleteReminder, dueReminders, listReminders/ });
});

test('openStore: an unknown provider is refused by name; an unusable sqlite path names the file', async (t) => {
  await t.throwsAsync(openStore({ provider: 'redis' } as unknown as StoreConfig), { message: /unknown state store provider "redis"/ });
  const dir = await tempDir(t);
  // The path is a directory: SQLite cannot open it as a database.
  await t.throwsAsync(openStore({ provider: 'sqlite', file: dir }), { message: new RegExp(`^sqlite state store at ${dir}: `) });
  // Nothing listens on port 1: the error names the server (never the password) and the cause.
  await t.throwsAsync(openStore({ provider: 'postgres', url: 'postgres://koala:secret@127.0.0.1:1/koala' }), {
    message: /^postgres state store at postgres:\/\/koala:\*\*\*@127\.0\.0\.1:1\/koala: .*ECONNREFUSED/,
  });
});

// ---- child processes ----------------------------------------------------------------------------

interface NodeChild {
  child: ReturnType<typeof spawn>;
  exit: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches; rejects if the process exits first. */
  waitFor(re: RegExp): Promise<void>;
}

/** Runs an ES module script in a child Node; killed at teardown if still running. */
function runNode(t: ExecutionContext, script: string, args: string[]): NodeChild {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString('utf8');
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  // 'close', not 'exit': by then stdout is drained, so stdout() holds everything the child printed.
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let exited = false;
  void exit.then(() => {
    exited = true;
    for (const w of waiters) w();
  });
  t.teardown(async () => {
    if (!exited) child.kill('SIGKILL');
    await exit;
  });
  return {
    child,
    exit,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(out)) {
            waiters.delete(check);
            resolve();
          } else if (exited) {
            waiters.delete(check);
            reject(new Error(`child exited before printing ${re}:\n${err || out.slice(-2000)}`));
          }
        };
        waiters.add(check);
        check();
      }),
  };
}
