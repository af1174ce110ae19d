// Follows a Consul endpoint with blocking queries: ask with the last X-Consul-Index, get an answer
// when the data changed (or after `wait`), ask again. Failures are retried with exponential
// backoff. The rules for the index are Consul's ("Blocking Queries" in its API docs), as the
// `consul` npm package applied them: a missing index means the endpoint cannot be watched; an index
// of 0 is an error; an index that went backwards (the agent's state was reset) starts over from 0.
import { StatusError, type HttpResponse } from './http-response.ts';

export interface WatchOptions {
  /** First retry after 2 × this, doubling on each failure in a row… */
  backoffFactorMs: number;
  /** …up to this. */
  backoffMaxMs: number;
}

/**
 * `query(index, signal)` sends one blocking query and resolves with the answer (throwing on a
 * failure); `onChange` gets every answer with a new index. Returns a function that stops.
 */
export function blockingWatch(
  query: (index: string, signal: AbortSignal) => Promise<HttpResponse>,
  onChange: (res: HttpResponse) => void,
  onError: (err: Error) => void,
  opts: WatchOptions,
): () => void {
  const stop = new AbortController();
  let index = 0n;
  let failures = 0;
  let retry: NodeJS.Timeout | undefined;

  const fail = (err: Error, fatal: boolean) => {
    if (stop.signal.aborted) return;
    onError(err);
    if (fatal) return stop.abort();
    failures++;
    retry = setTimeout(run, Math.min(2 ** failures * opts.backoffFactorMs, opts.backoffMaxMs));
  };

  const run = () => {
    if (stop.signal.aborted) return;
    query(index.toString(), stop.signal).then(
      (res) => {
        if (stop.signal.aborted) return;
        failures = 0;
        const next = parseIndex(res.index);
        if (next === undefined) return fail(new Error(`Consul answered without an X-Consul-Index: the endpoint cannot be watched`), true);
        if (next === 0n) return fail(new Error('Consul returned a zero X-Consul-Index'), false);
        if (next !== index) {
          index = next < index ? 0n : next;
          onChange(res);
        }
        setImmediate(run);
      },
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        // A 400 is our mistake: asking again cannot help.
        fail(e, e instanceof StatusError && e.status === 400);
      },
    );
  };

  setImmediate(run);
  return () => {
    clearTimeout(retry);
    stop.abort();
  };
}

function parseIndex(value: string | undefined): bigint | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return BigInt(value);
}
