// Gathers the position locks a host asks for in one event-loop turn into few KV transactions, and
// so the releases (`delete-cas`) of the positions it gives up.
//
// Every lock is a Raft write when sent alone; a burst of new activations (a gateway's first calls
// after a deploy, a host taking over a failed host's actors) is bounded by Consul's write rate.
// One transaction of up to 64 locks costs one Raft write. Each lock stays what it was: an atomic
// acquisition of one key with the host's own session; only how many travel together changes. The
// same holds for releases: a host that stops, or lets thousands of idle actors go in one sweep,
// deletes their keys 64 to a write (each delete only if the key still holds the epoch it granted).
// A transaction carries one kind of operation: Consul returns an entry for each lock and none for
// a delete, so in a mixed one the entries would not line up with the operations.
//
// Consul applies a transaction all or nothing. On a rollback (409) it names failing operations
// (perhaps only the first): those fail on their own, and the rest, which were not applied, are sent
// again in a new transaction. So each lock ends granted or refused exactly as if it had been sent
// alone, and none is applied twice.
import type { KvEntry, TxnOp, TxnResult } from './consul-api.ts';

/** Consul's cap on operations per transaction (`txn_max_ops`). */
export const MAX_TXN_OPS = 64;

export interface LockRequest {
  key: string;
  value: string;
  session: string;
}

/** A lock granted (the key's entry after the write: its ModifyIndex is the epoch), or refused. */
export type LockOutcome = { ok: true; entry: KvEntry } | { ok: false; what: string };

/** What the batcher did so far: an observable for tests and sizing, not a control. */
export interface TxnBatchStats {
  /** Operations asked for (`lock()` or `release()` calls; a claim that retries after the lock-delay asks again). */
  requests: number;
  /** Operations sent (one sent again after a rollback counts again). */
  operations: number;
  /** Transactions sent. */
  transactions: number;
  /** Transactions Consul rolled back (409). */
  rollbacks: number;
}

/** An operation applied (with the key's entry after it, for a lock), or refused. */
type OpOutcome = { ok: true; entry: KvEntry | undefined } | { ok: false; what: string };

type BatchedOp = Extract<TxnOp, { verb: 'lock' } | { verb: 'delete-cas' }>;

interface Pending {
  op: BatchedOp;
  resolve: (outcome: OpOutcome) => void;
  reject: (err: unknown) => void;
}

export type SendTxn = (ops: readonly TxnOp[]) => Promise<TxnResult>;

export class TxnBatcher {
  readonly #send: SendTxn;
  #queue: Pending[] = [];
  #scheduled = false;
  readonly #stats: TxnBatchStats = { requests: 0, operations: 0, transactions: 0, rollbacks: 0 };

  constructor(send: SendTxn) {
    this.#send = send;
  }

  get stats(): Readonly<TxnBatchStats> {
    return { ...this.#stats };
  }

  /** Queues one lock for the next flush. Rejects (with the transaction's error) if Consul cannot be reached. */
  async lock(request: LockRequest): Promise<LockOutcome> {
    const outcome = await this.#submit({ verb: 'lock', ...request });
    if (outcome.ok && outcome.entry === undefined) return { ok: false, what: 'no result for the lock' };
    return outcome as LockOutcome;
  }

  /**
   * Queues the delete of `key` if it still holds `index` (a release: a newer owner's key is left
   * alone). Resolves whether it was deleted; rejects (with the transaction's error) if Consul
   * cannot be reached.
   */
  async release(key: string, index: number): Promise<boolean> {
    return (await this.#submit({ verb: 'delete-cas', key, index })).ok;
  }

  #submit(op: BatchedOp): Promise<OpOutcome> {
    return new Promise<OpOutcome>((resolve, reject) => {
      this.#stats.requests++;
      this.#queue.push({ op, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      // setImmediate, not a microtask: calls that arrived in the same poll phase (several socket
      // reads) have all asked by then, and no timer delays a lone claim.
      setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    // One kind of operation per transaction (see the top of this file); chunks go out side by
    // side: each is one request on the agent's connection pool.
    for (const verb of ['lock', 'delete-cas'] as const) {
      const ofKind = queue.filter((p) => p.op.verb === verb);
      for (let i = 0; i < ofKind.length; i += MAX_TXN_OPS) void this.#commit(ofKind.slice(i, i + MAX_TXN_OPS));
    }
  }

  /** Sends `batch` until every operation in it is applied or refused; never rejects itself. */
  async #commit(batch: Pending[]): Promise<void> {
    let rest = batch;
    while (rest.length > 0) {
      let result: TxnResult;
      this.#stats.transactions++;
      this.#stats.operations += rest.length;
      try {
        result = await this.#send(rest.map((p) => p.op));
      } catch (err) {
        for (const p of rest) p.reject(err);
        return;
      }
      if (result.ok) {
        rest.forEach((p, i) => p.resolve({ ok: true, entry: result.entries[i] }));
        return;
      }
      this.#stats.rollbacks++;
      const failed = new Map<number, string>();
      for (const e of result.errors) if (e.opIndex >= 0 && e.opIndex < rest.length && !failed.has(e.opIndex)) failed.set(e.opIndex, e.what);
      // A rollback that names none of our operations gives nothing to take out: fail them all
      // rather than send the same transaction forever (each claim then reads and retries alone).
      if (failed.size === 0) {
        const what = result.errors[0]?.what ?? 'transaction rolled back';
        for (const p of rest) p.resolve({ ok: false, what });
        return;
      }
      const next: Pending[] = [];
      rest.forEach((p, i) => {
        const what = failed.get(i);
        if (what === undefined) next.push(p);
        else p.resolve({ ok: false, what });
      });
      rest = next;
    }
  }
}
