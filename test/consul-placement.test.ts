// Consul placement against a real Consul agent: positions are KV locks held by the hosts'
// sessions, and no identity is ever active twice, also when a host is killed or cut off.
import test from 'ava';
import { fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostChildConfig } from '../src/runtime/host/main.ts';
import { CHILD_CONFIG_ENV } from '../src/runtime/process/child.ts';
import { FIXTURE_PLUGINS, PLAYER_PLUGIN, waitFor } from './helpers/cluster.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { startConsul } from './helpers/consul.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { IVerified, intervals, overlaps } from './fixtures/plugins/verifier.ts';

const VERIFIER = join(FIXTURE_PLUGINS, 'verifier.ts');
const TTL_MS = 2000;
const LOCK_DELAY_MS = 1000;

function consulPlacement(address: string): string {
  return ['placement:', '  provider: consul', `  leaseTtl: ${TTL_MS}ms`, '  consul:', `    address: "${address}"`, `    lockDelay: ${LOCK_DELAY_MS}ms`].join('\n');
}

async function journal(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'koala-verify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'journal.txt');
}

const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');

async function kv(url: string, key: string): Promise<{ Session?: string; Value: string }[] | undefined> {
  const res = await fetch(`${url}/v1/kv/${key}`);
  return res.status === 404 ? undefined : ((await res.json()) as { Session?: string; Value: string }[]);
}

test.serial('calls place actors as KV locks held by the hosts’ sessions; a graceful stop gives them back', async (t) => {
  const consul = await startConsul(t);
  const cluster = await startCluster(t, { plugins: [PLAYER_PLUGIN, VERIFIER], replicas: 2, cluster: 'kc1', extra: consulPlacement(consul.address) });
  const player = cluster.client.getProxy((await import('../plugins/player/index.ts')).IPlayer, 1);
  t.is(await player.echo('hi'), 'hi');
  t.deepEqual([await player.count(), await player.count(), await player.count()], [1, 2, 3]);

  const [entry] = (await kv(consul.url, 'koala/kc1/actors/IPlayer/1')) ?? [];
  t.truthy(entry?.Session, 'the position key is locked by a session');
  const value = JSON.parse(Buffer.from(entry!.Value, 'base64').toString()) as { host: string; address: string };
  const all = await cluster.client.members();
  t.deepEqual(all.filter((m) => m.role === 'gateway').length, 1, 'the gateway is a member too');
  const members = all.filter((m) => m.role === 'host');
  t.deepEqual(members.map((m) => m.id).sort(), cluster.state.processes.filter((p) => p.role === 'host').map((p) => p.details!.id!).sort());
  t.true(members.some((m) => m.id === value.host && m.address === value.address));
  for (const m of members) t.deepEqual(m.interfaces.map((i) => i.name).sort(), ['IPlayer', 'IVerified']);

  // Many identities spread over both hosts; each stays where it was placed.
  const where = new Map<number, number>();
  for (let i = 0; i < 30; i++) where.set(i, (await cluster.client.getProxy(IVerified, i).touch()).pid);
  t.is(new Set(where.values()).size, 2);
  for (const [i, pid] of where) t.is((await cluster.client.getProxy(IVerified, i).touch()).pid, pid);
  t.is((await cluster.client.actors('IVerified')).length, 30);

  await cluster.stop();
  t.is(await kv(consul.url, 'koala/kc1/actors/?recurse'), undefined, 'every position was released');
  const services = (await (await fetch(`${consul.url}/v1/health/service/koala-kc1`)).json()) as unknown[];
  t.deepEqual(services, [], 'hosts deregistered');
  const sessions = (await (await fetch(`${consul.url}/v1/session/list`)).json()) as unknown[];
  t.deepEqual(sessions, [], 'sessions destroyed');
});

test.serial('a host killed with SIGKILL: its actors come back on another host at the next call', async (t) => {
  const file = await journal(t);
  const consul = await startConsul(t);
  process.env.KOALA_TEST_JOURNAL = file;
  const cluster = await startCluster(t, { plugins: [VERIFIER], replicas: 2, cluster: 'kc2', extra: consulPlacement(consul.address) });
  delete process.env.KOALA_TEST_JOURNAL;
  const before = new Map<number, number>();
  for (let i = 0; i < 20; i++) before.set(i, (await cluster.client.getProxy(IVerified, i).touch()).pid);
  const victim = [...before.values()][0]!;
  process.kill(victim, 'SIGKILL');
  // A call sent in the instant the host dies fails with CONNECTION_LOST (it may have run); calls
  // made once its connections are seen closed go to a new owner.
  await new Promise((r) => setTimeout(r, 300));
  for (const [i, pid] of before) {
    const after = await cluster.client.getProxy(IVerified, i).touch();
    if (pid === victim) {
      t.not(after.pid, victim);
      t.is(after.n, 1, `${i}: a fresh activation`);
    } else t.is(after.pid, pid, `${i}: untouched`);
  }
  t.deepEqual(overlaps(intervals(read(file))), []);
});

test.serial('a host cut off from Consul stops its actors before its session can expire; nothing is active twice', async (t) => {
  const file = await journal(t);
  const consul = await startConsul(t);
  const proxy = await startTcpProxy(t, consul.address);
  process.env.KOALA_TEST_JOURNAL = file;
  const cluster = await startCluster(t, { plugins: [VERIFIER], replicas: 1, cluster: 'kc3', extra: consulPlacement(consul.address) });

  // A second host that reaches Consul only through the proxy.
  const config: HostChildConfig = {
    name: 'cutoff',
    cluster: cluster.state.cluster,
    secret: cluster.state.secret,
    logLevel: 'warn',
    root: cluster.dir,
    group: 'cutoff',
    plugins: [VERIFIER],
    placement: { provider: 'consul', address: proxy.address, strategy: 'load-aware', leaseTtlMs: TTL_MS, lockDelayMs: LOCK_DELAY_MS },
    listenHost: '127.0.0.1',
    callTimeoutMs: 10_000,
    idleTimeoutMs: 3_600_000,
    storage: { provider: 'memory', file: '', interfaces: {} },
  };
  const entry = fileURLToPath(new URL('../src/runtime/host/main.ts', import.meta.url));
  const child = fork(entry, [], { env: { ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config) }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  delete process.env.KOALA_TEST_JOURNAL;
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type: string; message?: string }) => (m.type === 'ready' ? resolve() : reject(new Error(m.message))));
    child.once('exit', (code) => reject(new Error(`cut-off host exited (${code}): ${output}`)));
  });
  await waitFor('both hosts to be members', async () => (await cluster.client.members()).filter((m) => m.role === 'host').length === 2);

  // Place enough actors that some land on the cut-off host.
  const owner = new Map<number, number>();
  for (let i = 0; i < 30; i++) owner.set(i, (await cluster.client.getProxy(IVerified, i).touch()).pid);
  const stranded = [...owner].filter(([, pid]) => pid === child.pid).map(([i]) => i);
  t.true(stranded.length > 0, 'some actors live on the cut-off host');

  const cutAt = Date.now();
  proxy.cut();
  // Keep calling the stranded actors: they fail while nobody may own them, then come back on the
  // other host once the session is gone and the lock-delay has passed.
  const moved = new Set<number>();
  await waitFor(
    'the stranded actors to move',
    async () => {
      for (const i of stranded) {
        if (moved.has(i)) continue;
        const r = await cluster.client.getProxy(IVerified, i, { timeoutMs: 2000 }).touch().catch(() => undefined);
        if (r && r.pid !== child.pid) moved.add(i);
      }
      return moved.size === stranded.length;
    },
    20_000,
  );
  const journalText = read(file);
  const all = intervals(journalText);
  const cutOff = all.filter((iv) => iv.pid === child.pid && stranded.includes(Number(iv.identity.split('/')[1])));
  t.is(cutOff.length, stranded.length);
  for (const iv of cutOff) {
    t.true(journalText.includes(`end ${iv.identity} ${child.pid} `), `${iv.identity} was deactivated by the fenced host`);
    // Fenced before the session could expire: TTL after the last check pass, which was before the cut.
    t.true(iv.end - cutAt < TTL_MS, `${iv.identity} ended ${iv.end - cutAt} ms after the cut (TTL ${TTL_MS} ms)`);
  }
  t.deepEqual(overlaps(all), [], 'no identity was ever active on two hosts at once');
});

test.serial('a 3-server Consul cluster loses its leader while calls run: the cluster keeps serving, nothing is active twice', async (t) => {
  const { startConsulCluster } = await import('./helpers/consul.ts');
  const consul = await startConsulCluster(t, 3);
  const file = await journal(t);
  process.env.KOALA_TEST_JOURNAL = file;
  const addresses = consul.agents.map((a) => a.address).join(',');
  const cluster = await startCluster(t, { plugins: [VERIFIER], replicas: 2, cluster: 'kc4', extra: consulPlacement(addresses) });
  delete process.env.KOALA_TEST_JOURNAL;

  const ids = Array.from({ length: 10 }, (_, i) => i);
  for (const i of ids) await cluster.client.getProxy(IVerified, i).touch();
  let running = true;
  const outcomes: { at: number; ok: boolean }[] = [];
  const load = (async () => {
    while (running) {
      for (const i of ids) {
        const ok = await cluster.client.getProxy(IVerified, i, { timeoutMs: 3000 }).touch().then(() => true, () => false);
        outcomes.push({ at: Date.now(), ok });
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 500));
  const leader = await consul.leader();
  const killedAt = Date.now();
  await leader.kill();
  const next = await consul.leader();
  t.not(next.name, leader.name);
  // Give the hosts time to notice, move to another agent, fence and register again if they must.
  await waitFor('calls to succeed again after the election', () => outcomes.slice(-ids.length).every((o) => o.ok && o.at > killedAt), 30_000);
  running = false;
  await load;
  // After the election every actor answers again. A host whose own agent was the one killed may
  // fence a little later than the others (its renewals wait for the new leader): its actors
  // answer LEASE_LOST, "retry shortly", until it has a lease again. Any other error fails the test.
  for (const i of ids) {
    await waitFor(
      `IVerified/${i} to answer`,
      () =>
        cluster.client
          .getProxy(IVerified, i, { timeoutMs: 10_000 })
          .touch()
          .then(
            (v) => Boolean(v),
            (err: { code?: string }) => {
              if (err.code !== 'LEASE_LOST') throw err;
              return false;
            },
          ),
      20_000,
    );
  }
  t.deepEqual(overlaps(intervals(read(file))), [], 'no identity was active twice');
});
