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

const KEY = Symbol('koala.proxy.key');
const INVOKE = Symbol('koala.proxy.invoke');

interface ProxyBase {
  readonly [KEY]: string;
  readonly [INVOKE]: Invoker;
}

type ProxyClass = new (key: string, invoke: Invoker) => ProxyBase;

// One class per interface, its methods on the prototype: a proxy is then one small object, cheap
// enough to create per call (`this.getProxy(IFoo, id).bar()` is the common idiom).
const classes = new WeakMap<ActorInterface, ProxyClass>();
// The last interface asked for: callers make proxies of one interface many times in a row, and a
// comparison costs less than a WeakMap lookup.
let lastIface: ActorInterface | undefined;
let lastClass: ProxyClass | undefined;

function proxyClass(iface: ActorInterface): ProxyClass {
  if (iface === lastIface) return lastClass!;
  let cls = classes.get(iface);
  if (cls === undefined) {
    class Proxy implements ProxyBase {
      readonly [KEY]: string;
      readonly [INVOKE]: Invoker;
      constructor(key: string, invoke: Invoker) {
        this[KEY] = key;
        this[INVOKE] = invoke;
      }
    }
    for (const message of iface.service.messages) {
      Object.defineProperty(Proxy.prototype, message.name, {
        value(this: ProxyBase, ...args: unknown[]) {
          return this[INVOKE](iface, this[KEY], message, args);
        },
      });
    }
    classes.set(iface, (cls = Proxy));
  }
  lastIface = iface;
  lastClass = cls;
  return cls;
}

export function createProxy<I extends ActorInterface>(iface: I, id: string | number | bigint, invoke: Invoker): ActorProxy<I> {
  const Proxy = proxyClass(iface);
  return new Proxy(canonicalKey(id), invoke) as unknown as ActorProxy<I>;
}
