// Integration-test helpers: a throw-away project directory, the real `koala` CLI run as a child
// process, and a teardown that always stops what a test started.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { isAlive, readRunState, type RunState } from '../../src/runtime/supervisor/run-state.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(REPO, 'bin', 'run.js');
export const PLAYER_PLUGIN = join(REPO, 'plugins', 'player');
export const FIXTURE_PLUGINS = join(REPO, 'test', 'fixtures', 'plugins');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (`node bin/run.js …`) in `cwd`. */
export async function koala(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [BIN, ...args], { cwd, env: { NO_COLOR: '1', ...env }, reject: false, timeout: 60_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `koala up --detach` in `dir`; fails the test with the command's own output if it does not start. */
export async function upDetached(t: ExecutionContext, dir: string): Promise<void> {
  const r = await koala(dir, ['up', '--detach']);
  t.is(r.exitCode, 0, `koala up --detach failed:\n${r.stderr}\n${r.stdout}`);
}

/** A temp project with a manifest; removed, and any cluster in it stopped, when the test ends. */
export async function makeProject(t: ExecutionContext, manifest: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'koala-test-'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'koala-test-project', private: true }));
  await writeFile(join(dir, 'koala.config.yaml'), manifest);
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  t.teardown(async () => {
    await stopEverything(dir);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A manifest for tests: free gateway port, the given plugins, two hosts. */
/** `gateway`: more lines under `gateway:` (already indented by two spaces). */
export function manifest(opts: { plugins?: string[]; replicas?: number; cluster?: string; extra?: string; gateway?: string } = {}): string {
  const plugins = opts.plugins ?? [PLAYER_PLUGIN];
  return [
    `cluster: ${opts.cluster ?? 'test'}`,
    'logLevel: info',
    'gateway:',
    '  port: 0',
    ...(opts.gateway ? [opts.gateway] : []),
    'hosts:',
    '  - name: host',
    `    replicas: ${opts.replicas ?? 2}`,
    '    plugins:',
    ...plugins.map((p) => `      - ${JSON.stringify(p)}`),
    opts.extra ?? '',
  ].join('\n');
}

/** Every pid a run state names: the supervisor and its children. */
export function pidsOf(state: RunState): number[] {
  return [state.pid, ...state.processes.map((p) => p.pid)];
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function portIsClosed(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Teardown: `koala down`, then SIGKILL anything the run state still names. Never throws. */
export async function stopEverything(dir: string): Promise<void> {
  const state = readRunState(dir);
  await koala(dir, ['down']).catch(() => undefined);
  if (state) {
    for (const pid of pidsOf(state)) {
      if (isAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}
