// Start-up: wall time of `koala up --detach` (it returns once every process reported ready) in a
// temporary project with embedded placement, two hosts and the example player plugin; then
// `koala down` (also timed). Median of three up/down cycles (the first may be slower: Node's compile
// cache; the median leaves it out).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, readRunState } from '../../src/runtime/supervisor/run-state.ts';
import { median } from '../lib/measure.ts';
import { timed } from '../lib/wall.ts';
import { BIN, PLAYER } from './cli.ts';
import { benchManifest } from './real-cluster.ts';

const MANIFEST = benchManifest({ plugins: [PLAYER], replicas: 2, extra: ['gateway:', '  port: 0'] });

/** `koala down`, then SIGKILL whatever the run state still names. Never throws. */
async function stopEverything(dir: string): Promise<void> {
  const state = readRunState(dir);
  if (state === undefined) return;
  await timed([BIN, 'down'], dir).catch(() => undefined);
  for (const pid of [state.pid, ...state.processes.map((p) => p.pid)]) {
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const cycles = seconds >= 3 ? 3 : 1;
  const dir = await mkdtemp(join(tmpdir(), 'koala-bench-up-'));
  try {
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'koala-bench-up', private: true }));
    await writeFile(join(dir, 'koala.config.yaml'), MANIFEST);
    const cycle = async () => {
      const up = await timed([BIN, 'up', '--detach'], dir);
      if (up.code !== 0 || !/^ws:\/\//.test(up.stdout.trim())) throw new Error(`koala up --detach failed (exit ${up.code}): ${up.stdout}${up.stderr}`);
      const down = await timed([BIN, 'down'], dir);
      if (down.code !== 0) throw new Error(`koala down failed (exit ${down.code}): ${down.stdout}${down.stderr}`);
      return { up: up.ms, down: down.ms };
    };
    const ups: number[] = [];
    const downs: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const c = await cycle();
      ups.push(c.up);
      downs.push(c.down);
    }
    return { upMs: Math.round(median(ups)), downMs: Math.round(median(downs)) };
  } finally {
    await stopEverything(dir);
    await rm(dir, { recursive: true, force: true });
  }
}
