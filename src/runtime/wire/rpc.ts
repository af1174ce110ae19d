// Method calls on top of envelopes: encoding arguments and results with the interface's Avro
// types, and turning answers back into values or typed errors.
import { KoalaError, fromErrorRecord, toErrorRecord } from '../errors/errors.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorInterface } from '../interface/interface.ts';
import { answerEnvelope } from './frame.ts';
import type { PendingRequest, Peer } from './peer.ts';
import { errorRecordType, positionType, type Envelope, type EnvelopeKind, type Position } from './schemas.ts';
import { decodeArguments, decodeValue, encodeValue, methodCodec, type MethodCodec } from './value-codec.ts';

export function methodOf(iface: ActorInterface, method: string): AvroMessageTypes {
  const message = iface.service.message(method);
  // avsc looks the name up in a plain object: `constructor`, `toString`… must not pass for methods.
  if (message === undefined || !iface.service.messages.includes(message)) {
    const known = iface.service.messages.map((m) => m.name).join(', ');
    throw new KoalaError('UNKNOWN_METHOD', `${iface.name} has no method "${method}" (it has: ${known || 'none'})`);
  }
  return message;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 60)}…` : json;
  } catch {
    return String(value);
  }
}

/** Checks positional arguments against the method's parameter types: BAD_ARGUMENTS naming the parameter. */
export function checkArgs(iface: ActorInterface, message: AvroMessageTypes, args: readonly unknown[]): void {
  if (methodCodec(message).argsValid(args)) return;
  // Invalid: find what, to say so.
  const fields = message.requestType.fields;
  if (args.length !== fields.length) {
    const sig = fields.map((f) => `${f.name}: ${f.type.typeName}`).join(', ');
    throw new KoalaError('BAD_ARGUMENTS', `${iface.name}.${message.name}(${sig}) takes ${fields.length} argument${fields.length === 1 ? '' : 's'}, got ${args.length}`);
  }
  const params = methodCodec(message).params;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (!params[i]!.valid(args[i])) {
      throw new KoalaError('BAD_ARGUMENTS', `${iface.name}.${message.name}: argument "${field.name}" must be ${field.type.typeName}, got ${describeValue(args[i])}`);
    }
  }
}

/** Encodes positional arguments (after `checkArgs`). */
export function encodeArgs(iface: ActorInterface, message: AvroMessageTypes, args: readonly unknown[]): Buffer {
  checkArgs(iface, message, args);
  const fields = message.requestType.fields;
  const record: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) record[fields[i]!.name] = args[i];
  return encodeValue(message.requestType, record);
}

export function decodeArgs(message: AvroMessageTypes, payload: Buffer): unknown[] {
  try {
    return decodeArguments(message, payload);
  } catch (err) {
    throw new KoalaError('BAD_ARGUMENTS', `arguments of ${message.name} do not decode: ${(err as Error).message}`);
  }
}

/** Checks a method's result against its response type (a `void` method may return nothing); returns it as sent. */
export function checkResult(iface: ActorInterface, message: AvroMessageTypes, value: unknown): unknown {
  const type = message.responseType;
  const v = value === undefined && type.typeName === 'null' ? null : value;
  if (!methodCodec(message).result.valid(v)) {
    throw new KoalaError('INTERNAL', `${iface.name}.${message.name} returned ${describeValue(value)}, which is not a valid ${type.typeName}`);
  }
  return v;
}

export function encodeResult(iface: ActorInterface, message: AvroMessageTypes, value: unknown): Buffer {
  return encodeValue(message.responseType, checkResult(iface, message, value));
}

export function encodeError(err: unknown, actor = ''): Buffer {
  return errorRecordType.toBuffer(toErrorRecord(err, actor));
}

export function replyError(peer: Peer, request: Envelope, err: unknown, actor = ''): void {
  if (request.kind === 'REQUEST') peer.reply(request, 'ERROR', encodeError(err, actor));
}

/**
 * Answers a request with a method's result, encoded straight into the answer frame; a result that
 * is not of the method's type answers with the typed error instead. A ONEWAY gets no answer.
 */
export function replyResult(peer: Peer, request: Envelope, iface: ActorInterface, message: AvroMessageTypes, value: unknown, actor = ''): void {
  if (request.kind !== 'REQUEST') return;
  try {
    peer.replyValue(request, methodCodec(message).result, checkResult(iface, message, value));
  } catch (err) {
    peer.reply(request, 'ERROR', encodeError(err, actor));
  }
}

export type Answer = { kind: 'value'; value: unknown } | { kind: 'redirect'; position: Position };

/** Interprets an answer envelope: a decoded result, a redirect, or a thrown typed error. */
export function readAnswer(env: Envelope, message: AvroMessageTypes | undefined): Answer {
  switch (env.kind) {
    case 'RESPONSE':
      // A copy of a raw payload: the envelope's is a view of a whole frame, which it would keep alive.
      return { kind: 'value', value: message ? decodeValue(message.responseType, env.payload) : Buffer.from(env.payload) };
    case 'REDIRECT':
      return { kind: 'redirect', position: positionType.fromBuffer(env.payload) };
    case 'ERROR': {
      let rec;
      try {
        rec = errorRecordType.fromBuffer(env.payload);
      } catch {
        throw new KoalaError('BAD_FRAME', 'the remote sent an error that does not decode');
      }
      throw fromErrorRecord(rec);
    }
    default:
      throw new KoalaError('BAD_FRAME', `unexpected ${env.kind} envelope in answer to a request`);
  }
}

const unsettled = (): void => {
  throw new Error('ValueAnswer: settled before promise() made its Promise');
};
/** The answer `promise()` is making a Promise for (its executor runs at once, inside `new Promise`). */
let settling: ValueAnswer | undefined;

/**
 * Who sent a call to a cached position, and may take it back if that position proves stale (the
 * router): it then sends the call where the actor is now.
 */
export interface StaleCallHandler {
  /** An answer other than RESPONSE came: true if it took the call back (a redirect, or a refusal before running). */
  takeBack(call: ValueAnswer, answer: Envelope): boolean;
  /** The connection died after the call was sent (the call may have run: it is not retried). */
  lost(call: ValueAnswer): void;
}

/**
 * A call's record: its envelope's fields, the Peer's record of it while it is pending, and what
 * settles its Promise (`promise()`): its result, decoded from the answer frame, or its typed error.
 * One object of one class per call, for every sender on a hot path (clients, routers, service
 * proxies): a subclass per sender cost a measurable part of a call (each `super()` a call of its
 * own where V8 did not inline it). A routed call also holds what its router needs to send it again
 * (`via`, `args`, `position`).
 */
export class ValueAnswer implements PendingRequest {
  /** Set by the Peer when the call is sent. */
  id = 0;
  iface: string;
  key: string;
  method: string;
  deadline: number;
  readonly chain: string;
  readonly epoch = 0;
  readonly headers: Record<string, string>;
  /** How the method's arguments are written and its result read. */
  readonly codec: MethodCodec;
  readonly target: ActorInterface;
  /** The router that sent it (undefined: nobody takes it back), with its arguments and the position it went to. */
  readonly via: StaleCallHandler | undefined;
  readonly args: readonly unknown[] | undefined;
  readonly position: Position | undefined;
  #resolve: (value: unknown) => void = unsettled;
  #reject: (err: Error) => void = unsettled;

  constructor(target: ActorInterface, key: string, message: AvroMessageTypes, deadline: number, chain: string, headers: Record<string, string>, via?: StaleCallHandler, args?: readonly unknown[], position?: Position) {
    this.iface = target.name;
    this.key = key;
    this.method = message.name;
    this.deadline = deadline;
    this.chain = chain;
    this.headers = headers;
    this.codec = methodCodec(message);
    this.target = target;
    this.via = via;
    this.args = args;
    this.position = position;
  }

  get message(): AvroMessageTypes {
    return this.codec.message;
  }

  /** Settles the call as `result` settles (the call sent again elsewhere). */
  settleWith(result: Promise<unknown>): void {
    result.then(this.#resolve, this.#reject);
  }

  /** The call's Promise; make it before the call is sent (a send may fail at once). */
  promise(): Promise<unknown> {
    settling = this;
    return new Promise(ValueAnswer.#takeSettlers);
  }

  /** One executor for every call's Promise: a closure per call (and the context it captured) was garbage on every call. */
  static #takeSettlers(resolve: (value: unknown) => void, reject: (err: Error) => void): void {
    settling!.#resolve = resolve;
    settling!.#reject = reject;
    settling = undefined;
  }

  answer(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void {
    try {
      if (kind === 'RESPONSE') {
        this.#resolve(this.codec.result.decode(frame, start, end));
        return;
      }
      const env = answerEnvelope(kind, id, frame.subarray(start, end));
      if (this.via !== undefined && this.via.takeBack(this, env)) return;
      const answer = readAnswer(env, this.message); // throws the typed error
      if (answer.kind === 'redirect') throw new KoalaError('INTERNAL', `${this.iface} answered with a redirect where none is followed`);
      this.#resolve(answer.value);
    } catch (err) {
      this.#reject(err as Error);
    }
  }

  fail(err: Error): void {
    this.via?.lost(this);
    this.#reject(err);
  }
}
