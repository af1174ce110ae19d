// Custom placement strategies: a module named by `placement.strategy` that default-exports
// `defineStrategy((hosts, call) => host)`. The process that chooses hosts loads it: the embedded
// placement process, or, with Consul placement, every host and gateway (each caller chooses).
import { stat } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { KoalaError } from '../errors/errors.ts';
import { importPlugin, PluginError } from '../host/plugins.ts';
import { STRATEGIES, type Strategy } from './strategies.ts';
import type { StrategyName } from '../config/manifest.ts';

/** What a strategy sees of a host that can take the activation: it is live and serves the interface. */
export interface StrategyHost {
  readonly id: string;
  /** The manifest's host group (`hosts[].name`). */
  readonly group: string;
  readonly address: string;
  /** Its activations (embedded: the larger of its last report and the positions granted to it). */
  readonly load: number;
  /** When placement first saw the host (ms since the epoch); with Consul, when the host process started. */
  readonly joinedAt: number;
}

/** The activation to place. */
export interface StrategyCall {
  readonly iface: string;
  readonly key: string;
  /** The id of the host whose actor made the call, or '' (a gateway, the CLI, a client). */
  readonly from: string;
  /** Placement's clock (ms since the epoch). */
  readonly now: number;
}

/** Picks one of `hosts` (never empty), as the host or its id. Synchronous: placement waits for no I/O. */
export type ChooseHost = (hosts: readonly StrategyHost[], call: StrategyCall) => StrategyHost | string;

const BRAND = 'koala.strategy';

export interface PlacementStrategy {
  readonly kind: typeof BRAND;
  readonly choose: ChooseHost;
}

/** `export default defineStrategy((hosts, call) => hosts[0])`, named by `placement.strategy`. */
export function defineStrategy(choose: ChooseHost): PlacementStrategy {
  return Object.freeze({ kind: BRAND, choose });
}

export function isPlacementStrategy(value: unknown): value is PlacementStrategy {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === BRAND && typeof (value as { choose?: unknown }).choose === 'function';
}

/**
 * A custom strategy as placement calls it. What it gets wrong (it throws, returns a Promise or a
 * host it was not given) fails that one placement with an INTERNAL error naming the module.
 */
export function adaptStrategy(custom: PlacementStrategy, shown: string): Strategy {
  return (candidates, iface, key, now, from) => {
    const hosts = candidates.map((c): StrategyHost => ({ id: c.info.id, group: c.info.group, address: c.info.address, load: c.info.load, joinedAt: c.since }));
    let picked: unknown;
    try {
      picked = custom.choose(hosts, { iface, key, from, now });
    } catch (err) {
      throw new KoalaError('INTERNAL', `placement strategy ${shown} threw while placing ${iface}/${key}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    const id = typeof picked === 'string' ? picked : typeof picked === 'object' && picked !== null ? (picked as { id?: unknown }).id : undefined;
    const chosen = candidates.find((c) => c.info.id === id);
    if (chosen !== undefined) return chosen;
    const what = picked instanceof Promise ? 'a Promise (a strategy must answer synchronously)' : typeof id === 'string' ? `"${id}"` : String(picked);
    throw new KoalaError('INTERNAL', `placement strategy ${shown} returned ${what} for ${iface}/${key}, not one of the hosts it was given (${candidates.map((c) => c.info.id).join(', ')})`);
  };
}

/** Whether a `placement.strategy` setting names a built-in strategy (else it is a module path). */
export function isBuiltInStrategy(setting: string): setting is StrategyName {
  return Object.hasOwn(STRATEGIES, setting);
}

/** The strategy a `placement.strategy` setting names: a built-in, or a module relative to `root`. */
export async function resolveStrategy(root: string, setting: string): Promise<Strategy> {
  if (isBuiltInStrategy(setting)) return STRATEGIES[setting];
  const file = resolve(root, setting);
  const shown = relative(root, file) || setting;
  if (!(await stat(file).catch(() => undefined))?.isFile()) throw new PluginError(`placement.strategy ${setting} not found (looked for ${file}); fix placement.strategy in the manifest`);
  const exported = await importPlugin(root, file, `placement.strategy ${shown}`);
  if (!isPlacementStrategy(exported)) throw new PluginError(`placement.strategy ${shown} must \`export default defineStrategy((hosts, call) => host)\``);
  return adaptStrategy(exported, shown);
}
