// Entry of the embedded placement child process.
import { runChild, type ChildBase } from '../../process/child.ts';
import { WireServer } from '../../wire/server.ts';
import { ServiceTable } from '../../wire/services.ts';
import { PlacementInterface } from '../protocol.ts';
import { resolveStrategy } from '../strategy-plugin.ts';
import { EmbeddedPlacementService } from './service.ts';

export interface PlacementChildConfig extends ChildBase {
  host: string;
  leaseTtlMs: number;
  /** The manifest's `placement.strategy`: a built-in name or a module path. */
  strategy: string;
  /** Set when the supervisor restarts placement: hosts and the gateway still dial the old address. */
  port?: number;
}

runChild<PlacementChildConfig>(async ({ config, log, ready, onStop }) => {
  const service = new EmbeddedPlacementService({ leaseTtlMs: config.leaseTtlMs, strategy: await resolveStrategy(config.root, config.strategy), log: log.info });
  const services = new ServiceTable().add(PlacementInterface, service);
  const server = await WireServer.listen({
    identity: { cluster: config.cluster, secret: config.secret, node: config.name, role: 'placement' },
    host: config.host,
    port: config.port ?? 0,
    onRequest: (env, peer) => services.dispatch(env, peer),
    log: log.warn,
  });
  const sweeper = setInterval(() => service.expire(), Math.max(100, Math.floor(config.leaseTtlMs / 10)));
  onStop(async () => {
    clearInterval(sweeper);
    await server.close();
  });
  log.info(`embedded placement listening on ${server.url} (lease ${config.leaseTtlMs} ms, strategy ${config.strategy})`);
  ready(server.url);
});
