// Gathers the position locks a host asks for in one event-loop turn into few KV transactions.
//
// Every lock is a Raft write when sent alone; a burst of new activations (a gateway's first calls
// after a deploy, a host taking over a failed host's actors) is bounded by Consul's write rate.
// One transaction of up to 64 locks costs one Raft write. Each lock stays what it was: an atomic
// acquisition of one key with the host's own session; only how many travel together changes.
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
export interface ClaimBatchStats {
  /** Locks asked for (`lock()` calls; a claim that retries after the lock-delay asks again). */
  requests: number;
  /** Lock operations sent (a lock sent again after a rollback counts again). */
  operations: number;
  /** Transactions sent. */
  transactions: number;
  /** Transactions Consul rolled back (409). */
  rollbacks: number;
}

interface Pending {
  request: LockRequest;
  resolve: (outcome: LockOutcome) => void;
  reject: (err: unknown) => void;
}

export type SendTxn = (ops: readonly TxnOp[]) => Promise<TxnResult>;

export class ClaimBatcher {
  readonly #send: SendTxn;
  #queue: Pending[] = [];
  #scheduled = false;
  readonly #stats: ClaimBatchStats = { requests: 0, operations: 0, transactions: 0, rollbacks: 0 };

  constructor(send: SendTxn) {
    this.#send = send;
  }

  get stats(): Readonly<ClaimBatchStats> {
    return { ...this.#stats };
  }

  /** Queues one lock for the next flush. Rejects (with the transaction's error) if Consul cannot be reached. */
  lock(request: LockRequest): Promise<LockOutcome> {
    return new Promise<LockOutcome>((resolve, reject) => {
      this.#stats.requests++;
      this.#queue.push({ request, resolve, reject });
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
    // Chunks go out side by side: each is one request on the agent's connection pool.
    for (let i = 0; i < queue.length; i += MAX_TXN_OPS) void this.#commit(queue.slice(i, i + MAX_TXN_OPS));
  }

  /** Sends `batch` until every lock in it is granted or refused; never rejects itself. */
  async #commit(batch: Pending[]): Promise<void> {
    let rest = batch;
    while (rest.length > 0) {
      let result: TxnResult;
      this.#stats.transactions++;
      this.#stats.operations += rest.length;
      try {
        result = await this.#send(rest.map(({ request }) => ({ verb: 'lock' as const, ...request })));
      } catch (err) {
        for (const p of rest) p.reject(err);
        return;
      }
      if (result.ok) {
        rest.forEach((p, i) => {
          const entry = result.entries[i];
          if (entry) p.resolve({ ok: true, entry });
          else p.resolve({ ok: false, what: 'no result for the lock' });
        });
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
