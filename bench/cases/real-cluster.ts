// A real cluster (child processes, sockets) for benchmarks, started through the Supervisor API in
// a temporary project directory, with a client connected to its gateway.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterClient } from '../../src/runtime/client/cluster-client.ts';
import { loadManifest } from '../../src/runtime/config/manifest.ts';
import { Supervisor } from '../../src/runtime/supervisor/supervisor.ts';

export interface BenchCluster {
  client: ClusterClient;
  /** The gateway's public URL (`ws://…`), where client sessions connect. */
  gateway: string;
  /** The temporary project directory (its `.koala/` lets the CLI find the cluster). */
  dir: string;
  stop(): Promise<void>;
}

/** The benches' manifest: cluster `bench`, quiet logs, one host group serving `plugins`. */
export function benchManifest(opts: { plugins: readonly string[]; replicas: number; provider?: 'embedded' | 'consul'; extra?: readonly string[] }): string {
  const provider = opts.provider ?? 'embedded';
  return [
    'cluster: bench',
    'logLevel: warn',
    'placement:',
    `  provider: ${provider}`,
    ...(provider === 'consul' ? ['  consul:', '    start: true'] : []),
    ...(opts.extra ?? []),
    'hosts:',
    '  - name: host',
    `    replicas: ${opts.replicas}`,
    `    plugins: [${opts.plugins.map((p) => JSON.stringify(p)).join(', ')}]`,
  ].join('\n');
}

export async function startRealCluster(manifestYaml: string): Promise<BenchCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'koala-bench-'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'koala-bench', private: true }));
  await writeFile(join(dir, 'koala.config.yaml'), manifestYaml);
  const supervisor = new Supervisor(await loadManifest({ cwd: dir, env: {} }), { log: () => {}, progress: () => {} });
  const stop = async () => {
    await supervisor.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const state = await supervisor.start();
    const client = await ClusterClient.connect({ url: state.gateway, cluster: state.cluster, secret: state.secret, timeoutMs: 60_000 });
    return {
      client,
      gateway: state.gateway,
      dir,
      stop: async () => {
        client.close();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Runs `call(i)` for i = 0…count−1 with `inFlight` calls outstanding; returns calls per second. */
export async function pipelined(count: number, inFlight: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await call(next++);
    }),
  );
  return Math.round((count / (performance.now() - started)) * 1000);
}
