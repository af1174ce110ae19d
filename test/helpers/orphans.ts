// Temp dirs whose names carry the pid of the test process that made them: those of processes
// that died by SIGKILL (their exit handlers never ran) are removed by the next run.
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../../src/runtime/supervisor/run-state.ts';

const swept = new Set<string>();

/** Removes, once per process and pattern, temp dirs whose pid (the pattern's first group) is dead. */
export async function sweepOrphanDirs(pattern: RegExp): Promise<void> {
  if (swept.has(pattern.source)) return;
  swept.add(pattern.source);
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Stops a child: `signal`, then SIGKILL if it is still running after `graceMs`; resolves once it exited. */
export async function stopChild(child: { kill(signal: NodeJS.Signals): boolean }, running: () => boolean, exited: Promise<unknown>, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (running()) {
    child.kill(signal);
    const timer = setTimeout(() => {
      if (running()) child.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }
  await exited;
}
