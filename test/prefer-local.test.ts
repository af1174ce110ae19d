// The `prefer-local` strategy across real processes: an actor first called by another actor is
// activated on the caller's host, while first calls from the gateway are spread (load-aware);
// with embedded placement (a real cluster) and with Consul placement (a real agent).
import test from 'ava';
import { join } from 'node:path';
import { ConsulPlacement } from '../src/runtime/placement/consul/consul-placement.ts';
import type { HostInfo } from '../src/runtime/placement/protocol.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { FIXTURE_PLUGINS } from './helpers/cluster.ts';
import { startConsul } from './helpers/consul.ts';
import { IChain } from './fixtures/plugins/semantics.ts';

// Sixteen first calls from the gateway: with two equal hosts, all on one host has odds of 2^-15.
const STARTS = Array.from({ length: 16 }, (_, i) => `start-${i}`);

test('embedded: the actors an actor calls first live on its host; the gateway’s first calls spread over both hosts', async (t) => {
  const cluster = await startCluster(t, { plugins: [join(FIXTURE_PLUGINS, 'semantics.ts')], replicas: 2, extra: 'placement:\n  strategy: prefer-local' });
  for (const k of STARTS) {
    const visited = await cluster.client.getProxy(IChain, k).visit([`IChain/${k}-next`, `IChain/${k}-last`]);
    t.deepEqual(visited, [`IChain/${k}`, `IChain/${k}-next`, `IChain/${k}-last`]);
  }
  const hostOf = new Map((await cluster.client.actors('IChain')).map((a) => [a.key, a.host]));
  t.is(new Set(STARTS.map((k) => hostOf.get(k))).size, 2, 'the gateway’s first calls went to both hosts');
  for (const k of STARTS) {
    t.is(hostOf.get(`${k}-next`), hostOf.get(k), `${k}-next was placed on the host of ${k}, its caller`);
    t.is(hostOf.get(`${k}-last`), hostOf.get(k), `${k}-last was placed on the host of ${k}-next, its caller`);
  }
});

function hostInfo(id: string, port: number, iface: string): HostInfo {
  return {
    id,
    group: 'host',
    address: `127.0.0.1:${port}`,
    pid: process.pid,
    startedAt: Date.now(),
    load: 0,
    interfaces: [{ name: iface, fingerprint: 'f', protocol: '{}', stateless: false }],
    role: 'host',
    health: 'passing',
  };
}

test('consul: locate suggests the calling host when it serves the interface, else a load-aware choice', async (t) => {
  const consul = await startConsul(t);
  const open = () => new ConsulPlacement({ address: consul.address, cluster: 'pl1', strategy: 'prefer-local', leaseTtlMs: 10_000, lockDelayMs: 1000 });
  const [a, b, other, caller] = [open(), open(), open(), open()];
  t.teardown(() => Promise.all([a, b, other, caller].map((p) => p.close())));
  await a.register(hostInfo('host-a', 1001, 'ILocal'));
  await b.register(hostInfo('host-b', 1002, 'ILocal'));
  await other.register(hostInfo('host-c', 1003, 'IOther'));
  for (const k of STARTS) {
    t.is((await caller.locate('ILocal', k, 'host-a')).host, 'host-a');
    t.is((await caller.locate('ILocal', k, 'host-b')).host, 'host-b');
  }
  const fromGateway = new Set(await Promise.all(STARTS.map(async (k) => (await caller.locate('ILocal', `g-${k}`, '')).host)));
  t.deepEqual([...fromGateway].sort(), ['host-a', 'host-b'], 'from a gateway: both hosts');
  const fromOther = new Set(await Promise.all(STARTS.map(async (k) => (await caller.locate('ILocal', `o-${k}`, 'host-c')).host)));
  t.deepEqual([...fromOther].sort(), ['host-a', 'host-b'], 'from a host that does not serve ILocal: both hosts');
});
