// Client sessions of the `sessions` case: `node session-clients.ts <gateway url> <client secret>
// <first> <count> <inFlight>` opens `count` KoalaSessions (session i bound to IBench/i, as a
// user's session is bound to its player), each with a first packet signed by the app's secret.
// Driven over IPC by the case:
//   ready (sent at start)                        → { type: 'ready', pid }
//   { cmd: 'connect' }                           → { type: 'connected', sessions, ms }
//   { cmd: 'run', warmMs, measureMs }            → { type: 'result', calls, ms, histogram, failed, codes }
// During `run` every session keeps `inFlight` calls `getProxy(IBench, i).ping(n)` outstanding;
// the calls answered inside the measuring window (after the warm-up) are counted and their
// latencies, measured here, go into a histogram. Any failure is reported as `{ type: 'error' }`.
// Exits when the parent goes away.
import { KoalaSession, signFirstPacket } from '../../src/client/index.ts';
import { IBench } from '../fixtures-empty.ts';
import { Histogram } from '../lib/histogram.ts';

const [url, secret, firstArg, countArg, inFlightArg] = process.argv.slice(2);
const first = Number(firstArg);
const count = Number(countArg);
const inFlight = Number(inFlightArg);
/** Handshakes in progress at once (each is a WebSocket upgrade, an HMAC check and an activation). */
const CONNECTING = 50;

process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

const sessions: { key: number; session: KoalaSession }[] = [];

async function connect(): Promise<{ sessions: number; ms: number }> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONNECTING, count) }, async () => {
      while (next < count) {
        const key = first + next++;
        const session = await KoalaSession.connect({
          url: url!,
          reconnect: false,
          timeoutMs: 30_000,
          firstPacket: signFirstPacket(secret!, { claims: { user: `bench-${key}` }, iface: IBench.name, key }),
        });
        sessions.push({ key, session });
      }
    }),
  );
  return { sessions: sessions.length, ms: Math.round(performance.now() - started) };
}

async function run(warmMs: number, measureMs: number) {
  const histogram = new Histogram();
  const codes = new Set<string>();
  let calls = 0;
  let failed = 0;
  let n = 0;
  const from = performance.now() + warmMs;
  const until = from + measureMs;
  const lane = async (proxy: { ping(n: number): Promise<number> }) => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= until) return;
      try {
        await proxy.ping(n++ & 0x3fffffff);
      } catch (err) {
        failed++;
        codes.add(String((err as { code?: unknown }).code ?? (err as Error).message));
        return;
      }
      const t1 = performance.now();
      if (t1 >= from && t1 <= until) {
        calls++;
        histogram.record((t1 - t0) * 1000);
      }
    }
  };
  await Promise.all(
    sessions.flatMap(({ key, session }) => {
      const proxy = session.getProxy(IBench, key);
      return Array.from({ length: inFlight }, () => lane(proxy));
    }),
  );
  return { calls, ms: measureMs, histogram: histogram.toJSON(), failed, codes: [...codes] };
}

process.on('message', (msg: { cmd: string; warmMs?: number; measureMs?: number }) => {
  const work = msg.cmd === 'connect' ? connect().then((r) => ({ type: 'connected', ...r })) : run(msg.warmMs!, msg.measureMs!).then((r) => ({ type: 'result', ...r }));
  work.then(
    (reply) => process.send!(reply),
    (err: unknown) => process.send!({ type: 'error', message: `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim() }),
  );
});

process.send!({ type: 'ready', pid: process.pid });
