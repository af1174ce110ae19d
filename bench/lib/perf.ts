// `profile.ts --perf`: Linux `perf` on every process of a path during the measured window. Where a
// CPU profile sees only JavaScript, this sees everything a process spends per call: the kernel
// (socket writes, wake-ups, page faults), V8's runtime and builtins, the JIT code, and the GC
// helper threads, and so shows costs that are not in any JavaScript function.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

/** Samples per second per thread. */
const FREQUENCY = 4999;

export interface PerfRecording {
  stop(): Promise<void>;
}

/** Fails with a one-line reason when `perf` cannot record here. */
export function checkPerf(): void {
  const probe = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) throw new Error('profile.ts --perf needs Linux perf on PATH: install it (Debian: apt-get install linux-perf) or leave --perf out');
}

/** Starts `perf record` on each pid; stop() ends them all and waits until their files are written. */
export function recordPerf(pids: readonly string[], dir: string): PerfRecording {
  const recorders: { proc: ChildProcess; exited: Promise<void> }[] = pids.map((pid) => {
    const proc = spawn('perf', ['record', '-q', '-F', String(FREQUENCY), '-g', '-p', pid, '-o', join(dir, `${pid}.perf.data`)], { stdio: 'ignore' });
    // The listener goes on at once: a recorder that fails at start exits before anyone waits.
    return { proc, exited: new Promise<void>((resolve) => proc.once('exit', () => resolve())) };
  });
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      // Once, however often it is asked (the measured window ends it, a failure's cleanup too).
      stopped ??= (async () => {
        for (const r of recorders) r.proc.kill('SIGINT');
        await Promise.all(recorders.map((r) => r.exited));
      })();
      return stopped;
    },
  };
}

interface Row {
  thread: string;
  dso: string;
  symbol: string;
  samples: number;
}

function rows(file: string): Row[] {
  const out = spawnSync('perf', ['report', '-i', file, '--no-children', '-g', 'none', '--sort', 'comm,dso,sym', '--stdio', '-n'], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout ?? '';
  const parsed: Row[] = [];
  for (const line of out.split('\n')) {
    // "    12.34%    567  MainThread  node   [.] Builtins_Foo" (JIT code: dso "[JIT] tid 123")
    const m = /^\s+[\d.]+%\s+(\d+)\s+(\S+)\s+(\[JIT\] tid \d+|\S+)\s+\[.\]\s+(.*)$/.exec(line);
    if (m) parsed.push({ samples: Number(m[1]), thread: m[2]!, dso: m[3]!.startsWith('[JIT]') ? '[JIT]' : m[3]!, symbol: m[4]!.trim() });
  }
  return parsed;
}

/** Samples whose stack passes through the kernel's page-fault handler (fresh memory being touched). */
function pageFaultSamples(file: string): number {
  const out = spawnSync('perf', ['script', '-i', file, '-F', 'ip,sym'], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout ?? '';
  let n = 0;
  for (const sample of out.split('\n\n')) if (sample.includes('page_fault')) n++;
  return n;
}

/** kernel; JIT: JavaScript compiled by V8; node: the node binary (V8's runtime and builtins, libuv); shared libraries by name. */
const group = (dso: string) => (dso === '[kernel.kallsyms]' ? 'kernel' : dso === '[JIT]' ? 'JIT' : dso.replace(/\.so[.\d]*$/, ''));

/** µs per call per process: by thread and by kind of code, page faults, and the top symbols. */
export function perfTable(dir: string, pids: ReadonlyMap<string, string>, calls: number, top = 12): string {
  const parts: string[] = [`perf (${FREQUENCY} samples/s per thread): µs per call over ${calls} calls`];
  for (const [pid, name] of pids) {
    parts.push(processSection(join(dir, `${pid}.perf.data`), pid, name, calls, top));
    // V8 writes /tmp/perf-<pid>.map for --perf-basic-prof (0.4 MB for a host after a one-second
    // run, growing with the code it compiles), needed only until now; also for a process that was
    // idle or could not be recorded.
    rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
  return parts.join('\n');
}

/** One process's part of `perfTable`. */
function processSection(file: string, pid: string, name: string, calls: number, top: number): string {
  const perCall = (samples: number) => ((samples / FREQUENCY / calls) * 1e6).toFixed(3).padStart(7);
  const all = rows(file);
  if (all.length === 0) return `\n=== ${name}: no samples (perf could not record pid ${pid})`;
  const total = all.reduce((a, r) => a + r.samples, 0);
  if (total / FREQUENCY / calls < 1e-8) return `\n=== ${name}: idle (${total} samples)`;
  const sum = (key: (r: Row) => string) => {
    const m = new Map<string, number>();
    for (const r of all) m.set(key(r), (m.get(key(r)) ?? 0) + r.samples);
    return [...m].sort((a, b) => b[1] - a[1]);
  };
  const lines = [
    `\n=== ${name}: ${perCall(total).trim()} µs per call`,
    `  by thread: ${sum((r) => (r.thread === 'MainThread' || r.thread === 'node' ? 'main' : r.thread)).map(([k, v]) => `${k} ${perCall(v).trim()}`).join(', ')}`,
    `  by code:   ${sum((r) => group(r.dso)).map(([k, v]) => `${k} ${perCall(v).trim()}`).join(', ')}`,
    `  in page faults: ${perCall(pageFaultSamples(file)).trim()}`,
  ];
  for (const r of [...all].sort((a, b) => b.samples - a.samples).slice(0, top)) lines.push(`  ${perCall(r.samples)}  ${r.thread.padEnd(10)} ${group(r.dso).slice(0, 6).padEnd(6)} ${r.symbol.replace(/file:\/\/\S*?\/(src|bench|node_modules)\//, '$1/').slice(0, 110)}`);
  return lines.join('\n');
}
