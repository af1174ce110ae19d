// Chooses the placement implementation a host or gateway talks to.
import type { LocalIdentity } from '../wire/handshake.ts';
import { ConsulPlacement } from './consul/consul-placement.ts';
import { readConsulTls, type ConsulTlsFiles } from './consul/tls-files.ts';
import { EmbeddedPlacementClient } from './embedded/client.ts';
import type { Placement } from './protocol.ts';
import type { Strategy } from './strategies.ts';
import { resolveStrategy } from './strategy-plugin.ts';

export type PlacementTarget =
  | { provider: 'embedded'; url: string }
  /** `strategy`: the manifest's `placement.strategy` (a built-in name or a module path); `tls`: absolute file names. */
  | { provider: 'consul'; address: string; token?: string; tls?: ConsulTlsFiles; strategy: string; leaseTtlMs: number; lockDelayMs: number };

/**
 * Placement for a process that places actors (a host or a gateway). With Consul each caller
 * chooses hosts itself, so the strategy (a module, perhaps) is loaded here, before anything starts.
 */
export async function connectPlacement(target: PlacementTarget, identity: LocalIdentity, root: string): Promise<Placement> {
  return openPlacement(target, identity, target.provider === 'consul' ? await resolveStrategy(root, target.strategy) : undefined);
}

/** Placement without a strategy (Consul's `locate` then refuses): for the supervisor's housekeeping. */
export function openPlacement(target: PlacementTarget, identity: LocalIdentity, strategy?: Strategy): Placement {
  if (target.provider === 'consul') {
    const { address, token, tls, leaseTtlMs, lockDelayMs } = target;
    return new ConsulPlacement({ address, ...(token ? { token } : {}), ...(tls ? { tls: readConsulTls(tls) } : {}), cluster: identity.cluster, ...(strategy ? { strategy } : {}), leaseTtlMs, lockDelayMs });
  }
  return new EmbeddedPlacementClient(target.url, identity);
}
