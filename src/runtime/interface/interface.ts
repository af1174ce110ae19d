// An actor interface is one Avro protocol. `defineInterface` keeps the literal type (for inferred
// proxy and implementation types) and the parsed Avro service (for the wire) side by side.
import { readFileSync } from 'node:fs';
import { readIdl, serviceForProtocol, type AvroService } from './avro.ts';
import type { AvroProtocol, AvroSchema, Infer, MethodArgs, MethodName, MethodResult } from './avro-types.ts';

export interface InterfaceOptions {
  /** Reentrancy along a call chain (default true): A → B → A runs A's nested call at once. */
  readonly reentrant?: boolean;
  /** Methods that may run beside other turns (read-only queries): they never wait for the mailbox. */
  readonly interleave?: readonly string[];
  /** Stateless worker (Orleans' [StatelessWorker]): up to `maxLocal` activations per host and id, used round-robin, no placement. */
  readonly stateless?: boolean | { readonly maxLocal?: number };
  /** Deactivate after this long without calls (ms); overrides the host group's `idleTimeout`. */
  readonly idleTimeoutMs?: number;
  /** Default deadline of calls to this interface (ms), and per method. Callers may shorten it. */
  readonly timeoutMs?: number;
  readonly methodTimeoutsMs?: Readonly<Record<string, number>>;
  /**
   * Client sessions bound to this actor: the Avro types of their messages (`inbound`, to the
   * actor) and of pushes (`outbound`, to the client). Without them, messages are raw bytes.
   */
  readonly session?: { readonly inbound?: AvroSchema; readonly outbound?: AvroSchema };
}

export interface ActorInterface<P extends AvroProtocol = AvroProtocol, O extends InterfaceOptions = InterfaceOptions> {
  /** The protocol name: the interface part of an identity (`IPlayer` in `IPlayer/1`). */
  readonly name: string;
  readonly protocol: P;
  readonly service: AvroService;
  /** Hex MD5 of the protocol; peers compare it to detect diverging definitions. */
  readonly fingerprint: string;
  /** As given (their literal type too: session message types are inferred from it). */
  readonly options: O;
}

/** What a client session sends an actor of interface `I`: a value of its `session.inbound` type, else bytes. */
export type SessionInbound<I> = I extends ActorInterface<AvroProtocol, infer O> ? (O extends { readonly session: { readonly inbound: infer S } } ? Infer<S> : Uint8Array) : never;

/** What an actor of interface `I` pushes to its sessions: a value of its `session.outbound` type, else bytes. */
export type SessionOutbound<I> = I extends ActorInterface<AvroProtocol, infer O> ? (O extends { readonly session: { readonly outbound: infer S } } ? Infer<S> : Buffer) : never;

// A protocol's full name: `IPlayer`, or `game.IPlayer` when it has a namespace. `koala.*` is reserved.
const INTERFACE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export function defineInterface<const P extends AvroProtocol, const O extends InterfaceOptions = {}>(protocol: P, options: O = {} as O): ActorInterface<P, O> {
  const service = serviceForProtocol(protocol);
  const name = service.name;
  if (!INTERFACE_NAME.test(name)) {
    throw new TypeError(`interface name "${name}" is not valid: use letters, digits and _ (for example IPlayer)`);
  }
  return Object.freeze({ name, protocol, service, fingerprint: service.hash.toString('hex'), options });
}

/** Loads an interface from an `.avdl` (Avro IDL) file. Its types are not inferred; annotate them if needed. */
export function interfaceFromIdl(file: string | URL, options: InterfaceOptions = {}): ActorInterface<AvroProtocol> {
  const protocol = readIdl(readFileSync(file, 'utf8')) as AvroProtocol;
  return defineInterface(protocol, options);
}

type Awaitable<T> = T | Promise<T>;

// Deferring through conditional types keeps the compiler from expanding the recursive Avro
// mapping against the generic constraint (which it reports as "excessively deep").
type Method<A, R> = A extends readonly unknown[] ? (...args: A) => R : never;

/** What an implementation class must provide: every method of the protocol, with its exact signature. */
export type ActorImplementation<I extends ActorInterface> =
  I extends ActorInterface<infer P>
    ? { [M in MethodName<P>]: Method<MethodArgs<P, M>, Awaitable<MethodResult<P, M>>> }
    : never;

/** What callers get: every method returns a promise of its Avro-typed result. */
export type ActorProxy<I extends ActorInterface> =
  I extends ActorInterface<infer P>
    ? { readonly [M in MethodName<P>]: Method<MethodArgs<P, M>, Promise<MethodResult<P, M>>> }
    : never;
