// Proves the Consul test harness against a real agent with the `consul` npm client: KV, sessions as
// locks (TTL, lock-delay), blocking queries, and a 3-server cluster surviving the loss of its leader.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import Consul from 'consul';
import { consulBinary, startConsul, startConsulCluster, type ConsulAgent } from './helpers/consul.ts';

/** What `kv.get` resolves to; the typings omit `Session`, which Consul sends for a held key. */
interface KvItem {
  Key: string;
  Value: string | null;
  LockIndex: number;
  ModifyIndex: number;
  Session?: string;
}

function client(t: ExecutionContext, agent: ConsulAgent): Consul {
  const [host, port] = agent.address.split(':');
  const consul = new Consul({ host: host!, port: Number(port) });
  t.teardown(() => consul.destroy()); // its keep-alive http.Agent
  return consul;
}

async function getItem(consul: Consul, key: string): Promise<KvItem | undefined> {
  return ((await consul.kv.get(key)) ?? undefined) as KvItem | undefined;
}

/**
 * `kv.set` with `acquire`/`release`, as a boolean. The client resolves a `false` answer to
 * `undefined` (papi passes a falsy result on as "no value"), so compare with `true`.
 */
async function lock(consul: Consul, opts: { key: string; value: string; acquire?: string; release?: string }): Promise<boolean> {
  return (await consul.kv.set(opts)) === true;
}

/**
 * A (blocking) read that also returns X-Consul-Index. The typings of kv.get know neither
 * `index`/`wait` nor `ctx`; `ctx` must be an EventEmitter (papi ignores anything else) with
 * `includeResponse: true`, which makes the call resolve to [response, item].
 */
async function getWithIndex(consul: Consul, key: string, block?: { index: string; wait: string }): Promise<{ item: KvItem | undefined; index: string }> {
  const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
  const opts = { key, ctx, ...block }; // a variable: no excess-property check
  const [res, item] = (await consul.kv.get(opts)) as unknown as [{ headers: IncomingHttpHeaders }, KvItem | undefined];
  const index = res.headers['x-consul-index'];
  if (typeof index !== 'string') throw new Error('no X-Consul-Index header');
  return { item, index };
}

test('a missing consul binary is one clear line', (t) => {
  const err = t.throws(() => consulBinary('/nonexistent/consul'));
  t.regex(err!.message, /^consul not found: run scripts\/ensure-consul\.sh/);
  t.false(err!.message.includes('\n'));
});

test('dev agent: KV put/get, and stop() leaves no process', async (t) => {
  const started = Date.now();
  const agent = await startConsul(t);
  t.log(`dev agent ready in ${Date.now() - started} ms at ${agent.address} (pid ${agent.pid})`);
  const consul = client(t, agent);

  t.true(await consul.kv.set('koala/harness/a', 'hello'));
  const item = await getItem(consul, 'koala/harness/a');
  t.is(item?.Value, 'hello');
  const missing: unknown = await consul.kv.get('koala/harness/missing');
  t.is(missing, undefined); // a 404 resolves to undefined (typed `null`)

  await agent.stop();
  t.false(agent.running());
  t.throws(() => process.kill(agent.pid, 0), { code: 'ESRCH' });
});

test('sessions: TTL + lock-delay session holds a key, a second session cannot take it, destroy releases it', async (t) => {
  const agent = await startConsul(t);
  const consul = client(t, agent);
  const key = 'koala/harness/lock';

  const s1 = (await consul.session.create({ name: 'host-1', ttl: '10s', lockdelay: '1s', behavior: 'release' })).ID;
  const s2 = (await consul.session.create({ name: 'host-2', ttl: '10s', lockdelay: '1s', behavior: 'release' })).ID;
  const info = await consul.session.info(s1);
  t.is(info.TTL, '10s');
  t.is(info.LockDelay, 1e9); // nanoseconds

  t.true(await lock(consul, { key, value: 'host-1', acquire: s1 }));
  t.false(await lock(consul, { key, value: 'host-2', acquire: s2 }));
  const held = await getItem(consul, key);
  t.is(held?.Session, s1);
  t.is(held?.Value, 'host-1');
  t.is(held?.LockIndex, 1);

  // Renewing a TTL session answers with the session (as an array).
  const renewed = await consul.session.renew(s1);
  t.is(renewed[0]?.ID, s1);

  // Destroying the holder releases the key; lock-delay then keeps others out for ~1 s.
  await consul.session.destroy(s1); // resolves to undefined, whatever its typings say
  const destroyedAt = Date.now();
  t.false((await consul.session.list()).some((s) => s.ID === s1));
  const released = await getItem(consul, key);
  t.is(released?.Session, undefined);
  t.is(released?.Value, 'host-1'); // behavior "release": the key stays, unlocked
  t.false(await lock(consul, { key, value: 'host-2', acquire: s2 }), 'lock-delay refuses an immediate acquire');
  let acquired = false;
  while (!acquired && Date.now() - destroyedAt < 5_000) {
    await new Promise((r) => setTimeout(r, 100));
    acquired = await lock(consul, { key, value: 'host-2', acquire: s2 });
  }
  const waited = Date.now() - destroyedAt;
  t.true(acquired, 'the second session acquires the key after lock-delay');
  t.true(waited >= 900, `acquired after ${waited} ms, lock-delay is 1 s`);
  t.is((await getItem(consul, key))?.Session, s2);

  // An explicit release has no lock-delay.
  t.true(await lock(consul, { key, value: 'host-2', release: s2 }));
  t.true(await lock(consul, { key, value: 'host-1b', acquire: (await consul.session.create({ ttl: '10s' })).ID }));
});

test('blocking query: returns when the key changes, or after wait', async (t) => {
  const agent = await startConsul(t);
  const consul = client(t, agent);
  const key = 'koala/harness/watched';
  await consul.kv.set(key, 'v1');
  const first = await getWithIndex(consul, key);
  t.is(first.item?.Value, 'v1');

  // Nothing changes: the query is held for `wait`, then answers with the same index.
  let started = Date.now();
  const idle = await getWithIndex(consul, key, { index: first.index, wait: '1s' });
  const idleMs = Date.now() - started;
  t.is(idle.index, first.index);
  t.true(idleMs >= 900 && idleMs < 5_000, `idle blocking query took ${idleMs} ms`);

  // A write during the wait ends it early with the new value and a larger index.
  started = Date.now();
  const blocked = getWithIndex(consul, key, { index: first.index, wait: '30s' });
  setTimeout(() => void consul.kv.set(key, 'v2'), 300);
  const changed = await blocked;
  const changedMs = Date.now() - started;
  t.is(changed.item?.Value, 'v2');
  t.true(BigInt(changed.index) > BigInt(first.index));
  t.true(changedMs >= 250 && changedMs < 5_000, `blocking query returned after ${changedMs} ms`);
});

test('3-server cluster: elects a leader, survives losing it, KV keeps working', async (t) => {
  const started = Date.now();
  const cluster = await startConsulCluster(t, 3);
  t.log(`3-server cluster ready in ${Date.now() - started} ms: ${cluster.agents.map((a) => a.address).join(', ')}`);
  t.is(cluster.agents.length, 3);
  t.is(new Set(cluster.agents.map((a) => a.pid)).size, 3);

  const leader = await cluster.leader();
  const peers = (await client(t, leader).status.peers()).sort();
  t.deepEqual(peers, cluster.agents.map((a) => a.serverAddress).sort());

  const follower = cluster.agents.find((a) => a !== leader)!;
  const viaFollower = client(t, follower);
  t.true(await viaFollower.kv.set('koala/harness/cluster', 'before'));

  const killedAt = Date.now();
  await leader.kill();
  t.false(leader.running());
  const next = await cluster.leader();
  t.log(`new leader ${next.name} after ${Date.now() - killedAt} ms (old: ${leader.name})`);
  t.not(next, leader);
  t.true(next.running());

  const survivor = client(t, cluster.agents.find((a) => a !== leader && a !== next) ?? next);
  t.is((await getItem(survivor, 'koala/harness/cluster'))?.Value, 'before');
  t.true(await survivor.kv.set('koala/harness/cluster', 'after'));
  const consistentRead = { key: 'koala/harness/cluster', consistent: true }; // `consistent` is missing from GetOptions
  const consistent = (await survivor.kv.get(consistentRead)) as KvItem | undefined;
  t.is(consistent?.Value, 'after');
  t.is((await getItem(client(t, next), 'koala/harness/cluster'))?.Value, 'after');
});
