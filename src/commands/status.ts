import { Flags } from '@oclif/core';
import { KoalaCommand } from '../cli/base-command.ts';
import type { HostInfo } from '../runtime/placement/protocol.ts';
import type { ProcessState } from '../runtime/supervisor/run-state.ts';

export interface StatusReport {
  cluster: string;
  root: string | null;
  gateway: string;
  /** The Consul agent(s), with Consul placement. */
  consul?: string;
  supervisorPid: number | null;
  startedAt: string | null;
  processes: (ProcessState & { alive: boolean })[];
  /** Cluster members: hosts, and with Consul placement also gateways (of every machine). */
  hosts: { id: string; role: string; group: string; address: string; pid: number; health: string; load: number; interfaces: string[] }[];
  /** Set when the gateway could not be asked for live membership. */
  error?: string;
}

export default class Status extends KoalaCommand {
  static override description = 'Show the running cluster: its processes, hosts and the interfaces each serves';
  static override enableJsonFlag = true;
  static override flags = {
    gateway: Flags.string({ description: 'gateway URL of a cluster not started from this project (needs KOALA_SECRET)' }),
  };

  async run(): Promise<StatusReport> {
    const { flags } = await this.parse(Status);
    const [{ findCluster }, { ClusterClient }, { isAlive }] = await Promise.all([
      import('../cli/cluster.ts'),
      import('../runtime/client/cluster-client.ts'),
      import('../runtime/supervisor/run-state.ts'),
    ]);
    const target = await findCluster(process.cwd(), flags);
    const report: StatusReport = {
      cluster: target.cluster,
      root: target.state?.root ?? null,
      gateway: target.url,
      ...(target.state?.consul ? { consul: target.state.consul } : {}),
      supervisorPid: target.state?.pid ?? null,
      startedAt: target.state?.startedAt ?? null,
      processes: (target.state?.processes ?? []).map((p) => ({ ...p, alive: isAlive(p.pid) })),
      hosts: [],
    };
    try {
      const client = await ClusterClient.connect({ url: target.url, cluster: target.cluster, secret: target.secret, timeoutMs: 5000, name: 'koala-status' });
      try {
        report.hosts = (await client.members())
          .map((h: HostInfo) => ({ id: h.id, role: h.role, group: h.group, address: h.address, pid: h.pid, health: h.health, load: h.load, interfaces: h.interfaces.map((i) => i.name).sort() }))
          .sort((a, b) => a.id.localeCompare(b.id));
      } finally {
        client.close();
      }
    } catch (err) {
      report.error = `gateway ${target.url} did not answer: ${(err as Error).message}`;
      process.exitCode = 1;
    }
    if (!this.jsonEnabled()) this.#print(report);
    return report;
  }

  #print(r: StatusReport): void {
    this.log(`cluster  ${r.cluster}${r.root ? `  (${r.root})` : ''}`);
    this.log(`gateway  ${r.gateway}`);
    if (r.consul) this.log(`consul   ${r.consul}`);
    if (r.startedAt) this.log(`started  ${r.startedAt}  supervisor pid ${r.supervisorPid}`);
    if (r.processes.length) {
      this.log('');
      this.log(table(['PROCESS', 'ROLE', 'PID', 'STATE', 'ADDRESS'], r.processes.map((p) => [p.name, p.role, String(p.pid), p.alive ? 'running' : 'dead', p.url])));
    }
    this.log('');
    if (r.error) this.logToStderr(`error ${r.error}`);
    else if (r.hosts.length === 0) this.log('no hosts are registered');
    else this.log(table(['MEMBER', 'ROLE', 'GROUP', 'PID', 'HEALTH', 'ACTORS', 'INTERFACES'], r.hosts.map((h) => [h.id, h.role, h.group, String(h.pid), h.health, h.role === 'host' ? String(h.load) : '-', h.interfaces.join(', ')])));
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
