// The benchmark cases, what each measures, and the target each figure must meet on the reference
// machine (2 cores). `bench/run.ts` runs them; `test/bench-smoke.test.ts` keeps them working.
export interface Figure {
  key: string;
  label: string;
  unit: string;
  /** Target: the figure must be at least (`min`) or at most (`max`) this. */
  min?: number;
  max?: number;
}

export interface BenchCase {
  name: string;
  title: string;
  nodeArgs: string[];
  figures: Figure[];
  /**
   * The case whose runs measure these figures (side by side with its own): this one is not run
   * by itself, only shown as its own rows of the table.
   */
  measuredIn?: string;
}

export const CASES: BenchCase[] = [
  {
    name: 'ceiling',
    title: '**Ceiling**: bare `ws` relay, client → relay → server (3 processes, Koala-style batching, no Koala code), measured in the runs of the gateway case, in turns with Koala',
    nodeArgs: [],
    measuredIn: 'gateway',
    figures: [
      { key: 'ceilingP50Us', label: 'round trip p50, 1 in flight', unit: 'µs' },
      { key: 'ceilingP99Us', label: 'round trip p99, 1 in flight', unit: 'µs' },
      { key: 'ceilingMsgsPerSec', label: 'round trips/s, 1 000 in flight', unit: '/s' },
    ],
  },
  {
    name: 'gateway',
    title: '**Gateway path**: client → gateway → host → actor (1 host, embedded placement), with the ceiling, the TCP floor and Moleculer in the same runs',
    nodeArgs: [],
    figures: [
      { key: 'p50Us', label: 'round trip p50, 1 in flight', unit: 'µs' },
      { key: 'p99Us', label: 'round trip p99, 1 in flight', unit: 'µs', max: 500 },
      { key: 'callsPerSec', label: 'calls/s, 1 000 in flight', unit: '/s' },
      { key: 'tcpP50Us', label: 'bare TCP relay p50, 1 in flight (same run; no ws, no batching)', unit: 'µs' },
      { key: 'tcpP99Us', label: 'bare TCP relay p99, 1 in flight (same run)', unit: 'µs' },
      { key: 'moleculerCallsPerSec', label: 'Moleculer calls/s, 100 in flight (same run)', unit: '/s' },
      { key: 'p50VsCeiling', label: 'p50 ÷ ceiling p50', unit: '×', max: 1.25 },
      { key: 'callsVsCeiling', label: 'calls/s ÷ ceiling', unit: '×', min: 0.7 },
      { key: 'callsVsMoleculer', label: 'calls/s ÷ Moleculer at 100 in flight', unit: '×', min: 2.5 },
    ],
  },
  {
    name: 'sessions',
    title: '**Client sessions**: 1 000 `KoalaSession`s (signed first packets, 2 client processes) → gateway → host → actor, 2 calls in flight per session',
    nodeArgs: [],
    figures: [
      { key: 'sessions', label: 'sessions, each its own connection', unit: 'sessions' },
      { key: 'callsPerSec', label: 'calls/s, 2 000 in flight in all', unit: '/s' },
      { key: 'p50Us', label: 'call latency p50, measured in the clients', unit: 'µs' },
      { key: 'p99Us', label: 'call latency p99, measured in the clients', unit: 'µs' },
    ],
  },
  {
    name: 'host-to-host',
    title: '**Host to host**: an actor on host A calls actors on host B (1 000 in flight in one turn), with a one-hop `ws` ceiling in the same run',
    nodeArgs: [],
    figures: [
      { key: 'callsPerSec', label: 'calls/s', unit: '/s' },
      { key: 'oneHopCeilingMsgsPerSec', label: 'one-hop ceiling round trips/s, 1 000 in flight (same run)', unit: '/s' },
      { key: 'vsOneHopCeiling', label: 'calls/s ÷ one-hop ceiling', unit: '×', min: 0.7 },
    ],
  },
  {
    name: 'in-host',
    title: '**In-host** actor-to-actor calls (64 in flight, same host, no network)',
    nodeArgs: [],
    figures: [{ key: 'callsPerSec', label: 'calls/s', unit: '/s', min: 2_000_000 }],
  },
  {
    name: 'moleculer',
    title: '**Peer**: Moleculer 0.14, TCP transporter, request/response echo between two processes',
    nodeArgs: [],
    figures: [
      { key: 'oneInFlightPerSec', label: 'calls/s, 1 in flight', unit: '/s' },
      { key: 'p50Us', label: 'round trip p50, 1 in flight', unit: 'µs' },
      { key: 'callsPerSec', label: 'calls/s, 100 in flight', unit: '/s' },
    ],
  },
  {
    name: 'cli',
    title: '**CLI**: `koala call IPlayer/1 echo hi` as a fresh process, against a running cluster',
    nodeArgs: [],
    figures: [
      { key: 'callMs', label: 'wall time, median', unit: 'ms', max: 400 },
      { key: 'nodeBaselineMs', label: '`node -e 0` wall time, for scale', unit: 'ms' },
    ],
  },
  {
    name: 'startup',
    title: '**Start-up**: `koala up --detach` to ready (embedded placement, two hosts), then `koala down`',
    nodeArgs: [],
    figures: [
      { key: 'upMs', label: '`koala up --detach` wall time, median', unit: 'ms', max: 3000 },
      { key: 'downMs', label: '`koala down` wall time, median', unit: 'ms' },
    ],
  },
  {
    name: 'memory',
    title: '**Memory**: idle activations of an empty actor (250 k, in-process placement included)',
    nodeArgs: ['--expose-gc', '--max-old-space-size=8192'],
    figures: [
      { key: 'bytesPerActivation', label: 'bytes per idle activation', unit: 'B', max: 2048 },
      { key: 'activationsPerSec', label: 'activations/s (in-process placement)', unit: '/s' },
    ],
  },
  {
    name: 'placement',
    title: '**Activations / placement** through a real cluster (client → gateway → 2 hosts, 256 in flight): embedded vs Consul',
    nodeArgs: [],
    figures: [
      { key: 'embeddedActivationsPerSec', label: 'new activations/s, embedded placement', unit: '/s', min: 20_000 },
      { key: 'consulActivationsPerSec', label: 'new activations/s, Consul placement', unit: '/s', min: 2_000 },
      { key: 'embeddedCallsPerSec', label: 'steady-state calls/s, embedded', unit: '/s' },
      { key: 'consulCallsPerSec', label: 'steady-state calls/s, Consul', unit: '/s' },
      { key: 'steadyStateRatio', label: 'steady-state calls, Consul ÷ embedded', unit: '×', min: 0.95 },
    ],
  },
  {
    name: 'state',
    title: '**Persistent state**: durable `writeState()` per acknowledged call (client → gateway → 1 host, 64 counters, 1 call in flight each): sqlite vs PostgreSQL',
    nodeArgs: [],
    figures: [
      { key: 'sqliteWritesPerSec', label: 'state writes/s, sqlite (WAL, synchronous=FULL)', unit: '/s' },
      { key: 'postgresWritesPerSec', label: 'state writes/s, PostgreSQL (local server, 10 connections)', unit: '/s' },
    ],
  },
];
