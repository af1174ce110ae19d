// Chooses the placement implementation a host or gateway talks to.
import type { StrategyName } from '../config/manifest.ts';
import type { LocalIdentity } from '../wire/handshake.ts';
import { ConsulPlacement } from './consul/consul-placement.ts';
import { EmbeddedPlacementClient } from './embedded/client.ts';
import type { Placement } from './protocol.ts';

export type PlacementTarget =
  | { provider: 'embedded'; url: string }
  | { provider: 'consul'; address: string; token?: string; strategy: StrategyName; leaseTtlMs: number; lockDelayMs: number };

export function connectPlacement(target: PlacementTarget, identity: LocalIdentity): Placement {
  if (target.provider === 'consul') {
    const { address, token, strategy, leaseTtlMs, lockDelayMs } = target;
    return new ConsulPlacement({ address, ...(token ? { token } : {}), cluster: identity.cluster, strategy, leaseTtlMs, lockDelayMs });
  }
  return new EmbeddedPlacementClient(target.url, identity);
}
