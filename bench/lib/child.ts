// Child processes of a benchmark: started with this Node, they report readiness with one IPC
// message and are always stopped by the case (they also exit on their own when we disconnect).
import { spawn, type ChildProcess } from 'node:child_process';

export interface BenchChild<M> {
  ready: M;
  proc: ChildProcess;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;

function stopper(proc: ChildProcess): () => Promise<void> {
  return async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(killer);
  };
}

/** Runs `node <script> …args` and resolves with its first IPC message. */
export function startChild<M>(script: string, args: string[] = [], nodeArgs: string[] = []): Promise<BenchChild<M>> {
  // stdout is ignored: one.ts reports its figures on stdout, children must not write there.
  const proc = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const stop = stopper(proc);
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      clearTimeout(timer);
      void stop().then(() => reject(err));
    };
    const timer = setTimeout(() => fail(new Error(`${script} was not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    proc.once('error', fail);
    proc.once('exit', (code, signal) => fail(new Error(`${script} exited before it was ready (${signal ?? `code ${code}`})`)));
    proc.once('message', (msg) => {
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      proc.removeAllListeners('error');
      proc.on('error', () => {});
      resolve({ ready: msg as M, proc, stop });
    });
  });
}

/** Stops everything in `stops`, in order, even if some fail. */
export async function stopAll(stops: (() => Promise<void>)[]): Promise<void> {
  for (const stop of stops) {
    try {
      await stop();
    } catch {
      // keep stopping the rest
    }
  }
}
