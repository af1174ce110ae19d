// Placement strategies: which live host gets a new activation.
import { createHash } from 'node:crypto';
import type { StrategyName } from '../config/manifest.ts';
import type { HostInfo } from './protocol.ts';

export interface Candidate {
  info: HostInfo;
  /** When placement first saw the host: new hosts warm up before taking a full share. */
  since: number;
}

/**
 * Picks one of `candidates` (live hosts that serve `iface`; never empty) for a new activation of
 * `iface/key`. `from` is the id of the host whose actor made the call, or '' when the caller is a
 * gateway, a client or the CLI.
 */
export type Strategy = (candidates: readonly Candidate[], iface: string, key: string, now: number, from: string) => Candidate;

/** A host younger than this takes proportionally less new work, so a fresh host is not swamped. */
export const WARM_UP_MS = 5000;

/** Weighted random on reported load (Koala's rule: weight = max(10, maxLoad) × 1.1 − load), scaled by warm-up. */
const loadAware: Strategy = (candidates, _iface, _key, now) => {
  let maxLoad = 0;
  for (const c of candidates) maxLoad = Math.max(maxLoad, c.info.load);
  const ceiling = Math.max(10, maxLoad) * 1.1;
  // When every host is warming up (a cluster that just started) they are equal again.
  const allWarming = candidates.every((c) => now - c.since < WARM_UP_MS);
  const weights = candidates.map((c) => {
    const warm = allWarming ? 1 : Math.min(1, Math.max(0.1, (now - c.since) / WARM_UP_MS));
    return Math.max(0.01, ceiling - c.info.load) * warm;
  });
  let pick = Math.random() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < candidates.length; i++) {
    pick -= weights[i]!;
    if (pick <= 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
};

const random: Strategy = (candidates) => candidates[Math.floor(Math.random() * candidates.length)]!;

/** Rendezvous hashing: the same identity maps to the same host while the host set is stable. */
const hash: Strategy = (candidates, iface, key) => {
  let best = candidates[0]!;
  let bestScore = -1n;
  for (const c of candidates) {
    const score = createHash('sha1').update(`${iface}/${key}@${c.info.id}`).digest().readBigUInt64BE();
    if (score > bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
};

/**
 * The calling host, when it is one of the candidates: an actor's calls to the actors it creates
 * then stay in its process (Orleans' PreferLocalPlacement). Calls from outside the hosts (gateway,
 * CLI), or from a host that does not serve the interface, fall back to load-aware.
 */
const preferLocal: Strategy = (candidates, iface, key, now, from) => {
  if (from !== '') {
    for (const c of candidates) if (c.info.id === from) return c;
  }
  return loadAware(candidates, iface, key, now, from);
};

export const STRATEGIES: Record<StrategyName, Strategy> = {
  'load-aware': loadAware,
  random,
  hash,
  'prefer-local': preferLocal,
};
