// Typed proxies: a plain object whose methods are the interface's messages. How a call travels
// (gateway, host-to-host, in-process) is the invoker's business; proxies are the same everywhere.
import type { AvroMessageTypes } from './avro.ts';
import type { ActorInterface, ActorProxy } from './interface.ts';

export type Invoker = (iface: ActorInterface, key: string, message: AvroMessageTypes, args: unknown[]) => Promise<unknown>;

/** Ids are strings on the wire; numbers are accepted and canonicalised (`1` and `"1"` are one actor). */
export function canonicalKey(id: string | number | bigint): string {
  if (typeof id === 'string') return id;
  if (typeof id === 'number' && !Number.isInteger(id)) throw new TypeError(`actor id ${id} is not an integer or a string`);
  // Beyond 2^53 a number no longer holds the integer that was written (2^53 + 1 becomes 2^53, someone
  // else's actor) and prints in exponent form (1e21 ≠ 1000000000000000000000n).
  if (typeof id === 'number' && !Number.isSafeInteger(id)) throw new TypeError(`actor id ${id} is too large for a number: pass it as a bigint or a string`);
  return String(id);
}

export function createProxy<I extends ActorInterface>(iface: I, id: string | number | bigint, invoke: Invoker): ActorProxy<I> {
  const key = canonicalKey(id);
  const proxy: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const message of iface.service.messages) {
    proxy[message.name] = (...args: unknown[]) => invoke(iface, key, message, args);
  }
  return Object.freeze(proxy) as unknown as ActorProxy<I>;
}
