// The parts of Consul's HTTP API that Koala uses, typed, over a lean HTTP client of our own
// (agent-http.ts says why not node:http or the `consul` package).
import { KoalaError } from '../../errors/errors.ts';
import { AgentHttp, ConnectionError, type HttpResponse, type RequestOptions } from './agent-http.ts';
import { blockingWatch } from './blocking-watch.ts';
import { StatusError } from './http-response.ts';

export interface KvEntry {
  key: string;
  value: string | null;
  /** The session holding the key's lock, if any. */
  session: string | undefined;
  modifyIndex: number;
}

export interface ServiceEntry {
  id: string;
  tags: string[];
  meta: Record<string, string>;
  /** Aggregated health of the service's checks and its node's. */
  status: 'passing' | 'warning' | 'critical';
  /** The output of the service's own TTL check: the note of its last pass. */
  output: string;
}

export type TxnOp =
  | { verb: 'lock'; key: string; value: string; session: string }
  | { verb: 'get'; key: string }
  | { verb: 'delete-cas'; key: string; index: number }
  | { verb: 'check-session'; key: string; session: string };

/** One result per operation; `undefined` for operations of a failed transaction. */
export interface TxnResult {
  ok: boolean;
  entries: (KvEntry | undefined)[];
  errors: { opIndex: number; what: string }[];
}

interface RawKv {
  Key: string;
  Value: string | null;
  Session?: string;
  ModifyIndex: number;
}

interface RawHealth {
  Service: { ID: string; Tags: string[] | null; Meta: Record<string, string> | null };
  Checks: { CheckID: string; ServiceID: string; Status: 'passing' | 'warning' | 'critical'; Output: string }[];
}

/** Values from the KV API are base64. */
function kvEntry(raw: RawKv): KvEntry {
  return {
    key: raw.Key,
    value: raw.Value === null ? null : Buffer.from(raw.Value, 'base64').toString('utf8'),
    session: raw.Session || undefined,
    modifyIndex: raw.ModifyIndex,
  };
}

function healthEntry(raw: RawHealth): ServiceEntry {
  const rank = { passing: 0, warning: 1, critical: 2 } as const;
  let status: ServiceEntry['status'] = 'passing';
  let output = '';
  for (const check of raw.Checks) {
    if (rank[check.Status] > rank[status]) status = check.Status;
    if (check.ServiceID === raw.Service.ID) output = check.Output;
  }
  return { id: raw.Service.ID, tags: raw.Service.Tags ?? [], meta: raw.Service.Meta ?? {}, status, output };
}

/** Turns a failed request (connection refused, HTTP status) into one clear line. */
/** OpenSSL's codes for an agent that refused this client's certificate, or its absence. */
const CLIENT_CERTIFICATE_REFUSED = /ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN)/;
/** Node's codes for an agent whose certificate is not trusted (or not for that name). */
const SERVER_CERTIFICATE_REFUSED = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;

function unreachable(address: string, err: unknown): KoalaError {
  if (err instanceof ConnectionError && CLIENT_CERTIFICATE_REFUSED.test(err.code)) {
    return new KoalaError('UNREACHABLE', `Consul at ${address} refused this client's certificate, or its lack of one; set placement.consul.tls.cert and key to a certificate signed by a CA the agent trusts`);
  }
  if (err instanceof ConnectionError && SERVER_CERTIFICATE_REFUSED.test(err.code)) {
    return new KoalaError('UNREACHABLE', `Consul at ${address} has a certificate this client does not trust (${err.message.split('\n')[0]}); set placement.consul.tls.ca to the CA that signed it (its names must include the address, or set tls.serverName)`);
  }
  if (err instanceof ConnectionError && err.code === 'EPROTO') {
    // OpenSSL's "wrong version number": the other end answered in plain HTTP (or something else).
    return new KoalaError('UNREACHABLE', `Consul at ${address} does not speak TLS there; point placement.consul.address at the agent's https port, or remove placement.consul.tls`);
  }
  const detail = err instanceof ConnectionError && err.code === 'ECONNREFUSED' ? 'connection refused' : err instanceof Error ? err.message : String(err);
  return new KoalaError('UNREACHABLE', `Consul at ${address} did not answer (${detail}); check placement.consul.address and that the agent runs`);
}

/** A path segment (a key may hold any character; encoded whole, as the `consul` package did). */
const seg = encodeURIComponent;

/**
 * Consul refuses more than `limits.http_max_conns_per_client` (200) connections from one address,
 * and a burst of activations would open one per request: keep a small pool of reused connections.
 */
const MAX_SOCKETS = 32;

/**
 * How long any other request may take: an agent that accepts connections but stops answering (hung,
 * or paused) must fail the calls that need it, and move us to the next agent, not hold them forever.
 * A healthy local agent answers in milliseconds; a transaction under load in tens of them.
 */
const REQUEST_TIMEOUT_MS = 10_000;

/** How long a blocking query is held at most; the request gives up a little later (Consul adds up to wait / 16). */
const WATCH_WAIT_MS = 30_000;
const WATCH_TIMEOUT_MS = WATCH_WAIT_MS + 3_000;
const WATCH_BACKOFF = { backoffFactorMs: 100, backoffMaxMs: 2_000 };

/**
 * How to reach the agents: the ACL token, and TLS (the agents' https port). TLS is on when `tls`
 * is given or an address starts with `https://`; `tls` holds the PEM contents, not file names.
 */
export interface ConsulConnection {
  token?: string;
  tls?: ConsulTls;
}

export interface ConsulTls {
  /** CA certificates that signed the agents' certificates (default: Node's trusted CAs). */
  ca?: Buffer;
  /** A client certificate and its key, for agents that verify incoming HTTPS (`verify_incoming`). */
  cert?: Buffer;
  key?: Buffer;
  /** The name the agents' certificates are checked against, when it is not the address's host. */
  serverName?: string;
}

function client(address: string, { token, tls }: ConsulConnection): AgentHttp {
  const secure = tls !== undefined || /^https:\/\//.test(address);
  const [host, port] = address.replace(/^https?:\/\//, '').split(':');
  const options = secure ? { ...(tls?.ca ? { ca: tls.ca } : {}), ...(tls?.cert ? { cert: tls.cert } : {}), ...(tls?.key ? { key: tls.key } : {}), ...(tls?.serverName ? { servername: tls.serverName } : {}) } : undefined;
  return new AgentHttp({ host: host || '127.0.0.1', port: Number(port || (secure ? 8501 : 8500)), maxSockets: MAX_SOCKETS, ...(token ? { token } : {}), ...(options ? { tls: options } : {}) });
}

/**
 * Talks to one Consul agent at a time. Given several addresses (agents of one cluster), it moves
 * to the next when the current one stops answering, and restarts its watches there.
 */
export class ConsulApi {
  readonly #addresses: string[];
  readonly #connection: ConsulConnection;
  readonly #timeoutMs: number;
  #current = 0;
  #http: AgentHttp;
  #closed = false;
  readonly #watches = new Set<() => void>();

  constructor(address: string | readonly string[], connection: ConsulConnection = {}, requestTimeoutMs = REQUEST_TIMEOUT_MS) {
    this.#addresses = (typeof address === 'string' ? address.split(',') : [...address]).map((a) => a.trim()).filter(Boolean);
    if (this.#addresses.length === 0) throw new KoalaError('UNREACHABLE', 'no Consul address given; set placement.consul.address');
    this.#connection = connection;
    this.#timeoutMs = requestTimeoutMs;
    this.#http = client(this.#addresses[0]!, connection);
  }

  /** The agent in use now. */
  get address(): string {
    return this.#addresses[this.#current]!;
  }

  /** Moves on from `failed` (unless someone already did) to the next agent. */
  #failover(failed: string): void {
    if (this.#closed || this.#addresses.length < 2 || this.address !== failed) return;
    this.#http.close();
    this.#current = (this.#current + 1) % this.#addresses.length;
    this.#http = client(this.address, this.#connection);
    for (const restart of this.#watches) restart();
  }

  /**
   * One request to the agent in use. Resolves with an answer `accept`s (default: 200); others are
   * a StatusError. A failed connection moves on to the next agent; both become one
   * UNREACHABLE line, as does no answer within the request timeout.
   */
  async #request(method: 'GET' | 'PUT' | 'DELETE', path: string, opts: RequestOptions & { accept?: (status: number) => boolean } = {}): Promise<HttpResponse> {
    const on = this.address;
    let res: HttpResponse;
    try {
      res = await this.#http.request(method, path, { ...opts, timeoutMs: opts.timeoutMs ?? this.#timeoutMs });
    } catch (err) {
      if (err instanceof ConnectionError) this.#failover(on);
      throw unreachable(on, err);
    }
    if (opts.accept ? opts.accept(res.status) : res.status === 200) return res;
    throw unreachable(on, new StatusError(res.status, res.body));
  }

  /** The answer's JSON body; `undefined` for a 404 (a key that does not exist). */
  async #json<T>(method: 'GET' | 'PUT', path: string, body?: string): Promise<T | undefined> {
    const res = await this.#request(method, path, { ...(body === undefined ? {} : { body }), accept: (status) => status === 200 || status === 404 });
    return res.status === 404 ? undefined : (JSON.parse(res.body) as T);
  }

  async leader(): Promise<string> {
    return (await this.#json<string>('GET', '/v1/status/leader')) ?? '';
  }

  async kvGet(key: string): Promise<KvEntry | undefined> {
    const raw = await this.#json<RawKv[]>('GET', `/v1/kv/${seg(key)}`);
    return raw?.[0] ? kvEntry(raw[0]) : undefined;
  }

  async kvList(prefix: string): Promise<KvEntry[]> {
    return ((await this.#json<RawKv[]>('GET', `/v1/kv/${seg(prefix)}?recurse=true`)) ?? []).map(kvEntry);
  }

  /** Writes a key; with `acquire`, also locks it with that session (false: someone else holds it). */
  async kvPut(key: string, value: string, acquire?: string): Promise<boolean> {
    const res = await this.#request('PUT', `/v1/kv/${seg(key)}${acquire === undefined ? '' : `?acquire=${seg(acquire)}`}`, { body: value });
    return res.body.trim() === 'true';
  }

  async kvDelete(key: string): Promise<void> {
    await this.#request('DELETE', `/v1/kv/${seg(key)}`);
  }

  /** A KV transaction: all operations or none. Consul takes at most 64 per transaction. */
  async txn(ops: readonly TxnOp[]): Promise<TxnResult> {
    const operations = ops.map((op) => ({
      KV: {
        Verb: op.verb,
        Key: op.key,
        ...('value' in op ? { Value: Buffer.from(op.value).toString('base64') } : {}),
        ...('session' in op ? { Session: op.session } : {}),
        ...('index' in op ? { Index: op.index } : {}),
      },
    }));
    // 409: the transaction was rolled back; its body says which operation failed and why.
    const res = await this.#request('PUT', '/v1/txn', { body: JSON.stringify(operations), accept: (status) => status === 200 || status === 409 });
    const body = JSON.parse(res.body) as { Results?: { KV: RawKv }[] | null; Errors?: { OpIndex: number; What: string }[] | null };
    const results = body.Results ?? [];
    return {
      ok: res.status === 200,
      entries: ops.map((_, i) => (results[i] ? kvEntry(results[i].KV) : undefined)),
      errors: (body.Errors ?? []).map((e) => ({ opIndex: e.OpIndex, what: e.What })),
    };
  }

  async registerService(opts: { name: string; id: string; tags: string[]; meta: Record<string, string>; ttlMs: number; deregisterAfterMs: number }): Promise<void> {
    const check = { TTL: `${opts.ttlMs}ms`, DeregisterCriticalServiceAfter: `${Math.max(60_000, opts.deregisterAfterMs)}ms` };
    await this.#request('PUT', '/v1/agent/service/register', { body: JSON.stringify({ Name: opts.name, ID: opts.id, Tags: opts.tags, Meta: opts.meta, Check: check }) });
  }

  async deregisterService(id: string): Promise<void> {
    await this.#request('PUT', `/v1/agent/service/deregister/${seg(id)}`);
  }

  /**
   * Keeps a service's TTL check passing; `note` becomes the check's output. False when the agent
   * does not know the check (the service was registered on an agent that is gone, or expired).
   */
  async passCheck(serviceId: string, note: string): Promise<boolean> {
    // Any answer from the agent but 200 (404, or 500 "Unknown check ID" from older agents) is a no.
    const res = await this.#request('PUT', `/v1/agent/check/pass/${seg(`service:${serviceId}`)}?note=${encodeURIComponent(note)}`, { accept: () => true });
    return res.status === 200;
  }

  /**
   * A session bound to the node and to the service's TTL check. When it ends (destroyed, or its
   * check failed) Consul deletes the keys it holds, so a crashed or fenced host leaves no actor
   * keys behind; the lock-delay still keeps those keys from being locked again at once.
   */
  async createSession(opts: { name: string; serviceId: string; lockDelayMs: number }): Promise<string> {
    const body = { Name: opts.name, Checks: ['serfHealth', `service:${opts.serviceId}`], Behavior: 'delete', LockDelay: `${opts.lockDelayMs}ms` };
    const res = await this.#json<{ ID: string }>('PUT', '/v1/session/create', JSON.stringify(body));
    if (!res?.ID) throw new KoalaError('UNREACHABLE', `Consul at ${this.address} created no session`);
    return res.ID;
  }

  async destroySession(id: string): Promise<void> {
    await this.#request('PUT', `/v1/session/destroy/${seg(id)}`);
  }

  async sessionAlive(id: string): Promise<boolean> {
    const info = await this.#json<unknown[] | null>('GET', `/v1/session/info/${seg(id)}`);
    return Array.isArray(info) && info.length > 0;
  }

  async healthService(name: string): Promise<ServiceEntry[]> {
    return ((await this.#json<RawHealth[]>('GET', `/v1/health/service/${seg(name)}`)) ?? []).map(healthEntry);
  }

  /**
   * Follows a service's health with blocking queries: `onChange` gets every new list. Returns a
   * function that stops watching.
   */
  watchService(name: string, onChange: (entries: ServiceEntry[]) => void, onError: (err: Error) => void): () => void {
    return this.#watch(`/v1/health/service/${seg(name)}?`, (res) => onChange((JSON.parse(res.body) as RawHealth[] | null ?? []).map(healthEntry)), onError);
  }

  /** Follows every key under a prefix with blocking queries. */
  watchPrefix(prefix: string, onChange: (entries: KvEntry[]) => void, onError: (err: Error) => void): () => void {
    // An empty prefix answers 404, with an index like any other answer.
    return this.#watch(`/v1/kv/${seg(prefix)}?recurse=true&`, (res) => onChange(res.status === 404 ? [] : ((JSON.parse(res.body) as RawKv[] | null) ?? []).map(kvEntry)), onError);
  }

  /**
   * A blocking-query loop (retrying with backoff) that survives a move to another agent: it is
   * started again, from index 0, on the agent in use. `query` is the path up to its query string.
   */
  #watch(query: string, onChange: (res: HttpResponse) => void, onError: (err: Error) => void): () => void {
    let stop: (() => void) | undefined;
    const start = () => {
      stop?.();
      const on = this.address;
      const http = this.#http;
      stop = blockingWatch(
        (index, signal) =>
          http.request('GET', `${query}index=${index}&wait=${WATCH_WAIT_MS}ms`, { timeoutMs: WATCH_TIMEOUT_MS, signal }).then((res) => {
            if (res.status !== 200 && res.status !== 404) throw new StatusError(res.status, res.body);
            return res;
          }),
        onChange,
        (err) => {
          if (err instanceof ConnectionError) this.#failover(on);
          onError(unreachable(on, err));
        },
        WATCH_BACKOFF,
      );
    };
    start();
    this.#watches.add(start);
    return () => {
      this.#watches.delete(start);
      stop?.();
    };
  }

  close(): void {
    this.#closed = true;
    this.#watches.clear();
    this.#http.close();
  }
}
