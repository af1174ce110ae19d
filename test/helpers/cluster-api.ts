// Starts a real cluster (real child processes) from inside a test through the Supervisor API,
// with a ClusterClient connected to its gateway, and stops both when the test ends.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { ClusterClient } from '../../src/runtime/client/cluster-client.ts';
import { loadManifest } from '../../src/runtime/config/manifest.ts';
import type { RunState } from '../../src/runtime/supervisor/run-state.ts';
import { Supervisor } from '../../src/runtime/supervisor/supervisor.ts';
import { manifest } from './cluster.ts';

export interface TestCluster {
  dir: string;
  state: RunState;
  client: ClusterClient;
  /** Lines the children logged, as `name| line`. */
  logs: string[];
  stop(): Promise<void>;
}

/** Starts a cluster stopped by `t.teardown`, or — without `t` (in a `before` hook) — by calling `stop()`. */
export async function startCluster(t: ExecutionContext | undefined, opts: Parameters<typeof manifest>[0] & { timeoutMs?: number; tls?: { ca: string | Buffer } } = {}): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'koala-cluster-'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'koala-test-cluster', private: true }));
  await writeFile(join(dir, 'koala.config.yaml'), manifest(opts));
  const logs: string[] = [];
  const supervisor = new Supervisor(await loadManifest({ cwd: dir, env: {} }), {
    log: (name, line) => logs.push(`${name}| ${line}`),
    progress: () => {},
  });
  let client: ClusterClient | undefined;
  const stop = async () => {
    client?.close();
    await supervisor.stop();
    await rm(dir, { recursive: true, force: true });
  };
  t?.teardown(stop);
  try {
    const state = await supervisor.start();
    client = await ClusterClient.connect({ url: state.gateway, cluster: state.cluster, secret: state.secret, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.tls ? { tls: opts.tls } : {}) });
    return { dir, state, client, logs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
