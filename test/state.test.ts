// Persistent actor state: it survives `koala down` / `koala up`, no acknowledged write is lost when
// a host is killed, and a stale activation can never overwrite newer state.
import test from 'ava';
import { join } from 'node:path';
import { SqliteStore } from '../src/runtime/storage/sqlite.ts';
import type { KoalaError } from '../src/runtime/errors/errors.ts';
import { readRunState } from '../src/runtime/supervisor/run-state.ts';
import { FIXTURE_PLUGINS, koala, makeProject, manifest, waitFor } from './helpers/cluster.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { startPostgres } from './helpers/postgres.ts';
import { ICounter } from './fixtures/plugins/counter.ts';

const COUNTER = join(FIXTURE_PLUGINS, 'counter.ts');

test.serial('a counter survives `koala down` and `koala up` (sqlite under .koala/)', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [COUNTER] }));
  t.is((await koala(dir, ['up', '--detach'])).exitCode, 0);
  for (const n of ['1', '2', '3']) t.is((await koala(dir, ['call', 'ICounter/c', 'incr'])).stdout, n);
  t.is((await koala(dir, ['down'])).exitCode, 0);
  t.is((await koala(dir, ['up', '--detach'])).exitCode, 0);
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
