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

export function findCluster(cwd: string, flags: { gateway?: string | undefined } = {}): ClusterTarget {
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
  return { url: state.gateway, cluster: state.cluster, secret: state.secret, state };
}
