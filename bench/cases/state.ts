// Persistent state: durable writes per second through a real cluster (client → gateway → one host),
// with the sqlite provider (the default: `.koala/state.sqlite` in the project) and with postgres (a
// private PostgreSQL server this case starts, as the tests do, and stops at the end).
//
// Every call is `ICounter/<id>.incr()` (test/fixtures/plugins/counter.ts): a turn that changes
// `this.state` and answers after `await this.writeState()`, so each acknowledged call is one
// durable, version-checked write (sqlite: a WAL commit with synchronous=FULL, i.e. an fsync;
// postgres: a commit). IN_FLIGHT lanes each call their own counter, so no two calls queue on the same
// actor and the writes run as concurrently as the provider allows.
//
// Both clusters run at once. Warm-up: WARM_UP_CALLS per lane (about 1 500 writes per provider),
// which activates the counters and grows sqlite's WAL to its working size (a WAL still growing
// costs more per fsync). Then the two are measured in interleaved slices (sqlite, postgres,
// postgres, sqlite), so that a change in machine load weighs on both alike. At the end every
// counter must hold exactly the increments acknowledged for it, and its record in the store must be
// at that version (a lost or doubled write, or writes that went elsewhere, fail the case).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore, type Store } from '../../src/runtime/storage/index.ts';
import { ICounter } from '../../test/fixtures/plugins/counter.ts';
import { startPostgres, type PostgresServer } from '../../test/helpers/postgres.ts';
import { startRealCluster, type BenchCluster } from './real-cluster.ts';

const PLUGIN = fileURLToPath(new URL('../../test/fixtures/plugins/counter.ts', import.meta.url));
const IN_FLIGHT = 64;
/** Calls per lane before measuring: activates (and loads) each counter, warms the JIT and connections. */
const WARM_UP_CALLS = 24;

function manifestFor(storage: string[]): string {
  return [
    'cluster: bench',
    'logLevel: warn',
    'hosts:',
    '  - name: host',
    '    replicas: 1',
    `    plugins: [${JSON.stringify(PLUGIN)}]`,
    ...storage,
  ].join('\n');
}

interface Subject {
  cluster: BenchCluster;
  /** Increments acknowledged per lane (warm-up included). */
  acked: number[];
  writes: number;
  ms: number;
}

/** Runs every lane until `until` (ms, performance.now()); returns the writes acknowledged. */
async function drive(s: Subject, until: number): Promise<number> {
  let writes = 0;
  await Promise.all(
    s.acked.map(async (_, lane) => {
      const counter = s.cluster.client.getProxy(ICounter, `lane-${lane}`);
      while (performance.now() < until) {
        await counter.incr();
        s.acked[lane]!++;
        writes++;
      }
    }),
  );
  return writes;
}

async function warmUp(s: Subject): Promise<void> {
  await Promise.all(
    s.acked.map(async (_, lane) => {
      const counter = s.cluster.client.getProxy(ICounter, `lane-${lane}`);
      for (let i = 0; i < WARM_UP_CALLS; i++) {
        await counter.incr();
        s.acked[lane]!++;
      }
    }),
  );
}

async function slice(s: Subject, ms: number): Promise<void> {
  const started = performance.now();
  s.writes += await drive(s, started + ms);
  // Lanes finish the call they had started: count the time until the last one answered.
  s.ms += performance.now() - started;
}

/**
 * Every counter holds exactly the increments acknowledged for it (read back through the cluster),
 * and its record in this provider's store is at the version that many writes make (so the writes
 * did go to this provider).
 */
async function verify(name: string, s: Subject, store: Store): Promise<void> {
  const wrong: string[] = [];
  for (const [lane, acked] of s.acked.entries()) {
    const n = await s.cluster.client.getProxy(ICounter, `lane-${lane}`).get();
    const version = (await store.read(ICounter.name, `lane-${lane}`))?.version ?? 0;
    if (n !== acked || version !== acked) wrong.push(`lane-${lane}: value ${n}, stored version ${version}, acknowledged ${acked}`);
  }
  if (wrong.length > 0) throw new Error(`${name}: the counters do not match the acknowledged increments: ${wrong.slice(0, 5).join('; ')}`);
}

export async function run(seconds: number): Promise<Record<string, number>> {
  let postgres: PostgresServer | undefined;
  const clusters: BenchCluster[] = [];
  try {
    postgres = await startPostgres();
    // initdb runs with -N (no fsync): its files are still dirty in the page cache, and on ext4 the
    // first fsyncs of anyone else (sqlite's) would wait for them. Flush them before measuring.
    execFileSync('sync');
    const subject = async (storage: string[]): Promise<Subject> => {
      const cluster = await startRealCluster(manifestFor(storage));
      clusters.push(cluster);
      return { cluster, acked: new Array<number>(IN_FLIGHT).fill(0), writes: 0, ms: 0 };
    };
    // sqlite is the default: no `storage` section at all.
    const sqlite = await subject([]);
    const pg = await subject(['storage:', '  provider: postgres', `  url: ${JSON.stringify(postgres.url)}`]);
    await warmUp(sqlite);
    await warmUp(pg);

    const sliceMs = (seconds * 1000) / 4;
    for (const s of [sqlite, pg, pg, sqlite]) await slice(s, sliceMs);

    const stores = [await openStore({ provider: 'sqlite', file: join(sqlite.cluster.dir, '.koala', 'state.sqlite') }), await openStore({ provider: 'postgres', url: postgres.url })];
    try {
      await verify('sqlite', sqlite, stores[0]!);
      await verify('postgres', pg, stores[1]!);
    } finally {
      for (const store of stores) await store.close();
    }
    return {
      sqliteWritesPerSec: Math.round((sqlite.writes / sqlite.ms) * 1000),
      postgresWritesPerSec: Math.round((pg.writes / pg.ms) * 1000),
    };
  } finally {
    for (const c of clusters) await c.stop().catch(() => undefined);
    await postgres?.stop();
  }
}
