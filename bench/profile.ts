// Profiles a path under load:
//   node bench/profile.ts [gateway|activations|host-to-host|ceiling|ceiling-1] [seconds] [inFlight] [--no-cpu-prof] [--hops] [--perf]
// Starts the subject (the gateway case's cluster, the host-to-host case's cluster, or the ceiling's
// relay and server, or its one-hop server) with
// `--cpu-prof` and a frame counter in every child process, profiles this process (the client) with
// the inspector, drives pings with `inFlight` outstanding, stops everything, and prints:
// - per process, the CPU time (from /proc) it used per call during the measured window: the
//   honest cost figure (with `--no-cpu-prof`, free of the profiler's own overhead);
// - per process, how many calls each WebSocket frame carried (batching);
// - per process, its hottest files and functions by self time. Self time counts time spent
//   descheduled inside a function as busy (on a loaded 2-core machine that inflates the socket
//   writes, `writeBuffer`/`writev`), so read it as a ranking, and the /proc figure as the total.
// The raw .cpuprofile files stay in the printed directory (Chrome DevTools opens them).
// With `--hops` (for one call in flight; no CPU profiles then, they would slow the hops down):
// every process stamps the messages it receives and the frames it sends (`procs/hop-times.ts`), and
// the round trips are split into time inside each process and time between processes.
// With `--perf` (no CPU profiles then): Linux `perf record` on every process during the window, and
// per process the µs per call by thread, by kind of code (kernel, V8 runtime, JIT code), in page
// faults, and the top symbols (`lib/perf.ts`; KOALA_PERF_TOP=N for N of them, default 12). The
// children run with `--perf-basic-prof` (JIT code by function name); for this process's too,
// start it as `node --perf-basic-prof bench/profile.ts`.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRunState } from '../src/runtime/supervisor/run-state.ts';
import { startGatewayCluster } from './cases/gateway.ts';
import { startHostToHost } from './cases/host-to-host.ts';
import { IBench } from './fixtures-empty.ts';
import { summariseProfile } from './lib/cpuprofile.ts';
import { hopTable } from './lib/hops.ts';
import { checkPerf, perfTable, recordPerf, type PerfRecording } from './lib/perf.ts';
import { sampleThroughput, warm } from './lib/measure.ts';
import { cpuTimes, type CpuTimes } from './lib/proc-cpu.ts';
import { startCeiling } from './lib/ws-ceiling.ts';

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const [subject = 'gateway', secondsArg = '5', inFlightArg = '1000'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const seconds = Number(secondsArg);
const inFlight = Number(inFlightArg);
const hops = flags.includes('--hops');
const perf = flags.includes('--perf');
const profiling = !flags.includes('--no-cpu-prof') && !hops && !perf;
/** How many symbols `--perf` lists per process. */
const perfTop = Number(process.env.KOALA_PERF_TOP ?? 12);
if (perf) {
  try {
    if (!Number.isInteger(perfTop) || perfTop < 1) throw new Error(`KOALA_PERF_TOP must be a whole number of symbols (1 or more), got "${process.env.KOALA_PERF_TOP}"`);
    checkPerf();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
// A short run (the test's) needs only enough calls to settle the JIT.
const WARM = seconds < 1 ? 3000 : 20_000;
const dir = mkdtempSync(join(tmpdir(), 'koala-prof-'));
const counter = fileURLToPath(new URL('./procs/count-frames.ts', import.meta.url));
const hopTimes = fileURLToPath(new URL('./procs/hop-times.ts', import.meta.url));
// Child processes (the supervisor's and ours) inherit this environment.
process.env.BENCH_FRAMES_DIR = dir;
if (hops) process.env.BENCH_HOPS_DIR = dir;
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${counter}${hops ? ` --import=${hopTimes}` : ''}${perf ? ' --perf-basic-prof' : ''}${profiling ? ` --cpu-prof --cpu-prof-dir=${dir}` : ''}`.trim();
const { frameCounts } = (await import(counter)) as typeof import('./procs/count-frames.ts');
const { writeHops } = (await import(hopTimes)) as typeof import('./procs/hop-times.ts');

const names = new Map<string, string>();
let warmUp: () => Promise<void>;
let measure: () => Promise<{ calls: number; ms: number }>;
let stop: () => Promise<void>;
const pipelinedBy = (call: () => Promise<unknown>) => {
  warmUp = () => warm(call, WARM, inFlight);
  measure = () => sampleThroughput(call, inFlight, seconds * 1000);
};
if (subject === 'gateway') {
  const cluster = await startGatewayCluster();
  stop = cluster.stop;
  for (const p of readRunState(cluster.dir)?.processes ?? []) names.set(String(p.pid), p.name);
  if (names.size === 0) throw new Error('no run state: cannot tell the cluster processes apart');
  let n = 0;
  pipelinedBy(() => {
    const i = n++;
    return cluster.client.getProxy(IBench, i % 64).ping(i);
  });
} else if (subject === 'activations') {
  // The gateway case's cluster, every call to a new actor: the activation path.
  const cluster = await startGatewayCluster();
  stop = cluster.stop;
  for (const p of readRunState(cluster.dir)?.processes ?? []) names.set(String(p.pid), p.name);
  let n = 0;
  pipelinedBy(() => {
    const i = n++;
    return cluster.client.getProxy(IBench, 10_000_000 + i).ping(i);
  });
} else if (subject === 'host-to-host') {
  // The calls are made by the driver actor on one host to actors on the other; this process only
  // starts each round (one `drive` call through the gateway).
  const h2h = await startHostToHost();
  stop = h2h.close;
  const state = readRunState(h2h.cluster.dir);
  const actors = await h2h.cluster.client.actors('IDriver');
  const driverHost = actors.find((a) => a.key === 'driver')?.host ?? '';
  for (const p of state?.processes ?? []) names.set(String(p.pid), p.details?.id === driverHost ? `${p.name} (driver: the caller)` : p.role === 'host' ? `${p.name} (targets)` : p.name);
  let perMs = 50;
  warmUp = async () => {
    await h2h.driver.drive(WARM, inFlight, h2h.targets);
    perMs = WARM / (await h2h.driver.drive(WARM, inFlight, h2h.targets));
  };
  measure = async () => {
    const calls = Math.round(perMs * seconds * 1000);
    return { calls, ms: await h2h.driver.drive(calls, inFlight, h2h.targets) };
  };
} else if (subject === 'ceiling' || subject === 'ceiling-1') {
  const ceiling = await startCeiling(subject === 'ceiling' ? 2 : 1);
  stop = ceiling.close;
  for (const [name, pid] of Object.entries(ceiling.pids)) names.set(String(pid), name);
  let n = 0;
  pipelinedBy(() => ceiling.call(n++));
} else {
  throw new Error(`usage: node bench/profile.ts [gateway|activations|host-to-host|ceiling|ceiling-1] [seconds] [inFlight] [--no-cpu-prof] [--hops] [--perf]`);
}

names.set(String(process.pid), 'client (this process)');
const session = new Session();
let calls = 0;
const cpu = new Map<string, CpuTimes>();
const clientFrames = { sent: 0, received: 0 };
/** The measured window on the profiles' clock (CLOCK_MONOTONIC, µs): children's samples outside it are left out. */
const windowUs: [number, number] = [0, 0];
let recording: PerfRecording | undefined;
try {
  await warmUp!();
  if (profiling) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  if (perf) {
    recording = recordPerf([...names.keys()], dir);
    await new Promise((resolve) => setTimeout(resolve, 200)); // perf attaches to the threads
  }
  const before = frameCounts();
  windowUs[0] = Number(process.hrtime.bigint() / 1000n);
  for (const pid of names.keys()) cpu.set(pid, cpuTimes(Number(pid)));
  const t = await measure!();
  windowUs[1] = Number(process.hrtime.bigint() / 1000n);
  await recording?.stop();
  for (const pid of names.keys()) {
    const [a, b] = [cpu.get(pid)!, cpuTimes(Number(pid))];
    cpu.set(pid, { userMs: b.userMs - a.userMs, systemMs: b.systemMs - a.systemMs, minorFaults: b.minorFaults - a.minorFaults });
  }
  const after = frameCounts();
  clientFrames.sent = after.sent - before.sent;
  clientFrames.received = after.received - before.received;
  calls = t.calls;
  if (profiling) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, 'client.cpuprofile'), JSON.stringify(profile));
  }
  process.stdout.write(`${subject}, ${inFlight} in flight: ${Math.round((t.calls / t.ms) * 1000)} calls/s over ${(t.ms / 1000).toFixed(1)} s${profiling ? ' (profiler on: slower than the bench)' : ''}\n`);
  process.stdout.write(`CPU per call in the measured window (/proc): user + system = total\n`);
  let total = 0;
  const us = (ms: number) => ((ms * 1000) / calls).toFixed(2).padStart(6);
  for (const [pid, { userMs, systemMs, minorFaults }] of cpu) {
    total += userMs + systemMs;
    const faults = `${(minorFaults / calls).toFixed(3)} page faults`;
    process.stdout.write(`  ${us(userMs)} + ${us(systemMs)} = ${us(userMs + systemMs)} µs  ${faults.padStart(18)}  ${names.get(pid)}\n`);
  }
  process.stdout.write(`                     ${us(total)} µs  total → at most ${Math.round(((2 * 1000) / ((total * 1000) / calls)) * 1000).toLocaleString('en-US')} calls/s on 2 fully used cores\n`);
  process.stdout.write(`client frames in the window: ${clientFrames.sent} sent, ${clientFrames.received} received (${(calls / Math.max(1, clientFrames.sent)).toFixed(0)} calls per frame)\n`);
} finally {
  session.disconnect();
  await recording?.stop();
  await stop!();
}
if (perf) process.stdout.write(`\n${perfTable(dir, names, calls, perfTop)}\n`);
if (hops) {
  writeHops();
  process.stdout.write(`\n${hopTable(dir, windowUs[0], windowUs[1], calls, (windowUs[1] - windowUs[0]) / calls, names)}\n`);
}

// Children write their profile when they exit; only their samples inside the measured window count.
const frames = new Map<string, { argv: string; sent: number; sentBytes: number; received: number; receivedBytes: number }>();
for (const f of readdirSync(dir).filter((f) => f.endsWith('.frames.json'))) frames.set(f.split('.')[0]!, JSON.parse(readFileSync(join(dir, f), 'utf8')));
for (const [pid, f] of frames) {
  if (pid === String(process.pid) || profiling) continue;
  process.stdout.write(`${names.get(pid) ?? `pid ${pid}`}: frames over its life: sent ${f.sent} (${(f.sentBytes / Math.max(1, f.sent)).toFixed(0)} B avg), received ${f.received} (${(f.receivedBytes / Math.max(1, f.received)).toFixed(0)} B avg)\n`);
}
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
  const pid = file === 'client.cpuprofile' ? String(process.pid) : (/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1] ?? '');
  const f = frames.get(pid);
  const name = names.get(pid) ?? `pid ${pid}`;
  const batching = f ? `frames over its life: sent ${f.sent} (${(f.sentBytes / Math.max(1, f.sent)).toFixed(0)} B avg), received ${f.received} (${(f.receivedBytes / Math.max(1, f.received)).toFixed(0)} B avg)` : '';
  process.stdout.write(`\n=== ${name}: ${file}\n${batching ? `${batching}\n` : ''}${summariseProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')), calls, windowUs)}\n`);
}
process.stdout.write(`\nprofiles in ${dir}\n`);
