// Entry of an actor host child process.
import type { StorageSettings } from '../config/manifest.ts';
import type { PlacementTarget } from '../placement/connect.ts';
import { connectPlacement } from '../placement/connect.ts';
import { runChild, type ChildBase } from '../process/child.ts';
import { Host } from './host.ts';
import { loadPlugins } from './plugins.ts';

export interface HostChildConfig extends ChildBase {
  group: string;
  plugins: string[];
  placement: PlacementTarget;
  listenHost: string;
  callTimeoutMs: number;
  idleTimeoutMs: number;
  storage: StorageSettings;
}

runChild<HostChildConfig>(async ({ config, log, ready, onStop }) => {
  const plugins = await loadPlugins(config.root, config.plugins);
  const placement = await connectPlacement(config.placement, { cluster: config.cluster, secret: config.secret, node: config.name, role: 'host' }, config.root);
  const host = new Host({
    name: config.name,
    group: config.group,
    cluster: config.cluster,
    secret: config.secret,
    listenHost: config.listenHost,
    plugins,
    placement,
    callTimeoutMs: config.callTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    storage: config.storage,
    root: config.root,
    log,
  });
  onStop(() => host.stop());
  await host.start();
  const interfaces = plugins.map((p) => p.interface.name).join(', ');
  log.info(`host ${host.id} serving ${interfaces || 'no interfaces'} on ${host.url}`);
  ready(host.url, { id: host.id, interfaces });
});
