// CLI: wall time of `koala call IPlayer/1 echo hi` as a fresh process (spawn to exit), against a
// running cluster (embedded placement, two hosts, the example player plugin) that it finds through
// the project's `.koala/` run state, as a user would. Median of several runs after one warm-up (so
// Node's compile cache is populated). For scale: the wall time of `node -e 0` on this machine.
import { fileURLToPath } from 'node:url';
import { median } from '../lib/measure.ts';
import { timed } from '../lib/wall.ts';
import { benchManifest, startRealCluster } from './real-cluster.ts';

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
export const PLAYER = fileURLToPath(new URL('../../plugins/player', import.meta.url));

const MANIFEST = benchManifest({ plugins: [PLAYER], replicas: 2 });

export async function run(seconds: number): Promise<Record<string, number>> {
  const runs = seconds >= 3 ? 7 : 2;
  const cluster = await startRealCluster(MANIFEST);
  try {
    const call = async () => {
      const r = await timed([BIN, 'call', 'IPlayer/1', 'echo', 'hi'], cluster.dir);
      if (r.code !== 0 || r.stdout.trim() !== 'hi') throw new Error(`koala call failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
      return r.ms;
    };
    const node = async () => (await timed(['-e', '0'], cluster.dir)).ms;
    await call(); // warm-up: compile cache, the activation of IPlayer/1
    await node();
    const calls: number[] = [];
    const nodes: number[] = [];
    for (let i = 0; i < runs; i++) {
      calls.push(await call());
      nodes.push(await node());
    }
    return { callMs: Math.round(median(calls)), nodeBaselineMs: Math.round(median(nodes)) };
  } finally {
    await cluster.stop();
  }
}
