// Claims batched into multi-operation KV transactions, against a real Consul agent: many claims of
// one turn cost few transactions, every lock is still held by the claiming host's own session, and
// a batch that meets keys held by another host rolls back, redirects those and grants the rest.
import test, { type ExecutionContext } from 'ava';
import { KoalaError } from '../src/runtime/errors/errors.ts';
import { TxnBatcher } from '../src/runtime/placement/consul/txn-batcher.ts';
import type { TxnOp, TxnResult } from '../src/runtime/placement/consul/consul-api.ts';
import { ConsulPlacement } from '../src/runtime/placement/consul/consul-placement.ts';
import { STRATEGIES } from '../src/runtime/placement/strategies.ts';
import type { HostInfo } from '../src/runtime/placement/protocol.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { FIXTURE_PLUGINS } from './helpers/cluster.ts';
import { consulHostInfo, startConsul } from './helpers/consul.ts';
import { IVerified } from './fixtures/plugins/verifier.ts';

const VERIFIER = `${FIXTURE_PLUGINS}/verifier.ts`;

interface RawKv {
  Key: string;
  Value: string | null;
  Session?: string;
  ModifyIndex: number;
}

async function kvList(url: string, prefix: string): Promise<RawKv[]> {
  const res = await fetch(`${url}/v1/kv/${prefix}?recurse=true`);
  return res.status === 404 ? [] : ((await res.json()) as RawKv[]);
}

const decode = (value: string | null) => JSON.parse(Buffer.from(value ?? '', 'base64').toString()) as { host: string; address: string };

/** The session a host published in its record. */
async function sessionOf(url: string, cluster: string, hostId: string): Promise<string> {
  const [record] = await kvList(url, `koala/${cluster}/hosts/${hostId}`);
  return (JSON.parse(Buffer.from(record?.Value ?? '', 'base64').toString()) as { session: string }).session;
}

const hostInfo = (id: string, port: number): HostInfo => consulHostInfo(id, port, 'IBatch');

function placement(address: string, cluster: string): ConsulPlacement {
  return new ConsulPlacement({ address, cluster, strategy: STRATEGIES['load-aware'], leaseTtlMs: 10_000, lockDelayMs: 1000 });
}

/** A Consul agent and two hosts of `cluster` registered on it (host-a, host-b), each through its own placement. */
async function twoHosts(t: ExecutionContext, cluster: string) {
  const consul = await startConsul(t);
  const a = placement(consul.address, cluster);
  const b = placement(consul.address, cluster);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await a.register(hostInfo('host-a', 1001));
  await b.register(hostInfo('host-b', 1002));
  return { consul, a, b };
}

test.serial('claims of one turn share transactions; held keys roll a batch back, redirect, and the rest are granted', async (t) => {
  const { consul, a, b } = await twoHosts(t, 'cb1');
  const [sessionA, sessionB] = [await sessionOf(consul.url, 'cb1', 'host-a'), await sessionOf(consul.url, 'cb1', 'host-b')];

  // 500 claims in one turn: 8 transactions of at most 64 locks, each lock host A's own.
  const keys = Array.from({ length: 500 }, (_, i) => `k${i}`);
  const positions = await Promise.all(keys.map((k) => a.claim('IBatch', k, 'host-a')));
  t.true(positions.every((p) => p.host === 'host-a' && p.address === '127.0.0.1:1001' && p.epoch > 0));
  t.deepEqual(a.claimStats, { requests: 500, operations: 500, transactions: 8, rollbacks: 0 });
  const locked = await kvList(consul.url, 'koala/cb1/actors/IBatch/');
  t.is(locked.length, 500);
  t.true(locked.every((e) => e.Session === sessionA && decode(e.Value).host === 'host-a'));
  const epochs = new Map(locked.map((e) => [e.Key.slice(e.Key.lastIndexOf('/') + 1), e.ModifyIndex]));
  t.true(keys.every((k, i) => epochs.get(k) === positions[i]!.epoch), 'each claim’s epoch is its key’s ModifyIndex');
  t.is(new Set(epochs.values()).size, 8, 'one Raft index per transaction');

  // Host B holds every fourth key of the next 40; host A then claims all 40 at once.
  const mixed = Array.from({ length: 40 }, (_, i) => `m${i}`);
  const held = mixed.filter((_, i) => i % 4 === 1);
  const heldBy = new Map(await Promise.all(held.map(async (k) => [k, await b.claim('IBatch', k, 'host-b')] as const)));
  const before = a.claimStats;
  const results = await Promise.all(mixed.map((k) => a.claim('IBatch', k, 'host-a')));
  const after = a.claimStats;
  for (const [i, k] of mixed.entries()) {
    const owner = heldBy.get(k);
    if (owner) t.deepEqual(results[i], owner, `${k} redirects to host B at B’s epoch`);
    else t.is(results[i]!.host, 'host-a', `${k} is granted to host A`);
  }
  const rounds = after.transactions - before.transactions;
  t.log(`40 claims with ${held.length} held keys: ${rounds} transactions, ${after.rollbacks - before.rollbacks} rollbacks`);
  t.true(after.rollbacks - before.rollbacks >= 1, 'the batch was rolled back');
  t.true(rounds >= 2 && rounds <= held.length + 1, 'each rollback takes out at least one lock; the rest are sent again');
  t.is(after.requests - before.requests, 40, 'no claim retried: each held key redirected at once');
  for (const e of await kvList(consul.url, 'koala/cb1/actors/IBatch/m')) {
    const k = e.Key.slice(e.Key.lastIndexOf('/') + 1);
    t.is(e.Session, heldBy.has(k) ? sessionB : sessionA, `${k} is locked by its owner’s session`);
  }

  // A connection error fails every claim of the batch with the one error a lone claim gets.
  await consul.stop();
  const failed = a.claimStats.transactions;
  const errors = await Promise.all(Array.from({ length: 10 }, (_, i) => a.claim('IBatch', `gone${i}`, 'host-a').then(() => undefined, (err: unknown) => err)));
  t.true(errors.every((e) => e instanceof KoalaError && e.code === 'UNREACHABLE'), String(errors[0]));
  t.is(new Set(errors).size, 1, 'the same error for every claim of the batch');
  t.is(a.claimStats.transactions - failed, 1);
});

test.serial('releases of one turn share transactions; a release whose epoch is stale leaves the key and the rest go', async (t) => {
  const consul = await startConsul(t);
  const a = placement(consul.address, 'rb1');
  t.teardown(() => a.close());
  await a.register(hostInfo('host-a', 1001));
  const keys = Array.from({ length: 200 }, (_, i) => `r${i}`);
  const positions = await Promise.all(keys.map((k) => a.claim('IBatch', k, 'host-a')));
  t.is((await kvList(consul.url, 'koala/rb1/actors/IBatch/')).length, 200);

  // 200 releases in one turn: 4 transactions of at most 64 deletes, every key gone.
  await Promise.all(keys.map((k, i) => a.release('IBatch', k, 'host-a', positions[i]!.epoch)));
  t.deepEqual(a.releaseStats, { requests: 200, operations: 200, transactions: 4, rollbacks: 0 });
  t.is((await kvList(consul.url, 'koala/rb1/actors/IBatch/')).length, 0);

  // Ten more; two are released with an epoch that is not theirs (a newer owner's key): the batch
  // rolls back, those two stay, the other eight go.
  const more = Array.from({ length: 10 }, (_, i) => `s${i}`);
  const morePositions = await Promise.all(more.map((k) => a.claim('IBatch', k, 'host-a')));
  const stale = new Set(['s3', 's7']);
  const before = a.releaseStats;
  await Promise.all(more.map((k, i) => a.release('IBatch', k, 'host-a', stale.has(k) ? morePositions[i]!.epoch - 1 : morePositions[i]!.epoch)));
  const after = a.releaseStats;
  const left = (await kvList(consul.url, 'koala/rb1/actors/IBatch/')).map((e) => e.Key.slice(e.Key.lastIndexOf('/') + 1)).sort();
  t.deepEqual(left, ['s3', 's7']);
  t.true(after.rollbacks - before.rollbacks >= 1, 'the batch was rolled back');
  t.true(after.transactions - before.transactions <= 3, `${after.transactions - before.transactions} transactions`);
});

test.serial('a session that ends without a graceful stop takes its actor keys and its host record with it; the lock-delay still guards the keys', async (t) => {
  const { consul, a, b } = await twoHosts(t, 'lk1');
  await Promise.all(['k1', 'k2', 'k3'].map((k) => a.claim('IBatch', k, 'host-a')));
  t.is((await kvList(consul.url, 'koala/lk1/actors/IBatch/')).length, 3);
  // What a crash, a fence or a failed check does to the session: Consul invalidates it.
  const ended = Date.now();
  await fetch(`${consul.url}/v1/session/destroy/${await sessionOf(consul.url, 'lk1', 'host-a')}`, { method: 'PUT' });
  t.deepEqual(await kvList(consul.url, 'koala/lk1/actors/IBatch/'), [], 'no leftover keys');
  t.deepEqual((await kvList(consul.url, 'koala/lk1/hosts/')).map((e) => e.Key), ['koala/lk1/hosts/host-b'], 'no leftover host record');
  // Host B may take an identity only once the lock-delay (1 s here) has passed.
  const taken = await b.claim('IBatch', 'k1', 'host-b');
  t.is(taken.host, 'host-b');
  t.true(Date.now() - ended >= 900, `host B got k1 ${Date.now() - ended} ms after host A's session ended, within the lock-delay`);
});

test.serial('a host that registers again under its id keeps a record: written at once, locked by its new session once the lock-delay has passed', async (t) => {
  const consul = await startConsul(t);
  const a = placement(consul.address, 'rr1');
  t.teardown(() => a.close());
  await a.register(hostInfo('host-a', 1001));
  const first = await sessionOf(consul.url, 'rr1', 'host-a');
  await a.register(hostInfo('host-a', 1001)); // what a host does after fencing: its old session ends
  const second = await sessionOf(consul.url, 'rr1', 'host-a');
  t.not(second, first);
  const [written] = await kvList(consul.url, 'koala/rr1/hosts/host-a');
  t.falsy(written?.Session, 'within the old lock’s lock-delay the record is written unlocked');
  await new Promise((r) => setTimeout(r, 1100)); // the lock-delay (1 s)
  t.true(await a.renew('host-a', 0));
  const [locked] = await kvList(consul.url, 'koala/rr1/hosts/host-a');
  t.is(locked?.Session, second, 'the next renewal locks it');
});

test.serial('500 new actors at once through a cluster: every one answers, locked by its host’s session, in fewer transactions than claims', async (t) => {
  const consul = await startConsul(t);
  const placementYaml = ['placement:', '  provider: consul', '  consul:', `    address: "${consul.address}"`, '    lockDelay: 1000ms'].join('\n');
  const cluster = await startCluster(t, { plugins: [VERIFIER], replicas: 2, cluster: 'cb2', extra: placementYaml });
  const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => cluster.client.getProxy(IVerified, i).touch()));
  t.true(answers.every((a) => a.n === 1), 'every actor answered, each from a fresh activation');

  const hosts = cluster.state.processes.filter((p) => p.role === 'host');
  const hostOfPid = new Map(hosts.map((p) => [p.pid, p.details!.id!]));
  const sessions = new Map(await Promise.all(hosts.map(async (p) => [p.details!.id!, await sessionOf(consul.url, 'cb2', p.details!.id!)] as const)));
  const locked = await kvList(consul.url, 'koala/cb2/actors/IVerified/');
  t.is(locked.length, 500);
  for (const e of locked) {
    const i = Number(e.Key.slice(e.Key.lastIndexOf('/') + 1));
    const host = decode(e.Value).host;
    t.is(hostOfPid.get(answers[i]!.pid), host, `IVerified/${i} is recorded on the host that answered`);
    t.is(e.Session, sessions.get(host), `IVerified/${i} is locked by that host’s session`);
  }
  // Every committed transaction has its own Raft index, shared by all the keys it wrote.
  const transactions = new Set(locked.map((e) => e.ModifyIndex)).size;
  t.log(`500 claims over ${new Set(answers.map((a) => a.pid)).size} hosts took ${transactions} transactions`);
  t.true(transactions < 500, `${transactions} transactions for 500 claims`);
});

test('a rollback that names only its first failing lock: that one fails, the rest go again until each is decided', async (t) => {
  // Consul names every failing operation today; the batcher must not rely on it. This stand-in
  // answers like a Consul that names only the first, refusing keys that start with `x`.
  const sent: string[][] = [];
  const send = async (ops: readonly TxnOp[]): Promise<TxnResult> => {
    sent.push(ops.map((op) => op.key));
    const first = ops.findIndex((op) => op.key.startsWith('x'));
    if (first >= 0) return { ok: false, entries: ops.map(() => undefined), errors: [{ opIndex: first, what: `${ops[first]!.key} is held` }] };
    return { ok: true, entries: ops.map((op, i) => ({ key: op.key, value: null, session: 's', modifyIndex: 100 + sent.length * 1000 + i })), errors: [] };
  };
  const batcher = new TxnBatcher(send);
  const keys = ['a', 'x1', 'b', 'x2', 'c'];
  const outcomes = await Promise.all(keys.map((key) => batcher.lock({ key, value: 'v', session: 's' })));
  t.deepEqual(sent, [keys, ['a', 'b', 'x2', 'c'], ['a', 'b', 'c']]);
  t.deepEqual(outcomes.map((o) => (o.ok ? o.entry.modifyIndex : o.what)), [3100, 'x1 is held', 3101, 'x2 is held', 3102]);
  t.deepEqual(batcher.stats, { requests: 5, operations: 12, transactions: 3, rollbacks: 2 });
});

test('locks and releases asked for in one turn go in separate transactions, each lock matched with its own entry', async (t) => {
  // Consul returns an entry for each lock and none for a delete: a mixed transaction would hand
  // the locks the wrong entries. This stand-in answers as Consul does.
  const sent: string[][] = [];
  const send = async (ops: readonly TxnOp[]): Promise<TxnResult> => {
    sent.push(ops.map((op) => `${op.verb} ${op.key}`));
    const entries = ops.filter((op) => op.verb === 'lock').map((op, i) => ({ key: op.key, value: null, session: 's', modifyIndex: 500 + i }));
    return { ok: true, entries, errors: [] };
  };
  const batcher = new TxnBatcher(send);
  const [l1, r1, l2, r2] = await Promise.all([
    batcher.lock({ key: 'a', value: 'v', session: 's' }),
    batcher.release('old1', 7),
    batcher.lock({ key: 'b', value: 'v', session: 's' }),
    batcher.release('old2', 8),
  ]);
  t.deepEqual(sent, [
    ['lock a', 'lock b'],
    ['delete-cas old1', 'delete-cas old2'],
  ]);
  t.deepEqual([l1, l2].map((o) => (o.ok ? `${o.entry.key}@${o.entry.modifyIndex}` : o.what)), ['a@500', 'b@501']);
  t.deepEqual([r1, r2], [true, true]);
});
