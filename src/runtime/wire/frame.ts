// Frames: the envelopes produced in one event-loop turn go out together in one binary frame
// (up to a batch's size: see BATCH_ENVELOPES), written straight into a reused, growing buffer (the
// only copy is one per frame).
//
// The envelope codec is written by hand for the one record it handles (the bytes are exactly
// avsc's encoding of ENVELOPE_SCHEMA; test/wire.test.ts checks that). avsc's generic codec costs
// an object per header map, a copy per payload and a string re-encoding per forwarded field; on the
// path client → gateway → host every call is coded eight times, so that is most of a call's CPU.
// Decoded payloads are views of the frame, not copies: what keeps one beyond the call it came
// with copies it (argument and result decoding do). A decoded call can also remember where its
// fields lie, so that a gateway forwards it by copying bytes.
//
// Inherited calls (protocol version 2). A REQUEST or ONEWAY whose iface is empty takes its iface,
// method, chain, deadline, epoch and headers from the last REQUEST or ONEWAY before it in the same
// frame; its own method, chain, deadline, epoch and headers are empty (a zero byte each), so that
// only kind, id, key and payload travel. In an actor's fan-out (one turn calling many actors of
// one interface with one method) `ping(2)` to `t1` is then 13 bytes instead of 30, and neither
// the writer nor the reader handles the five fields after the key. It is still an Envelope record
// as avsc encodes it; no call has an empty iface otherwise. A writer sends them only to peers that
// speak INHERITED_CALLS_VERSION (`inheritCalls`), and never as a frame's first call.
import { copyBytes, longSize, NO_HEADERS, Reader, RememberedBytes, RepeatedMap, RepeatedString, RepeatedStringWriter, ShortStrings, writeBytes, writeLong, writeString, type Utf8Buffer } from './avro-binary.ts';
import type { MethodCodec, ValueCodec } from './value-codec.ts';
import { ENVELOPE_KINDS, type Envelope, type EnvelopeKind } from './schemas.ts';

const INITIAL_SIZE = 64 * 1024;

/**
 * A batch is sent as soon as it holds this many envelopes, without waiting for the end of the
 * turn. A turn that produces a thousand calls then hands the first ones to the next process while
 * it still writes the rest, so that on every hop the sender and the receiver work at once instead
 * of taking turns (each waiting for the other's whole batch). Per-frame costs (a write, the
 * WebSocket header, a read and a 'message' event) stay small beside 128 envelopes' work. With
 * 1 000 calls in flight this raised throughput by about a third, both host to host and on the
 * gateway path (bench/README.md, "Session 4").
 */
export const BATCH_ENVELOPES = 128;
/** The same for bytes: a batch of big envelopes is sent once it holds this much. */
export const BATCH_BYTES = 64 * 1024;
/** What a written envelope may take beyond its strings, headers and payload: ten varints, at most. */
const FIXED_BOUND = 10 * 10;

export { NO_HEADERS };

const KIND_INDEX: Record<string, number> = Object.fromEntries(ENVELOPE_KINDS.map((k, i) => [k, i]));
// RESPONSE, ERROR and REDIRECT are consecutive kinds.
const ANSWER_KINDS_FROM = KIND_INDEX.RESPONSE!;
const ANSWER_KINDS_TO = KIND_INDEX.REDIRECT! + 1;

/**
 * Where a decoded envelope's fields lie in its frame: `[routeStart, routeEnd)` holds iface, key,
 * method and chain, `[tailStart, end)` headers and payload. A gateway forwards a call by writing a
 * new kind, id, deadline and epoch around these two byte ranges.
 */
export interface RawSpan {
  frame: Buffer;
  routeStart: number;
  routeEnd: number;
  tailStart: number;
  end: number;
}

/** Where a decoded envelope keeps its RawSpan (a symbol: it is not one of the envelope's fields). */
export const RAW: unique symbol = Symbol('koala.wire.raw');

/** A decoded envelope: the Envelope fields, plus where it came from. */
export interface DecodedEnvelope extends Envelope {
  /** Calls read with `spans` only (answers are never forwarded). */
  [RAW]: RawSpan | undefined;
  /** Where the payload lies: `payload` is `frame[payloadStart, payloadEnd)`; decode in place from here on hot paths. */
  readonly frame: Buffer;
  readonly payloadStart: number;
  readonly payloadEnd: number;
}

// ---- writing ---------------------------------------------------------------------------------

/** The call fields a writer needs besides kind, id, deadline and epoch (an Envelope has them all). */
export interface CallFields {
  iface: string;
  key: string;
  method: string;
  chain: string;
  headers: Record<string, string>;
}

function headersBound(headers: Record<string, string>): number {
  if (headers === NO_HEADERS) return 1;
  let n = 20;
  for (const k in headers) n += 20 + 3 * (k.length + String(headers[k]).length);
  return n;
}

const REQUEST_INDEX = KIND_INDEX.REQUEST!;
const ONEWAY_INDEX = KIND_INDEX.ONEWAY!;
/** An inherited call's method, chain, deadline, epoch and headers: empty, a zero byte each. */
const INHERITED_FIELDS = 5;
const RESPONSE_INDEX = KIND_INDEX.RESPONSE!;

function kindIndex(kind: EnvelopeKind): number {
  // The two kinds nearly every envelope has, by comparison: a lookup by a key that varies is a
  // megamorphic keyed load in V8 (~100 instructions).
  if (kind === 'REQUEST') return REQUEST_INDEX;
  if (kind === 'RESPONSE') return RESPONSE_INDEX;
  const i = KIND_INDEX[kind];
  if (i === undefined) throw new Error(`unknown envelope kind ${String(kind)}`);
  return i;
}

/**
 * A call's fields after its key (method, chain, deadline, epoch, headers) as last written or read,
 * with their bytes. The calls of a fan-out repeat them all (one turn's chain and headers, its
 * deadline as a budget counted from one clock reading): the writer then copies ~20 bytes as words
 * instead of writing five fields, and the reader compares them instead of reading five fields.
 */
class TailCache {
  readonly bytes = new RememberedBytes();
  method = '';
  chain = '';
  deadline = 0;
  epoch = 0;
  headers: Record<string, string> = NO_HEADERS;
  /** Where the chain ends and the headers start, from the start of the bytes (kept by the reader). */
  chainEnd = 0;
  headersStart = 0;

  /** Whether these are the fields remembered (with their bytes). */
  holds(method: string, chain: string, deadline: number, epoch: number, headers: Record<string, string>): boolean {
    return this.bytes.size > 0 && method === this.method && chain === this.chain && deadline === this.deadline && epoch === this.epoch && headers === this.headers;
  }

  /** Remembers the fields and their bytes `[start, end)` of `view`'s buffer; false (nothing remembered) if they are too long. */
  remember(view: DataView, start: number, end: number, method: string, chain: string, deadline: number, epoch: number, headers: Record<string, string>): boolean {
    if (!this.bytes.remember(view, start, end)) return false;
    this.method = method;
    this.chain = chain;
    this.deadline = deadline;
    this.epoch = epoch;
    this.headers = headers;
    return true;
  }
}

export class FrameWriter {
  #buf = Buffer.allocUnsafe(INITIAL_SIZE) as Utf8Buffer;
  #view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.length);
  /** The last (frozen, so unchanging) headers object written, and its bytes. */
  #lastHeaders: Record<string, string> | undefined;
  #lastHeadersBytes = Buffer.alloc(0);
  // The fields that repeat from call to call (not the key: a fan-out spreads over many actors).
  readonly #ifaces = new RepeatedStringWriter();
  readonly #methods = new RepeatedStringWriter();
  readonly #chains = new RepeatedStringWriter();
  /** The last call written's fields after its key. */
  readonly #tail = new TailCache();
  /** Whether calls may inherit their fields (the peer speaks protocol version 2). */
  readonly #inheritCalls: boolean;
  /**
   * The interface of the last call written in this frame, when the tail cache holds that call's
   * other fields (so a call that matches both may inherit them); else undefined.
   */
  #inheritFrom: string | undefined;
  #pos = 0;
  #count = 0;

  constructor(inheritCalls = false) {
    this.#inheritCalls = inheritCalls;
  }

  get count(): number {
    return this.#count;
  }

  get size(): number {
    return this.#pos;
  }

  /** Whether the batch is big enough to send now rather than at the end of the turn (BATCH_ENVELOPES). */
  get full(): boolean {
    return this.#count >= BATCH_ENVELOPES || this.#pos >= BATCH_BYTES;
  }

  /** Room for `n` more bytes at the end. */
  #reserve(n: number): void {
    if (this.#pos + n > this.#buf.length) this.#grow(this.#pos + n, this.#pos);
  }

  /** A buffer of at least `size` bytes (at least twice the old one), with the old one's first `keep` bytes. */
  #grow(size: number, keep: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, size)) as Utf8Buffer;
    this.#buf.copy(next, 0, 0, keep);
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.length);
  }

  /** Appends one envelope. Throws (leaving the batch intact) if a field has the wrong type. */
  write(env: Envelope): void {
    this.writeCall(env.kind, env.id, env, env.deadline, env.epoch, env.payload);
  }

  /** Appends a call-shaped envelope (any kind) with `payload`. Throws (batch intact) if a field has the wrong type. */
  writeCall(kind: EnvelopeKind, id: number, f: CallFields, deadline: number, epoch: number, payload: Buffer): void {
    const pos = this.#callHead(kind, id, f, deadline, epoch, payload);
    this.#pos = writeBytes(this.#buf, pos, payload);
    this.#count++;
  }

  /**
   * Appends a REQUEST or ONEWAY whose payload is a method's arguments, each encoded in place with
   * its parameter's type (the encoding of the method's request record, without building one).
   * Check the arguments first (`checkArgs`): an invalid one may encode to garbage.
   */
  writeArgs(kind: EnvelopeKind, id: number, f: CallFields, deadline: number, epoch: number, method: MethodCodec, args: readonly unknown[]): void {
    this.#encodePayload(this.#callHead(kind, id, f, deadline, epoch, undefined), method, args);
  }

  /** Writes everything of a call but its payload (with room reserved for `payload`, if given); returns where the payload goes. */
  #callHead(kind: EnvelopeKind, id: number, f: CallFields, deadline: number, epoch: number, payload: Buffer | undefined): number {
    // Whether the fields after the key are the remembered (checked) ones: a pure comparison.
    const sameTail = this.#tail.holds(f.method, f.chain, deadline, epoch, f.headers);
    // An inherited call first: the fields it shares with the frame's previous call are the very
    // values written (and checked) for that call, so only what differs is checked here.
    const from = this.#inheritFrom;
    if (sameTail && from !== undefined && f.iface === from && (kind === 'REQUEST' || kind === 'ONEWAY')) {
      if (payload !== undefined && !Buffer.isBuffer(payload)) throw new Error('envelope payload must be a Buffer');
      return this.#inheritedHead(kind === 'REQUEST' ? REQUEST_INDEX : ONEWAY_INDEX, id, f.key, payload?.length ?? 0);
    }
    const k = kindIndex(kind);
    // The cached headers were checked when cached, and are frozen.
    const cached = f.headers === this.#lastHeaders;
    checkFields(f, id, deadline, epoch, payload, cached);
    const strings = f.iface.length + f.key.length + f.method.length + f.chain.length;
    const headers = cached ? this.#lastHeadersBytes.length : headersBound(f.headers);
    this.#reserve(FIXED_BOUND + 3 * strings + headers + (payload?.length ?? 0));
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = k << 1;
    pos = writeLong(buf, pos, id);
    const call = k === REQUEST_INDEX || k === ONEWAY_INDEX;
    // An empty iface marks an inherited call.
    if (call && f.iface.length === 0) throw new Error(`a ${kind} needs an interface name (iface)`);
    const view = this.#view;
    pos = this.#ifaces.write(buf, view, pos, f.iface);
    pos = writeString(buf, pos, f.key);
    pos = sameTail ? this.#tail.bytes.write(view, pos) : this.#writeTail(pos, f, deadline, epoch);
    // Only a remembered tail can be recognised again (not one with mutable headers).
    this.#inheritFrom = call && this.#inheritCalls && this.#tail.bytes.size > 0 ? f.iface : undefined;
    return pos;
  }

  /** An inherited call's head: kind, id, an empty iface, the key, five empty fields. */
  #inheritedHead(k: number, id: number, key: string, payloadBytes: number): number {
    if (typeof key !== 'string') throw new Error('envelope iface, key, method and chain must be strings');
    if (!Number.isSafeInteger(id)) throw new Error('envelope id, deadline and epoch must be integers');
    this.#reserve(FIXED_BOUND + 3 * key.length + payloadBytes);
    const buf = this.#buf;
    let pos = writeLong(buf, this.#pos + 1, id);
    buf[this.#pos] = k << 1;
    buf[pos] = 0;
    pos = writeString(buf, pos + 1, key);
    buf[pos] = 0;
    buf[pos + 1] = 0;
    buf[pos + 2] = 0;
    buf[pos + 3] = 0;
    buf[pos + 4] = 0;
    return pos + INHERITED_FIELDS;
  }

  /** Writes a call's fields after its key, and remembers them for the next call (TailCache). */
  #writeTail(start: number, f: CallFields, deadline: number, epoch: number): number {
    const buf = this.#buf;
    const view = this.#view;
    let pos = this.#methods.write(buf, view, start, f.method);
    pos = this.#chains.write(buf, view, pos, f.chain);
    pos = writeLong(buf, pos, deadline);
    pos = writeLong(buf, pos, epoch);
    pos = this.#writeHeaders(pos, f.headers);
    // Only headers that cannot change (none, or frozen ones: #writeHeaders caches those) may be copied as bytes later.
    const unchanging = f.headers === NO_HEADERS || f.headers === this.#lastHeaders;
    if (unchanging) this.#tail.remember(view, start, pos, f.method, f.chain, deadline, epoch, f.headers);
    else this.#tail.bytes.forget();
    return pos;
  }

  /**
   * Appends an answer (RESPONSE, ERROR, REDIRECT): only kind, id and payload carry anything; the
   * other fields are empty (the requester matches answers by id).
   */
  writeAnswer(kind: EnvelopeKind, id: number, payload: Buffer): void {
    this.#reserve(FIXED_BOUND + payload.length);
    const pos = this.#answerHead(kindIndex(kind), id);
    this.#pos = writeBytes(this.#buf, pos, payload);
    this.#count++;
  }

  /** Appends an answer whose payload is `frame[start, end)` (an answer being passed on). */
  writeAnswerBytes(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void {
    this.#reserve(FIXED_BOUND + end - start);
    let pos = this.#answerHead(kindIndex(kind), id);
    pos = writeLong(this.#buf, pos, end - start);
    this.#pos = copyBytes(frame, start, end, this.#buf, pos);
    this.#count++;
  }

  /** Appends an answer whose payload is `codec`'s encoding of `value`, encoded in place. Throws (batch intact) if `value` does not encode. */
  writeAnswerValue(kind: EnvelopeKind, id: number, codec: ValueCodec, value: unknown): void {
    this.#reserve(FIXED_BOUND);
    this.#encodePayload(this.#answerHead(kindIndex(kind), id), codec, value);
  }

  /** Re-sends a decoded call with a new kind, id, deadline and epoch; its other fields are copied as bytes. */
  forwardCall(kind: EnvelopeKind, id: number, raw: RawSpan, deadline: number, epoch: number): void {
    // Its fields are copied as bytes, not known here: the next call does not inherit them.
    this.#inheritFrom = undefined;
    const route = raw.routeEnd - raw.routeStart;
    const tail = raw.end - raw.tailStart;
    this.#reserve(FIXED_BOUND + route + tail);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = kindIndex(kind) << 1;
    pos = writeLong(buf, pos, id);
    pos = copyBytes(raw.frame, raw.routeStart, raw.routeEnd, buf, pos);
    pos = writeLong(buf, pos, deadline);
    pos = writeLong(buf, pos, epoch);
    pos = copyBytes(raw.frame, raw.tailStart, raw.end, buf, pos);
    this.#pos = pos;
    this.#count++;
  }

  /** Kind, id, four empty strings, deadline 0, epoch 0, no headers. */
  #answerHead(k: number, id: number): number {
    if (!Number.isSafeInteger(id)) throw new Error(`envelope id ${id} is not an integer`);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = k << 1;
    pos = writeLong(buf, pos, id);
    buf[pos] = 0;
    buf[pos + 1] = 0;
    buf[pos + 2] = 0;
    buf[pos + 3] = 0;
    buf[pos + 4] = 0;
    buf[pos + 5] = 0;
    buf[pos + 6] = 0;
    return pos + 7;
  }

  #writeHeaders(pos: number, headers: Record<string, string>): number {
    const buf = this.#buf;
    if (headers !== NO_HEADERS) {
      // The calls of one turn share one headers object: its bytes are copied, not encoded again.
      if (headers === this.#lastHeaders) return copyBytes(this.#lastHeadersBytes, 0, this.#lastHeadersBytes.length, buf, pos);
      const start = pos;
      const keys = Object.keys(headers);
      if (keys.length > 0) {
        pos = writeLong(buf, pos, keys.length);
        for (const k of keys) {
          pos = writeString(buf, pos, k);
          pos = writeString(buf, pos, headers[k]!);
        }
      }
      buf[pos++] = 0;
      if (Object.isFrozen(headers)) {
        this.#lastHeaders = headers;
        this.#lastHeadersBytes = Buffer.from(buf.subarray(start, pos));
      }
      return pos;
    }
    buf[pos] = 0;
    return pos + 1;
  }

  /**
   * Encodes `value` as the payload at `pos` (after the rest of the envelope): assumes a one-byte
   * length and moves the bytes if the payload turns out longer (≥ 64 bytes). On failure nothing
   * is committed.
   */
  #encodePayload(pos: number, codec: ValueCodec | MethodCodec, value: unknown): void {
    let end = codec.write(this.#buf, pos + 1, value);
    while (end < 0) {
      // A codec reports how many bytes it lacked as a negative position: grow and encode again.
      this.#grow(this.#buf.length - end, pos);
      end = codec.write(this.#buf, pos + 1, value);
    }
    const n = end - pos - 1;
    if (n < 64) {
      this.#buf[pos] = n << 1;
      this.#pos = end;
    } else {
      const prefix = longSize(n);
      if (end + prefix - 1 > this.#buf.length) this.#grow(end + prefix, end);
      this.#buf.copyWithin(pos + prefix, pos + 1, end);
      writeLong(this.#buf, pos, n);
      this.#pos = pos + prefix + n;
    }
    this.#count++;
  }

  /** Hands out the frame (a private copy: the socket may still hold it after we reuse our buffer). */
  take(): Buffer {
    // A frame's first call is always written in full.
    this.#inheritFrom = undefined;
    const frame = Buffer.from(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    this.#count = 0;
    if (this.#buf.length > 16 * INITIAL_SIZE) {
      this.#buf = Buffer.allocUnsafe(INITIAL_SIZE) as Utf8Buffer;
      this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.length);
    }
    return frame;
  }
}

/** The checks avsc's encoder made: a wrong field type must throw before anything is written. */
function checkFields(f: CallFields, id: number, deadline: number, epoch: number, payload: Buffer | undefined, headersChecked: boolean): void {
  if (typeof f.iface !== 'string' || typeof f.key !== 'string' || typeof f.method !== 'string' || typeof f.chain !== 'string') {
    throw new Error('envelope iface, key, method and chain must be strings');
  }
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(deadline) || !Number.isSafeInteger(epoch)) throw new Error('envelope id, deadline and epoch must be integers');
  if (payload !== undefined && !Buffer.isBuffer(payload)) throw new Error('envelope payload must be a Buffer');
  if (f.headers !== NO_HEADERS && !headersChecked) {
    if (typeof f.headers !== 'object' || f.headers === null) throw new Error('envelope headers must be a map of strings');
    for (const k in f.headers) if (typeof f.headers[k] !== 'string') throw new Error(`envelope header ${k} must be a string`);
  }
}

const ifaceNames = new RepeatedString();
const methodNames = new RepeatedString();
// The calls of one turn's fan-out share their chain and their `koala-path` header.
const chains = new RepeatedString();
const headerMaps = new RepeatedMap();
// Actor keys: one of the keys of the actors this process serves or calls, mostly.
const keys = new ShortStrings();

// The last call read's fields after its key (see TailCache).
const tails = new TailCache();

// ---- reading ---------------------------------------------------------------------------------

/**
 * Called with an answer's kind, id and where its payload lies in `frame` (no envelope object, no
 * payload view: the hot paths decode or copy straight from the frame).
 */
export type OnAnswer = (kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number) => void;

/**
 * Splits a frame back into envelopes. Throws on a truncated or malformed frame. With `spans`, each
 * call remembers where its fields lie (for forwarding it by copying bytes). With `onAnswer`,
 * answers (RESPONSE, ERROR, REDIRECT) go there instead of to `onEnvelope`.
 */
export function readFrame(frame: Buffer, onEnvelope: (env: DecodedEnvelope) => void, spans = false, onAnswer?: OnAnswer): void {
  const r = new Reader(frame);
  // A frame's calls inherit only from calls of the same frame (kept aside in case a callback reads another frame).
  const outer = lastCall;
  lastCall = undefined;
  try {
    while (r.pos < frame.length) {
      if (onAnswer !== undefined && isAnswerAt(frame, r.pos)) readAnswerTo(r, frame, onAnswer);
      else onEnvelope(readEnvelope(r, frame, spans));
    }
  } finally {
    lastCall = outer;
  }
}

/** The kind is the first byte (a one-byte varint for every kind there is). */
function isAnswerAt(frame: Buffer, pos: number): boolean {
  const k = frame[pos]! >> 1;
  return (frame[pos]! & 0x81) === 0 && k >= ANSWER_KINDS_FROM && k < ANSWER_KINDS_TO;
}

/** An answer's fields between its id and its payload, as Koala writes them: all empty, a zero byte each. */
const LEAN_FIELDS = 7;

function isLeanAt(frame: Buffer, pos: number): boolean {
  return pos + LEAN_FIELDS <= frame.length && (frame[pos]! | frame[pos + 1]! | frame[pos + 2]! | frame[pos + 3]! | frame[pos + 4]! | frame[pos + 5]! | frame[pos + 6]!) === 0;
}

function readAnswerTo(r: Reader, frame: Buffer, onAnswer: OnAnswer): void {
  const kind = ENVELOPE_KINDS[r.long()]!;
  const id = r.long();
  // iface, key, method, chain, deadline, epoch, headers: empty in Koala's answers (seven zero
  // bytes, skipped at once), ignored in anyone's.
  if (isLeanAt(frame, r.pos)) r.pos += LEAN_FIELDS;
  else {
    r.skipBytes();
    r.skipBytes();
    r.skipBytes();
    r.skipBytes();
    r.long();
    r.long();
    r.skipHeaders();
  }
  const n = r.long();
  if (n < 0 || r.pos + n > frame.length) throw new Error('truncated data (bytes)');
  const start = r.pos;
  r.pos += n;
  onAnswer(kind, id, frame, start, r.pos);
}

/** An answer as an envelope, for the paths that want one (the payload a view of `payload`). */
export function answerEnvelope(kind: EnvelopeKind, id: number, payload: Buffer): DecodedEnvelope {
  return { kind, id, iface: '', key: '', method: '', chain: '', deadline: 0, epoch: 0, headers: NO_HEADERS, payload, [RAW]: undefined, frame: payload, payloadStart: 0, payloadEnd: payload.length };
}

/**
 * A call read from a frame. Its payload view is made only when asked for: a gateway forwards the
 * bytes and a host decodes the arguments in place (`frame`, `payloadStart`, `payloadEnd`), and a
 * view per call (a Buffer object) was a measurable part of both.
 */
class DecodedCall implements DecodedEnvelope {
  kind: EnvelopeKind;
  id: number;
  iface: string;
  key: string;
  method: string;
  chain: string;
  deadline: number;
  epoch: number;
  headers: Record<string, string>;
  [RAW]: RawSpan | undefined;
  readonly frame: Buffer;
  readonly payloadStart: number;
  readonly payloadEnd: number;
  #payload: Buffer | undefined = undefined;

  constructor(kind: EnvelopeKind, id: number, iface: string, key: string, method: string, chain: string, deadline: number, epoch: number, headers: Record<string, string>, raw: RawSpan | undefined, frame: Buffer, payloadStart: number, payloadEnd: number) {
    this.kind = kind;
    this.id = id;
    this.iface = iface;
    this.key = key;
    this.method = method;
    this.chain = chain;
    this.deadline = deadline;
    this.epoch = epoch;
    this.headers = headers;
    this[RAW] = raw;
    this.frame = frame;
    this.payloadStart = payloadStart;
    this.payloadEnd = payloadEnd;
  }

  get payload(): Buffer {
    return (this.#payload ??= this.frame.subarray(this.payloadStart, this.payloadEnd));
  }
}

/** The last REQUEST or ONEWAY read in the frame being read: what an inherited call inherits. */
let lastCall: DecodedCall | undefined;

function readEnvelope(r: Reader, frame: Buffer, spans: boolean): DecodedEnvelope {
  const k = r.long();
  const kind = ENVELOPE_KINDS[k];
  if (kind === undefined) throw new Error(`invalid envelope kind index ${k}`);
  const id = r.long();
  const call = k === REQUEST_INDEX || k === ONEWAY_INDEX;
  if (call && frame[r.pos] === 0) return readInherited(r, frame, kind, id);
  const routeStart = r.pos;
  const iface = r.repeated(ifaceNames);
  const key = r.known(keys);
  const afterKey = r.pos;
  let method: string, chain: string, deadline: number, epoch: number, headers: Record<string, string>, routeEnd: number, tailStart: number;
  if (tails.bytes.matches(r.view, afterKey, r.end)) {
    // The same bytes as the last call's: the same values (headers included: a decoded map is frozen).
    method = tails.method;
    chain = tails.chain;
    deadline = tails.deadline;
    epoch = tails.epoch;
    headers = tails.headers;
    routeEnd = afterKey + tails.chainEnd;
    tailStart = afterKey + tails.headersStart;
    r.pos = afterKey + tails.bytes.size;
  } else {
    method = r.repeated(methodNames);
    chain = r.repeated(chains);
    routeEnd = r.pos;
    deadline = r.long();
    epoch = r.long();
    tailStart = r.pos;
    headers = r.headers(headerMaps);
    if (tails.remember(r.view, afterKey, r.pos, method, chain, deadline, epoch, headers)) {
      tails.chainEnd = routeEnd - afterKey;
      tails.headersStart = tailStart - afterKey;
    }
  }
  const payloadStart = r.skipBytes();
  // Only calls are ever forwarded: answers need no span.
  const raw = spans && (k < ANSWER_KINDS_FROM || k >= ANSWER_KINDS_TO) ? { frame, routeStart, routeEnd, tailStart, end: r.pos } : undefined;
  const decoded = new DecodedCall(kind, id, iface, key, method, chain, deadline, epoch, headers, raw, frame, payloadStart, r.pos);
  if (call) lastCall = decoded;
  return decoded;
}

/** A call with an empty iface (at `r.pos`): the fields of the frame's last call, its own key and payload. */
function readInherited(r: Reader, frame: Buffer, kind: EnvelopeKind, id: number): DecodedEnvelope {
  const from = lastCall;
  if (from === undefined) throw new Error(`a ${kind} with an empty iface inherits the fields of the call before it, but it is the frame's first call`);
  r.pos++;
  const key = r.known(keys);
  const at = r.pos;
  if (at + INHERITED_FIELDS > frame.length || (frame[at]! | frame[at + 1]! | frame[at + 2]! | frame[at + 3]! | frame[at + 4]!) !== 0) {
    throw new Error(`a ${kind} that inherits its fields (empty iface) must leave method, chain, deadline, epoch and headers empty`);
  }
  r.pos = at + INHERITED_FIELDS;
  const payloadStart = r.skipBytes();
  // No span: its route is not in its own bytes (a gateway forwarding it writes its fields anew).
  return new DecodedCall(kind, id, from.iface, key, from.method, from.chain, from.deadline, from.epoch, from.headers, undefined, frame, payloadStart, r.pos);
}
