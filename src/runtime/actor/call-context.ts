// The call chain a piece of actor code runs in. It follows the code across awaits (through
// AsyncLocalStorage), so calls an actor makes inherit the chain id, the remaining deadline and the
// path of actors the chain holds, without the actor passing anything along.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

export interface CallContext {
  /** Cluster-unique id of the chain (the first call's origin plus a counter). */
  readonly chain: string;
  /** Absolute local deadline in ms; 0 = none. */
  readonly deadline: number;
  /** Identities the chain passed through, outermost first: names the cycle of a deadlock. */
  readonly path: readonly string[];
}

const storage = new AsyncLocalStorage<CallContext>();

export function currentCall(): CallContext | undefined {
  return storage.getStore();
}

export function runInCall<T>(ctx: CallContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

// A random per-process prefix makes chain ids unique across hosts and restarts without coordination.
const ORIGIN = randomBytes(6).toString('base64url');
let counter = 0;

export function newChainId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${ORIGIN}.${counter.toString(36)}`;
}

/** Header that carries the chain's path across processes (identities joined by spaces). */
export const PATH_HEADER = 'koala-path';

export function pathFromHeaders(headers: Record<string, string>): string[] {
  const raw = headers[PATH_HEADER];
  return raw ? raw.split(' ') : [];
}
