// Proves the Consul test harness against a real agent through its HTTP API (plain fetch): KV,
// sessions as locks (TTL, lock-delay), blocking queries, and a 3-server cluster surviving the loss
// of its leader.
import test from 'ava';
import { consulBinary, startConsul, startConsulCluster, type ConsulAgent } from './helpers/consul.ts';

/** A KV entry as Consul's API answers it, with the value decoded. */
interface KvItem {
  Key: string;
  Value: string | null;
  LockIndex: number;
  ModifyIndex: number;
  Session?: string;
}

interface SessionInfo {
  ID: string;
  TTL: string;
  LockDelay: number;
}

/** The few Consul endpoints these tests use. */
function client(agent: ConsulAgent) {
  const call = async (method: string, path: string, body?: string): Promise<Response> => {
    const res = await fetch(`${agent.url}/v1/${path}`, { method, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(40_000) });
    if (!res.ok && res.status !== 404) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    return res;
  };
  const json = async <T>(method: string, path: string, body?: string): Promise<T> => (await (await call(method, path, body)).json()) as T;
  return {
    /** A (blocking, with `block`) read of a key, with the answer's X-Consul-Index. */
    async getWithIndex(key: string, block?: { index: string; wait: string }, consistent = false): Promise<{ item: KvItem | undefined; index: string }> {
      const query = new URLSearchParams({ ...block, ...(consistent ? { consistent: '' } : {}) }).toString();
      const res = await call('GET', `kv/${key}${query ? `?${query}` : ''}`);
      const index = res.headers.get('x-consul-index');
      if (index === null) throw new Error('no X-Consul-Index header');
      if (res.status === 404) return { item: undefined, index };
      const item = ((await res.json()) as KvItem[])[0];
      return { item: item && { ...item, Value: item.Value === null ? null : Buffer.from(item.Value, 'base64').toString('utf8') }, index };
    },
    async get(key: string, consistent = false): Promise<KvItem | undefined> {
      return (await this.getWithIndex(key, undefined, consistent)).item;
    },
    /** A write, with `acquire`/`release` a lock; whether it was applied. */
    async set(key: string, value: string, lock: { acquire?: string; release?: string } = {}): Promise<boolean> {
      const query = new URLSearchParams(lock).toString();
      return json<boolean>('PUT', `kv/${key}${query ? `?${query}` : ''}`, value);
    },
    async createSession(opts: { Name?: string; TTL: string; LockDelay?: string; Behavior?: string }): Promise<string> {
      return (await json<{ ID: string }>('PUT', 'session/create', JSON.stringify(opts))).ID;
    },
    async sessionInfo(id: string): Promise<SessionInfo | undefined> {
      return ((await json<SessionInfo[] | null>('GET', `session/info/${id}`)) ?? [])[0];
    },
    renewSession: (id: string) => json<SessionInfo[]>('PUT', `session/renew/${id}`),
    destroySession: (id: string) => json<boolean>('PUT', `session/destroy/${id}`),
    listSessions: () => json<SessionInfo[]>('GET', 'session/list'),
    peers: () => json<string[]>('GET', 'status/peers'),
  };
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
  const consul = client(agent);

  t.true(await consul.set('koala/harness/a', 'hello'));
  const item = await consul.get('koala/harness/a');
  t.is(item?.Value, 'hello');
  t.is(await consul.get('koala/harness/missing'), undefined); // a 404

  await agent.stop();
  t.false(agent.running());
  t.throws(() => process.kill(agent.pid, 0), { code: 'ESRCH' });
});

test('sessions: TTL + lock-delay session holds a key, a second session cannot take it, destroy releases it', async (t) => {
  const agent = await startConsul(t);
  const consul = client(agent);
  const key = 'koala/harness/lock';

  const s1 = await consul.createSession({ Name: 'host-1', TTL: '10s', LockDelay: '1s', Behavior: 'release' });
  const s2 = await consul.createSession({ Name: 'host-2', TTL: '10s', LockDelay: '1s', Behavior: 'release' });
  const info = await consul.sessionInfo(s1);
  t.is(info?.TTL, '10s');
  t.is(info?.LockDelay, 1e9); // nanoseconds

  t.true(await consul.set(key, 'host-1', { acquire: s1 }));
  t.false(await consul.set(key, 'host-2', { acquire: s2 }));
  const held = await consul.get(key);
  t.is(held?.Session, s1);
  t.is(held?.Value, 'host-1');
  t.is(held?.LockIndex, 1);

  // Renewing a TTL session answers with the session (as an array).
  const renewed = await consul.renewSession(s1);
  t.is(renewed[0]?.ID, s1);

  // Destroying the holder releases the key; lock-delay then keeps others out for ~1 s.
  t.true(await consul.destroySession(s1));
  const destroyedAt = Date.now();
  t.false((await consul.listSessions()).some((s) => s.ID === s1));
  const released = await consul.get(key);
  t.is(released?.Session, undefined);
  t.is(released?.Value, 'host-1'); // behavior "release": the key stays, unlocked
  t.false(await consul.set(key, 'host-2', { acquire: s2 }), 'lock-delay refuses an immediate acquire');
  let acquired = false;
  while (!acquired && Date.now() - destroyedAt < 5_000) {
    await new Promise((r) => setTimeout(r, 100));
    acquired = await consul.set(key, 'host-2', { acquire: s2 });
  }
  const waited = Date.now() - destroyedAt;
  t.true(acquired, 'the second session acquires the key after lock-delay');
  t.true(waited >= 900, `acquired after ${waited} ms, lock-delay is 1 s`);
  t.is((await consul.get(key))?.Session, s2);

  // An explicit release has no lock-delay.
  t.true(await consul.set(key, 'host-2', { release: s2 }));
  t.true(await consul.set(key, 'host-1b', { acquire: await consul.createSession({ TTL: '10s' }) }));
});

test('blocking query: returns when the key changes, or after wait', async (t) => {
  const agent = await startConsul(t);
  const consul = client(agent);
  const key = 'koala/harness/watched';
  await consul.set(key, 'v1');
  const first = await consul.getWithIndex(key);
  t.is(first.item?.Value, 'v1');

  // Nothing changes: the query is held for `wait`, then answers with the same index.
  let started = Date.now();
  const idle = await consul.getWithIndex(key, { index: first.index, wait: '1s' });
  const idleMs = Date.now() - started;
  t.is(idle.index, first.index);
  t.true(idleMs >= 900 && idleMs < 5_000, `idle blocking query took ${idleMs} ms`);

  // A write during the wait ends it early with the new value and a larger index.
  started = Date.now();
  const blocked = consul.getWithIndex(key, { index: first.index, wait: '30s' });
  setTimeout(() => void consul.set(key, 'v2'), 300);
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
  const peers = (await client(leader).peers()).sort();
  t.deepEqual(peers, cluster.agents.map((a) => a.serverAddress).sort());

  const follower = cluster.agents.find((a) => a !== leader)!;
  const viaFollower = client(follower);
  t.true(await viaFollower.set('koala/harness/cluster', 'before'));

  const killedAt = Date.now();
  await leader.kill();
  t.false(leader.running());
  const next = await cluster.leader();
  t.log(`new leader ${next.name} after ${Date.now() - killedAt} ms (old: ${leader.name})`);
  t.not(next, leader);
  t.true(next.running());

  const survivor = client(cluster.agents.find((a) => a !== leader && a !== next) ?? next);
  t.is((await survivor.get('koala/harness/cluster'))?.Value, 'before');
  t.true(await survivor.set('koala/harness/cluster', 'after'));
  const consistent = await survivor.get('koala/harness/cluster', true);
  t.is(consistent?.Value, 'after');
  t.is((await client(next).get('koala/harness/cluster'))?.Value, 'after');
});
