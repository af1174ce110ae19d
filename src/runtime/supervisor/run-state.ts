// `.koala/cluster.json`: how `koala status/call/down` find a running cluster from anywhere in the
// project. It holds the cluster secret, so it is written owner-only.
import type { ConsulTlsFiles } from '../placement/consul/tls-files.ts';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const STATE_DIR = '.koala';
const STATE_FILE = 'cluster.json';

export interface ProcessState {
  name: string;
  role: 'placement' | 'consul' | 'gateway' | 'host';
  pid: number;
  url: string;
  details?: Record<string, string>;
}

export interface RunState {
  status: 'starting' | 'running';
  /** The supervisor's pid: the process `koala down` signals. */
  pid: number;
  cluster: string;
  secret: string;
  root: string;
  manifest: string | null;
  startedAt: string;
  /** This machine's gateway; '' when it runs none (then tools find one through Consul). */
  gateway: string;
  /** The Consul agent(s), with Consul placement. */
  consul?: string;
  /** HTTPS to those agents: `placement.consul.tls` with absolute file names. */
  consulTls?: ConsulTlsFiles;
  processes: ProcessState[];
}

export function statePath(root: string): string {
  return join(root, STATE_DIR, STATE_FILE);
}

/** Whether `pid` is a running process. A zombie (exited, not yet reaped by its parent) is not. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S …" — the state letter follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no procfs (not Linux): trust kill(0)
  }
}

export function readRunState(root: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(root), 'utf8')) as RunState;
  } catch {
    return undefined;
  }
}

/** The state of a cluster whose supervisor is still alive, searching from `cwd` up to `/`. */
export function findRunningCluster(cwd: string): RunState | undefined {
  for (let dir = cwd; ; dir = dirname(dir)) {
    const state = readRunState(dir);
    if (state !== undefined && isAlive(state.pid)) return state;
    if (dirname(dir) === dir) return undefined;
  }
}

export function writeRunState(state: RunState): void {
  const file = statePath(state.root);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export function removeRunState(root: string, pid: number): void {
  const state = readRunState(root);
  if (state?.pid === pid) rmSync(statePath(root), { force: true });
}

export class AlreadyRunningError extends Error {
  override name = 'AlreadyRunningError';
}

/**
 * Takes the project's supervisor lock (one running cluster per project directory). A lock left by a
 * dead supervisor is taken over.
 */
export function claimProject(root: string, pid: number): void {
  const lock = join(root, STATE_DIR, 'supervisor.pid');
  mkdirSync(dirname(lock), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, String(pid), { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lock, 'utf8'));
      if (holder !== pid && Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        const state = readRunState(root);
        const where = state?.gateway ? ` (gateway ${state.gateway})` : '';
        throw new AlreadyRunningError(`a Koala cluster is already running in ${root}${where}, supervisor pid ${holder}; stop it with \`koala down\` first`);
      }
      rmSync(lock, { force: true });
    }
  }
  throw new AlreadyRunningError(`could not take the supervisor lock in ${join(root, STATE_DIR)}; another \`koala up\` is starting`);
}

export function releaseProject(root: string, pid: number): void {
  const lock = join(root, STATE_DIR, 'supervisor.pid');
  try {
    if (Number(readFileSync(lock, 'utf8')) === pid) rmSync(lock, { force: true });
  } catch {
    // already gone
  }
  removeRunState(root, pid);
}
