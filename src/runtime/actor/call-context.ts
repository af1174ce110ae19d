// The call chain a piece of actor code runs in. It follows the code across awaits (through
// AsyncLocalStorage), so calls an actor makes inherit the chain id, the remaining deadline and the
// path of actors the chain holds, without the actor passing anything along.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

export interface CallContext {
  /** Cluster-unique id of the chain. */
  readonly chain: string;
  /** Absolute local deadline in ms; 0 = none. */
  readonly deadline: number;
  /** The actor this turn runs in. */
  readonly identity: string;
  /** The turn that made this call, when it ran in this process. */
  readonly parent: CallContext | undefined;
  /**
   * The path of the chain before it reached this process, outermost first, as the envelope's
   * `koala-path` header carries it (identities separated by spaces; split only when needed): from
   * the chain's first non-reentrant actor on (see `deadlockPath`).
   */
  readonly origin: string | undefined;
}

// Where the current call's context lives. Synchronous code (most turns) finds it in a plain
// variable, set only while a turn's synchronous part runs: no AsyncLocalStorage cost at all (a
// storage frame costs ~200 ns, as much as the rest of an in-host call). Code after an await finds
// it through AsyncLocalStorage: `async` methods run in a frame of their own.
const storage = new AsyncLocalStorage<CallContext>();
let syncCtx: CallContext | undefined;

export function currentCall(): CallContext | undefined {
  return syncCtx ?? storage.getStore();
}

type Fn = (...a: unknown[]) => unknown;

/** `fn.apply(self, args)` with `ctx` current for its synchronous part. */
export function callSync(ctx: CallContext, fn: Fn, self: unknown, args: readonly unknown[]): unknown {
  const outer = syncCtx;
  syncCtx = ctx;
  try {
    return fn.apply(self, args as unknown[]);
  } finally {
    syncCtx = outer;
  }
}

/** `fn.apply(self, args)` in a storage frame of its own bound to `ctx` (for `async` turns). */
export function runInCall(ctx: CallContext, fn: Fn, self: unknown, args: readonly unknown[]): unknown {
  return storage.run(ctx, callSync, ctx, fn, self, args);
}

const AsyncFunction = (async () => {}).constructor;

/** Whether `fn` is an `async function`: only those need a storage frame for their awaits. */
export function isAsyncFunction(fn: Fn): boolean {
  return fn instanceof AsyncFunction;
}

/** Identities the chain passed through up to and including `ctx`, outermost first. */
export function pathOf(ctx: CallContext | undefined): string[] {
  if (ctx === undefined) return [];
  const path = ctx.parent ? pathOf(ctx.parent) : ctx.origin ? ctx.origin.split(' ') : [];
  path.push(ctx.identity);
  return path;
}

/**
 * The part of the chain's path that calls made by `ctx` carry across processes: from the first
 * actor of a non-reentrant interface on (`reentrant(identity)` tells), or nothing. A deadlock is
 * only ever found at a non-reentrant actor that is already on the path, and its message names the
 * cycle from that actor on; so what comes before it is never shown, and a chain through reentrant
 * actors only (the default) carries no path at all: its calls are that much shorter. A path that
 * came over the wire (`origin`) was cut so already: it starts with a non-reentrant actor.
 */
export function deadlockPath(ctx: CallContext, reentrant: (identity: string) => boolean): string[] {
  const path = pathOf(ctx);
  let outermost = ctx;
  while (outermost.parent !== undefined) outermost = outermost.parent;
  if (outermost.origin) return path;
  const first = path.findIndex((identity) => !reentrant(identity));
  return first < 0 ? [] : path.slice(first);
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

export function originFromHeaders(headers: Record<string, string>): string | undefined {
  return headers[PATH_HEADER] || undefined;
}
