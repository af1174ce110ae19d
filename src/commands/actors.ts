import { Flags } from '@oclif/core';
import { KoalaCommand } from '../cli/base-command.ts';
import type { ActorPlacement } from '../runtime/placement/protocol.ts';

export default class Actors extends KoalaCommand {
  static override description = 'List live actor placements: identity, host and since when';
  static override enableJsonFlag = true;
  static override flags = {
    interface: Flags.string({ char: 'i', description: 'only actors of this interface' }),
    gateway: Flags.string({ description: 'gateway URL of a cluster not started from this project (needs KOALA_SECRET)' }),
  };

  async run(): Promise<{ actors: (ActorPlacement & { identity: string; sinceIso: string })[] }> {
    const { flags } = await this.parse(Actors);
    const [{ findCluster }, { ClusterClient }] = await Promise.all([import('../cli/cluster.ts'), import('../runtime/client/cluster-client.ts')]);
    const target = await findCluster(process.cwd(), flags);
    const client = await ClusterClient.connect({ url: target.url, cluster: target.cluster, secret: target.secret, timeoutMs: 10_000, name: 'koala-actors' });
    try {
      const actors = (await client.actors(flags.interface ?? ''))
        .map((a) => ({ ...a, identity: `${a.iface}/${a.key}`, sinceIso: new Date(a.since).toISOString() }))
        .sort((a, b) => a.identity.localeCompare(b.identity, 'en', { numeric: true }));
      if (!this.jsonEnabled()) {
        if (actors.length === 0) this.log(flags.interface ? `no ${flags.interface} actors are active` : 'no actors are active');
        else {
          const width = Math.max(8, ...actors.map((a) => a.identity.length));
          const hostWidth = Math.max(4, ...actors.map((a) => a.host.length));
          this.log(`${'IDENTITY'.padEnd(width)}  ${'HOST'.padEnd(hostWidth)}  SINCE`);
          for (const a of actors) this.log(`${a.identity.padEnd(width)}  ${a.host.padEnd(hostWidth)}  ${a.sinceIso}`);
        }
      }
      return { actors };
    } finally {
      client.close();
    }
  }
}
