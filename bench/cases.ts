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
}

export const CASES: BenchCase[] = [
  {
    name: 'in-host',
    title: 'In-host actor-to-actor calls (64 in flight, same host, no network)',
    nodeArgs: [],
    figures: [{ key: 'callsPerSec', label: 'calls/s', unit: '/s', min: 2_000_000 }],
  },
  {
    name: 'memory',
    title: 'Idle activations of an empty actor (1 M, in-process placement included)',
    nodeArgs: ['--expose-gc', '--max-old-space-size=8192'],
    figures: [
      { key: 'bytesPerActivation', label: 'bytes per idle activation', unit: 'B', max: 2048 },
      { key: 'activationsPerSec', label: 'activations/s (in-process placement)', unit: '/s' },
    ],
  },
  {
    name: 'placement',
    title: 'Placement through a real cluster (client → gateway → 2 hosts, 256 in flight): embedded vs Consul',
    nodeArgs: [],
    figures: [
      { key: 'embeddedActivationsPerSec', label: 'new activations/s, embedded placement', unit: '/s', min: 20_000 },
      { key: 'consulActivationsPerSec', label: 'new activations/s, Consul placement', unit: '/s', min: 2_000 },
      { key: 'embeddedCallsPerSec', label: 'steady-state calls/s, embedded', unit: '/s' },
      { key: 'consulCallsPerSec', label: 'steady-state calls/s, Consul', unit: '/s' },
      { key: 'steadyStateRatio', label: 'steady-state calls, Consul ÷ embedded', unit: '×', min: 0.95 },
    ],
  },
];
