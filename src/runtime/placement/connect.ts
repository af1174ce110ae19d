// Chooses the placement implementation a host or gateway talks to.
import type { LocalIdentity } from '../wire/handshake.ts';
import { EmbeddedPlacementClient } from './embedded/client.ts';
import type { Placement } from './protocol.ts';

export type PlacementTarget = { provider: 'embedded'; url: string };

export function connectPlacement(target: PlacementTarget, identity: LocalIdentity): Placement {
  return new EmbeddedPlacementClient(target.url, identity);
}
