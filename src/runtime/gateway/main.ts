// Entry of the gateway child process.
import type { GatewaySettings } from '../config/manifest.ts';
import { connectPlacement, type PlacementTarget } from '../placement/connect.ts';
import { runChild, type ChildBase } from '../process/child.ts';
import { Gateway } from './gateway.ts';

export interface GatewayChildConfig extends ChildBase {
  placement: PlacementTarget;
  settings: GatewaySettings;
}

runChild<GatewayChildConfig>(async ({ config, log, ready, onStop }) => {
  const identity = { cluster: config.cluster, secret: config.secret, node: config.name, role: 'gateway' };
  const gateway = new Gateway({ identity, placement: await connectPlacement(config.placement, identity, config.root), settings: config.settings, root: config.root, log });
  onStop(() => gateway.stop());
  try {
    await gateway.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const { host, port } = config.settings;
    if (e.code === 'EADDRINUSE') throw new Error(`gateway port ${port} on ${host} is already in use; set gateway.port (or KOALA_GATEWAY_PORT) to a free port, or 0 for any`);
    throw err;
  }
  log.info(`gateway listening on ${gateway.url}`);
  ready(gateway.url);
});
