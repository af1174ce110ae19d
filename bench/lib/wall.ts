// Wall time of a fresh process, from spawn to exit.
import { spawn } from 'node:child_process';

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

export function timed(args: string[], cwd: string, timeoutMs = 60_000): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const proc = spawn(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'exit', not 'close': a detached grandchild (the `up --detach` supervisor) may hold the pipes.
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - started, code, stdout, stderr });
    });
  });
}
