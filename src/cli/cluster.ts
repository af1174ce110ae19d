// How client commands find the cluster to talk to: explicit flags/env first, else the running
// cluster recorded under `.koala/` in this directory or any parent.
import { findRunningCluster, type RunState } from '../runtime/supervisor/run-state.ts';
import { CliError } from './base-command.ts';

export interface ClusterTarget {
  url: string;
  cluster: string;
  secret: string;
  state: RunState | undefined;
}

export async function findCluster(cwd: string, flags: { gateway?: string | undefined } = {}): Promise<ClusterTarget> {
  const url = flags.gateway ?? process.env.KOALA_GATEWAY_URL;
  if (url) {
    const secret = process.env.KOALA_SECRET;
    if (!secret) throw new CliError(`to reach ${url} set KOALA_SECRET to the cluster secret (and KOALA_CLUSTER to its name)`, { exitCode: 2 });
    return { url, cluster: process.env.KOALA_CLUSTER ?? 'koala', secret, state: undefined };
  }
  const state = findRunningCluster(cwd);
  if (state === undefined) {
    throw new CliError(`no running Koala cluster found from ${cwd} upwards`, { hint: 'start one with `koala up --detach`, or pass --gateway URL with KOALA_SECRET set' });
  }
  if (state.gateway) return { url: state.gateway, cluster: state.cluster, secret: state.secret, state };
  if (state.consul) return { url: await gatewayFromConsul(state, state.consul), cluster: state.cluster, secret: state.secret, state };
  throw new CliError(`the cluster in ${state.root} runs no gateway here and has no Consul to find one through`, { hint: 'add "gateway" to the manifest\'s roles, or pass --gateway URL' });
}

/** A healthy gateway of the cluster, as registered in Consul (for machines that run only hosts). */
async function gatewayFromConsul(state: RunState, consul: string): Promise<string> {
  const [{ ConsulPlacement }, { readConsulTls }] = await Promise.all([import('../runtime/placement/consul/consul-placement.ts'), import('../runtime/placement/consul/tls-files.ts')]);
  const token = process.env.KOALA_CONSUL_TOKEN;
  const cluster = state.cluster;
  const placement = new ConsulPlacement({ address: consul, ...(token ? { token } : {}), ...(state.consulTls ? { tls: readConsulTls(state.consulTls) } : {}), cluster, leaseTtlMs: 10_000, lockDelayMs: 0 });
  try {
    const gateway = (await placement.members()).find((m) => m.role === 'gateway' && m.health === 'passing');
    if (!gateway) throw new CliError(`no healthy gateway of cluster "${cluster}" is registered in Consul at ${consul}`, { hint: 'start `koala up` on a machine whose manifest has "gateway" in roles' });
    return gateway.address;
  } finally {
    await placement.close();
  }
}
