// Persistent actor state: it survives `koala down` / `koala up`, no acknowledged write is lost when
// a host is killed, and a stale activation can never overwrite newer state.
import test from 'ava';
import { join } from 'node:path';
import { SqliteStore } from '../src/runtime/storage/sqlite.ts';
import type { KoalaError } from '../src/runtime/errors/errors.ts';
import { readRunState } from '../src/runtime/supervisor/run-state.ts';
import { FIXTURE_PLUGINS, koala, makeProject, manifest, waitFor, upDetached } from './helpers/cluster.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { startPostgres } from './helpers/postgres.ts';
import { ICounter } from './fixtures/plugins/counter.ts';

const COUNTER = join(FIXTURE_PLUGINS, 'counter.ts');

test.serial('a counter survives `koala down` and `koala up` (sqlite under .koala/)', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [COUNTER] }));
  await upDetached(t, dir);
  for (const n of ['1', '2', '3']) t.is((await koala(dir, ['call', 'ICounter/c', 'incr'])).stdout, n);
  t.is((await koala(dir, ['down'])).exitCode, 0);
  await upDetached(t, dir);
  t.is((await koala(dir, ['call', 'ICounter/c', 'get'])).stdout, '3');
  t.is((await koala(dir, ['call', 'ICounter/c', 'incr'])).stdout, '4');
  t.is((await koala(dir, ['call', 'ICounter/c', 'reset'])).exitCode, 0);
  t.is((await koala(dir, ['call', 'ICounter/c', 'get'])).stdout, '0');
});

test.serial('a write from a stale activation is refused with STALE_STATE and changes nothing', async (t) => {
  const cluster = await startCluster(t, { plugins: [COUNTER], replicas: 1 });
  const counter = cluster.client.getProxy(ICounter, 'stale');
  t.is(await counter.incr(), 1);
  // Someone else (the activation that owns the actor now, in real life) writes the record.
  const store = new SqliteStore(join(cluster.dir, '.koala', 'state.sqlite'));
  t.teardown(() => store.close());
  const current = (await store.read('ICounter', 'stale'))!;
  await store.write('ICounter', 'stale', undefined, Buffer.from([2 * 41]), current.version);
  const err = await t.throwsAsync<KoalaError>(counter.incr());
  t.is(err?.code, 'STALE_STATE');
  t.regex(err?.message ?? '', /expected version 1 but the store has version 2/);
  t.deepEqual((await store.read('ICounter', 'stale'))!.value, Buffer.from([82]), 'the newer state stands');
});

test.serial('a host killed during a stream of writes loses no acknowledged increment', async (t) => {
  const cluster = await startCluster(t, { plugins: [COUNTER], replicas: 1 });
  const counter = cluster.client.getProxy(ICounter, 'killed', { timeoutMs: 5000 });
  let acknowledged = 0;
  let running = true;
  const stream = (async () => {
    while (running) {
      const n = await counter.incr().catch(() => undefined);
      if (n !== undefined) acknowledged = Math.max(acknowledged, n);
    }
  })();
  await waitFor('some writes', () => acknowledged >= 30);
  const host = readRunState(cluster.dir)!.processes.find((p) => p.role === 'host')!;
  process.kill(host.pid, 'SIGKILL');
  const ackedAtKill = acknowledged;
  // The supervisor restarts the host; the stream goes on against the new one.
  await waitFor('writes to resume after the restart', () => acknowledged > ackedAtKill + 5, 30_000);
  running = false;
  await stream;
  const stored = await counter.get();
  t.true(stored >= acknowledged, `stored ${stored}, acknowledged ${acknowledged}`);
  t.true(acknowledged > ackedAtKill, 'the counter continued from what was stored, not from zero');
});

test.serial('postgres storage: state lives in a real PostgreSQL and survives a cluster restart', async (t) => {
  const pg = await startPostgres(t);
  const storage = `storage:\n  provider: postgres\n  url: ${JSON.stringify(pg.url)}`;
  const first = await startCluster(t, { plugins: [COUNTER], replicas: 2, extra: storage });
  for (let i = 1; i <= 3; i++) t.is(await first.client.getProxy(ICounter, 'pg').incr(), i);
  await first.stop();
  const second = await startCluster(t, { plugins: [COUNTER], replicas: 2, extra: storage });
  t.is(await second.client.getProxy(ICounter, 'pg').get(), 3);
});

test.serial('a reminder fires while its actor is deactivated, and after a full cluster restart', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [COUNTER] }));
  await upDetached(t, dir);
  // Fires while the actor is not active: the reminder activates it.
  t.is((await koala(dir, ['call', 'ICounter/r1', 'remind', 'once', '800', '0'])).exitCode, 0);
  t.is((await koala(dir, ['call', 'ICounter/r1', 'rest'])).exitCode, 0);
  await waitFor('the reminder', async () => (await koala(dir, ['call', 'ICounter/r1', 'get'])).stdout === '100', 10_000);
  // Registered, then the whole cluster goes down before it is due: it fires after `up`.
  t.is((await koala(dir, ['call', 'ICounter/r2', 'remind', 'later', '1500', '0'])).exitCode, 0);
  const listed = JSON.parse((await koala(dir, ['reminders', '--json'])).stdout) as { reminders: { identity: string; name: string; periodMs: number }[] };
  t.deepEqual(listed.reminders.map((r) => [r.identity, r.name, r.periodMs]), [['ICounter/r2', 'later', 0]]);
  t.is((await koala(dir, ['down'])).exitCode, 0);
  await new Promise((r) => setTimeout(r, 2000));
  await upDetached(t, dir);
  await waitFor('the reminder after the restart', async () => (await koala(dir, ['call', 'ICounter/r2', 'get'])).stdout === '100', 15_000);
  t.deepEqual(JSON.parse((await koala(dir, ['reminders', '--json'])).stdout).reminders, [], 'a one-shot reminder is gone once delivered');
});

test.serial('a periodic reminder keeps firing until unregistered, once per tick across two hosts', async (t) => {
  const cluster = await startCluster(t, { plugins: [COUNTER], replicas: 2 });
  const counter = cluster.client.getProxy(ICounter, 'periodic');
  const started = Date.now();
  await counter.remind('tick', 300, 300);
  await waitFor('three ticks', async () => (await counter.get()) >= 300, 10_000);
  await counter.forget('tick');
  const elapsed = Date.now() - started;
  const stopped = await counter.get();
  // Each host serves ICounter; if both fired every tick, there would be about twice as many.
  t.true(stopped / 100 <= Math.floor(elapsed / 300) + 1, `${stopped / 100} ticks in ${elapsed} ms`);
  await new Promise((r) => setTimeout(r, 1200));
  t.is(await counter.get(), stopped, 'no tick after unregistering');
});

test.serial('schema evolution: v2 reads v1 records through Avro resolution; an incompatible v3 is refused at host start', async (t) => {
  const { writeFile } = await import('node:fs/promises');
  const version = (v: number) => manifest({ plugins: [join(FIXTURE_PLUGINS, `evolve-v${v}.ts`)], replicas: 1 });
  const dir = await makeProject(t, version(1));
  await upDetached(t, dir);
  t.is((await koala(dir, ['call', 'IEvolve/e', 'incr'])).stdout, '1');
  t.is((await koala(dir, ['call', 'IEvolve/e', 'incr'])).stdout, '2');
  t.is((await koala(dir, ['down'])).exitCode, 0);

  await writeFile(join(dir, 'koala.config.yaml'), version(2));
  await upDetached(t, dir);
  t.is((await koala(dir, ['call', 'IEvolve/e', 'describe'])).stdout, 'n=2 label=none', 'the added field takes its default');
  t.is((await koala(dir, ['call', 'IEvolve/e', 'incr'])).stdout, '3');
  t.is((await koala(dir, ['down'])).exitCode, 0);

  await writeFile(join(dir, 'koala.config.yaml'), version(3));
  const up = await koala(dir, ['up', '--detach']);
  t.is(up.exitCode, 1);
  t.regex(up.stderr, /^error host-1: IEvolve: the new state schema cannot read state stored with an earlier one \(field "n": .+\); give added fields a default, or keep the old field types$/m);
});

test.serial('sub-keyed rows are written and read one at a time, and outlive the activation', async (t) => {
  const cluster = await startCluster(t, { plugins: [COUNTER], replicas: 1 });
  const counter = cluster.client.getProxy(ICounter, 'rows');
  await counter.putRow('a', 'alpha');
  await counter.putRow('b', 'beta');
  await counter.putRow('a', 'alpha 2');
  t.is(await counter.getRow('a'), 'alpha 2');
  t.is(await counter.getRow('missing'), null);
  await counter.rest();
  await new Promise((r) => setTimeout(r, 300));
  t.is(await counter.getRow('b'), 'beta', 'read back by a new activation');
  const store = new SqliteStore(join(cluster.dir, '.koala', 'state.sqlite'));
  t.teardown(() => store.close());
  t.deepEqual([...(await store.readAll('ICounter', 'rows')).keys()], ['a', 'b'], 'one row per sub-key');
});

test.serial('storage per interface: an interface can keep its state elsewhere than the default', async (t) => {
  // ICounter's state goes to memory (lost with its host), IEvolve's to the default sqlite file.
  const perInterface = 'storage:\n  interfaces:\n    ICounter:\n      provider: memory';
  const dir = await makeProject(t, manifest({ plugins: [COUNTER, join(FIXTURE_PLUGINS, 'evolve-v1.ts')], replicas: 1, extra: perInterface }));
  await upDetached(t, dir);
  t.is((await koala(dir, ['call', 'ICounter/m', 'incr'])).stdout, '1');
  t.is((await koala(dir, ['call', 'IEvolve/s', 'incr'])).stdout, '1');
  t.is((await koala(dir, ['down'])).exitCode, 0);
  await upDetached(t, dir);
  t.is((await koala(dir, ['call', 'ICounter/m', 'get'])).stdout, '0', 'memory storage: gone with the host');
  t.is((await koala(dir, ['call', 'IEvolve/s', 'describe'])).stdout, 'n=1', 'sqlite storage: kept');
});
