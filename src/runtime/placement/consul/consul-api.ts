// The parts of Consul's HTTP API that Koala uses, typed, on top of the `consul` package.
import { Agent as HttpAgent } from 'node:http';
import Consul from 'consul';
import { KoalaError } from '../../errors/errors.ts';

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
  /** The output of the service's own TTL check (hosts write their load there). */
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

interface PapiResponse {
  statusCode: number;
  body: unknown;
  headers: Record<string, string>;
}

/** `base64`: values straight from the HTTP API are base64; the package's kv.get has decoded them already. */
function kvEntry(raw: RawKv, base64: boolean): KvEntry {
  return {
    key: raw.Key,
    value: raw.Value === null ? null : base64 ? Buffer.from(raw.Value, 'base64').toString('utf8') : raw.Value,
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

/** Turns the package's errors (connection refused, HTTP status) into one clear line. */
function unreachable(address: string, err: unknown): KoalaError {
  const e = err as { code?: string; message?: string; statusCode?: number };
  const detail = e.code === 'ECONNREFUSED' ? 'connection refused' : (e.message ?? String(err));
  return new KoalaError('UNREACHABLE', `Consul at ${address} did not answer (${detail}); check placement.consul.address and that the agent runs`);
}

/** A failure to talk to the agent at all (as opposed to an HTTP error answer). */
function isConnectionError(err: unknown): boolean {
  const e = err as { statusCode?: number; response?: unknown; code?: string };
  return e.statusCode === undefined && e.response === undefined;
}

/**
 * Consul refuses more than `limits.http_max_conns_per_client` (200) connections from one address,
 * and a burst of activations would open one per request: keep a small pool of reused connections.
 */
const MAX_SOCKETS = 32;

function client(address: string, token: string | undefined): Consul {
  const [host, port] = address.replace(/^https?:\/\//, '').split(':');
  const agent = new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS });
  return new Consul({ host: host ?? '127.0.0.1', port: Number(port ?? 8500), agent, ...(token ? { defaults: { token } } : {}) });
}

interface WatchHandle {
  on(event: 'change', fn: (data: never) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  end(): void;
}

/**
 * Talks to one Consul agent at a time. Given several addresses (agents of one cluster), it moves
 * to the next when the current one stops answering, and restarts its watches there.
 */
export class ConsulApi {
  readonly #addresses: string[];
  readonly #token: string | undefined;
  #current = 0;
  #consul: Consul;
  readonly #watches = new Set<() => void>();

  constructor(address: string | readonly string[], token?: string) {
    this.#addresses = (typeof address === 'string' ? address.split(',') : [...address]).map((a) => a.trim()).filter(Boolean);
    if (this.#addresses.length === 0) throw new KoalaError('UNREACHABLE', 'no Consul address given; set placement.consul.address');
    this.#token = token;
    this.#consul = client(this.#addresses[0]!, token);
  }

  /** The agent in use now. */
  get address(): string {
    return this.#addresses[this.#current]!;
  }

  /** Moves on from `failed` (unless someone already did) to the next agent. */
  #failover(failed: string): void {
    if (this.#addresses.length < 2 || this.address !== failed) return;
    (this.#consul as unknown as { destroy?: () => void }).destroy?.();
    this.#current = (this.#current + 1) % this.#addresses.length;
    this.#consul = client(this.address, this.#token);
    for (const restart of this.#watches) restart();
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const failed = this.address;
      if (isConnectionError(err)) this.#failover(failed);
      throw unreachable(failed, err);
    }
  }

  async leader(): Promise<string> {
    return this.#call(() => this.#consul.status.leader() as Promise<string>);
  }

  async kvGet(key: string): Promise<KvEntry | undefined> {
    const raw = (await this.#call(() => this.#consul.kv.get({ key }))) as RawKv | null | undefined;
    return raw ? kvEntry(raw, false) : undefined;
  }

  async kvList(prefix: string): Promise<KvEntry[]> {
    const raw = (await this.#call(() => this.#consul.kv.get({ key: prefix, recurse: true }))) as RawKv[] | RawKv | null | undefined;
    return raw ? (Array.isArray(raw) ? raw : [raw]).map((r) => kvEntry(r, false)) : [];
  }

  async kvPut(key: string, value: string): Promise<void> {
    await this.#call(() => this.#consul.kv.set({ key, value }));
  }

  async kvDelete(key: string): Promise<void> {
    await this.#call(() => this.#consul.kv.del({ key }));
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
    let res: { statusCode: number; body: unknown };
    try {
      res = { statusCode: 200, body: await this.#consul.transaction.create(operations as never, { ctx: { includeResponse: true } } as never) };
    } catch (err) {
      const response = (err as { response?: PapiResponse }).response;
      // 409: the transaction was rolled back; its body says which operation failed and why.
      if (response?.statusCode !== 409) {
        const failed = this.address;
        if (isConnectionError(err)) this.#failover(failed);
        throw unreachable(failed, err);
      }
      res = response;
    }
    const body = res.body as { Results?: { KV: RawKv }[] | null; Errors?: { OpIndex: number; What: string }[] | null };
    const results = body.Results ?? [];
    return {
      ok: res.statusCode === 200,
      entries: ops.map((_, i) => (results[i] ? kvEntry(results[i].KV, true) : undefined)),
      errors: (body.Errors ?? []).map((e) => ({ opIndex: e.OpIndex, what: e.What })),
    };
  }

  async registerService(opts: { name: string; id: string; tags: string[]; meta: Record<string, string>; ttlMs: number; deregisterAfterMs: number }): Promise<void> {
    await this.#call(() =>
      this.#consul.agent.service.register({
        name: opts.name,
        id: opts.id,
        tags: opts.tags,
        meta: opts.meta,
        check: { ttl: `${opts.ttlMs}ms`, deregistercriticalserviceafter: `${Math.max(60_000, opts.deregisterAfterMs)}ms` } as never,
      }),
    );
  }

  async deregisterService(id: string): Promise<void> {
    await this.#call(() => this.#consul.agent.service.deregister(id));
  }

  /**
   * Keeps a service's TTL check passing; `note` becomes the check's output. False when the agent
   * does not know the check (the service was registered on an agent that is gone, or expired).
   */
  async passCheck(serviceId: string, note: string): Promise<boolean> {
    try {
      await this.#consul.agent.check.pass({ id: `service:${serviceId}`, note });
      return true;
    } catch (err) {
      if (!isConnectionError(err)) return false;
      const failed = this.address;
      this.#failover(failed);
      throw unreachable(failed, err);
    }
  }

  /** A session bound to the node and to the service's TTL check; its locks are released when it ends. */
  async createSession(opts: { name: string; serviceId: string; lockDelayMs: number }): Promise<string> {
    const res = (await this.#call(() =>
      this.#consul.session.create({ name: opts.name, checks: ['serfHealth', `service:${opts.serviceId}`], behavior: 'release', lockdelay: `${opts.lockDelayMs}ms` } as never),
    )) as { ID: string };
    return res.ID;
  }

  async destroySession(id: string): Promise<void> {
    await this.#call(() => this.#consul.session.destroy(id));
  }

  async sessionAlive(id: string): Promise<boolean> {
    const info = (await this.#call(() => this.#consul.session.info(id))) as unknown;
    return Array.isArray(info) ? info.length > 0 : Boolean(info);
  }

  async healthService(name: string): Promise<ServiceEntry[]> {
    const raw = (await this.#call(() => this.#consul.health.service({ service: name }))) as RawHealth[];
    return raw.map(healthEntry);
  }

  /**
   * Follows a service's health with blocking queries: `onChange` gets every new list. Returns a
   * function that stops watching.
   */
  watchService(name: string, onChange: (entries: ServiceEntry[]) => void, onError: (err: Error) => void): () => void {
    return this.#watch(() => ({ method: this.#consul.health.service, options: { service: name, wait: '30s' } }), (data: RawHealth[]) => onChange(data.map(healthEntry)), onError);
  }

  /** Follows every key under a prefix with blocking queries. */
  watchPrefix(prefix: string, onChange: (entries: KvEntry[]) => void, onError: (err: Error) => void): () => void {
    return this.#watch(
      () => ({ method: this.#consul.kv.get, options: { key: prefix, recurse: true, wait: '30s' } }),
      (data: RawKv[] | RawKv | null | undefined) => onChange(data ? (Array.isArray(data) ? data : [data]).map((r) => kvEntry(r, false)) : []),
      onError,
    );
  }

  /**
   * A watch (the package's blocking-query loop, retrying with backoff) that survives a move to
   * another agent: it is started again on the agent in use.
   */
  #watch<D>(spec: () => { method: unknown; options: Record<string, unknown> }, onChange: (data: D) => void, onError: (err: Error) => void): () => void {
    let watch: WatchHandle | undefined;
    const start = () => {
      watch?.end();
      const on = this.address;
      watch = this.#consul.watch({ ...spec(), backoffFactor: 100, backoffMax: 2000 } as never) as unknown as WatchHandle;
      watch.on('change', onChange as (data: never) => void);
      watch.on('error', (err) => {
        if (isConnectionError(err)) this.#failover(on);
        onError(unreachable(on, err));
      });
    };
    start();
    this.#watches.add(start);
    return () => {
      this.#watches.delete(start);
      watch?.end();
    };
  }

  close(): void {
    this.#watches.clear();
    (this.#consul as unknown as { destroy?: () => void }).destroy?.();
  }
}
