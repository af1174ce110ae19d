// Many client sessions through one gateway (issue 5): 1 000 `KoalaSession`s, each bound to its own
// IBench actor by a signed first packet, each keeping a few calls `getProxy(IBench, i).ping(n)`
// outstanding for a fixed window. A real cluster (embedded placement, one host, one gateway); the
// sessions live in child processes (`procs/session-clients.ts`) so that this process measures
// nothing but coordinates. Latency is measured per call in the clients, into histograms that are
// merged here; throughput counts the calls answered inside the window.
import { fileURLToPath } from 'node:url';
import { startChild, stopAll, type BenchChild } from '../lib/child.ts';
import { Histogram } from '../lib/histogram.ts';
import { MANIFEST as GATEWAY_MANIFEST } from './gateway.ts';
import { startRealCluster, type BenchCluster } from './real-cluster.ts';

const CLIENTS = fileURLToPath(new URL('../procs/session-clients.ts', import.meta.url));
export const SESSIONS = 1000;
/** Processes the sessions are spread over. */
export const CLIENT_PROCESSES = 2;
/** Calls each session keeps outstanding. */
export const IN_FLIGHT_PER_SESSION = 2;
const CLIENT_SECRET = 'bench-client-secret-0123456789abcdef';

// The gateway case's one-host cluster, with a client secret and limits out of the way.
export const MANIFEST = [
  GATEWAY_MANIFEST,
  'gateway:',
  `  clientSecret: ${CLIENT_SECRET}`,
  // Far above what the bench asks, so that no limit throttles it: what is measured is the path.
  '  limits:',
  '    ratePerSecond: 10000000',
  '    maxInFlight: 100000',
  `    maxSessions: ${SESSIONS * 10}`,
].join('\n');

type Reply =
  | { type: 'ready'; pid: number }
  | { type: 'connected'; sessions: number; ms: number }
  | { type: 'result'; calls: number; ms: number; histogram: number[]; failed: number; codes: string[] }
  | { type: 'error'; message: string };

/** Sends a command to a client process and resolves with its answer of type `type`. */
function ask<T extends Reply['type']>(child: BenchChild<Reply>, cmd: object, type: T, timeoutMs: number): Promise<Extract<Reply, { type: T }>> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error, reply?: Extract<Reply, { type: T }>) => {
      clearTimeout(timer);
      child.proc.off('message', onMessage);
      child.proc.off('exit', onExit);
      if (err) reject(err);
      else resolve(reply!);
    };
    const onMessage = (msg: Reply) => {
      if (msg.type === 'error') done(new Error(`session client ${child.proc.pid}: ${msg.message}`));
      else if (msg.type === type) done(undefined, msg as Extract<Reply, { type: T }>);
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`a session client exited (${signal ?? `code ${code}`})`));
    const timer = setTimeout(() => done(new Error(`a session client did not answer ${JSON.stringify(cmd)} within ${timeoutMs} ms`)), timeoutMs);
    child.proc.on('message', onMessage);
    child.proc.once('exit', onExit);
    child.proc.send(cmd);
  });
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const children: BenchChild<Reply>[] = [];
  let cluster: BenchCluster | undefined;
  try {
    cluster = await startRealCluster(MANIFEST);
    const gateway = cluster.gateway;
    const per = Math.ceil(SESSIONS / CLIENT_PROCESSES);
    const starting = Array.from({ length: CLIENT_PROCESSES }, (_, p) => {
      const first = p * per;
      const count = Math.min(per, SESSIONS - first);
      return startChild<Reply>(CLIENTS, [gateway, CLIENT_SECRET, String(first), String(count), String(IN_FLIGHT_PER_SESSION)]);
    });
    // Keep every child that started, even if another failed, so that `finally` stops it.
    const settled = await Promise.allSettled(starting);
    for (const s of settled) if (s.status === 'fulfilled') children.push(s.value);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;

    const connected = await Promise.all(children.map((c) => ask(c, { cmd: 'connect' }, 'connected', 60_000)));
    const sessions = connected.reduce((a, c) => a + c.sessions, 0);
    if (sessions !== SESSIONS) throw new Error(`${sessions} sessions connected, ${SESSIONS} expected`);

    // Warm-up (JIT on every side, positions cached) then the measuring window, in every client at once.
    const measureMs = seconds * 1000;
    const warmMs = Math.min(2000, Math.max(300, measureMs / 2));
    const results = await Promise.all(children.map((c) => ask(c, { cmd: 'run', warmMs, measureMs }, 'result', warmMs + measureMs + 60_000)));
    const failedCalls = results.reduce((a, r) => a + r.failed, 0);
    if (failedCalls > 0) throw new Error(`${failedCalls} calls failed: ${[...new Set(results.flatMap((r) => r.codes))].join(', ')}`);

    const histogram = new Histogram();
    for (const r of results) histogram.merge(r.histogram);
    // The windows of the clients coincide (started by one message each): their rates add up.
    const callsPerSec = Math.round(results.reduce((a, r) => a + (r.calls / r.ms) * 1000, 0));
    return {
      sessions,
      callsPerSec,
      p50Us: histogram.percentile(0.5),
      p99Us: histogram.percentile(0.99),
      inFlight: sessions * IN_FLIGHT_PER_SESSION,
      clientProcesses: children.length,
      connectMs: Math.max(...connected.map((c) => c.ms)),
    };
  } finally {
    await stopAll(children.map((c) => c.stop));
    await cluster?.stop();
  }
}
