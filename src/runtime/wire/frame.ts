// Frames: every envelope produced in one event-loop turn goes out in one binary frame, written
// straight into a reused, growing buffer (the only copy is one per frame).
//
// The envelope codec is written by hand for the one record it handles (the bytes are exactly
// avsc's encoding of ENVELOPE_SCHEMA; test/wire.test.ts checks that). avsc's generic codec costs
// an object per header map, a copy per payload and a string re-encoding per forwarded field; on the
// path client → gateway → host every call is coded eight times, so that is most of a call's CPU.
// Decoded payloads are views of the frame (ws hands every frame out as its own buffer), and a
// decoded call remembers where its fields lie so that a gateway can forward it by copying bytes.
import type { AvroType } from '../interface/avro.ts';
import { ENVELOPE_KINDS, type Envelope, type EnvelopeKind } from './schemas.ts';

const INITIAL_SIZE = 64 * 1024;
/** What a written envelope may take beyond its strings, headers and payload: ten varints, at most. */
const FIXED_BOUND = 10 * 10;

/** The header map most envelopes carry: shared, so decoding allocates none. */
export const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

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
  /** Calls only (answers are never forwarded). */
  [RAW]: RawSpan | undefined;
}

type Utf8Buffer = Buffer & { utf8Slice(start: number, end: number): string; utf8Write(s: string, offset: number, length?: number): number };

// ---- varints (Avro longs: zigzag, then base-128 little-endian) --------------------------------

/** Writes `n` (an integer of at most 53 bits) and returns the position after it. */
function writeLong(buf: Buffer, pos: number, n: number): number {
  if (n >= 0 && n < 0x4000000) {
    // Small non-negative values (ids, budgets, lengths): 32-bit arithmetic suffices.
    let z = n << 1;
    while (z >= 0x80) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
    return pos;
  }
  // Large values (epochs are ~2^50): the zigzag value split into 32-bit halves, so that each
  // 7-bit group is still integer arithmetic.
  const z = n >= 0 ? n * 2 : -n * 2 - 1;
  let lo = z % 0x100000000;
  let hi = (z - lo) / 0x100000000;
  if (hi === 0) {
    while (lo >= 0x80) {
      buf[pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    buf[pos++] = lo;
    return pos;
  }
  // 28 bits from the low half, then the remaining 4 bits of it with the high half.
  for (let i = 0; i < 4; i++) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  hi = (hi * 16 + lo) >>> 0 === hi * 16 + lo ? hi * 16 + lo : -1;
  if (hi < 0) return writeLongSlow(buf, pos - 4, z);
  while (hi >= 0x80) {
    buf[pos++] = (hi & 0x7f) | 0x80;
    hi >>>= 7;
  }
  buf[pos++] = hi;
  return pos;
}

/** Beyond 2^36 × 16 (zigzag values over 2^64 never occur; over 2^54 they are inexact anyway). */
function writeLongSlow(buf: Buffer, pos: number, z: number): number {
  while (z >= 0x80) {
    buf[pos++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  buf[pos++] = z;
  return pos;
}

function writeString(buf: Utf8Buffer, pos: number, s: string): number {
  const n = s.length;
  if (n < 64) {
    // Most strings are short ASCII: one length byte, then one byte per character.
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos + 1 + i] = c;
    }
    if (i === n) {
      buf[pos] = n << 1;
      return pos + 1 + n;
    }
  }
  const bytes = Buffer.byteLength(s);
  pos = writeLong(buf, pos, bytes);
  buf.utf8Write(s, pos, bytes);
  return pos + bytes;
}

function writeBytes(buf: Buffer, pos: number, b: Uint8Array): number {
  pos = writeLong(buf, pos, b.length);
  buf.set(b, pos);
  return pos + b.length;
}

/**
 * Remembers the last string read in one field (an interface or method name: the same few values
 * arrive over and over) and returns that string again for the same bytes: comparing a few bytes
 * costs less than creating a string, and creates no garbage.
 */
class RepeatedString {
  readonly #bytes = Buffer.alloc(64);
  #length = -1;
  #value = '';

  read(buf: Utf8Buffer, start: number, n: number): string {
    if (n === this.#length) {
      const bytes = this.#bytes;
      let i = 0;
      while (i < n && bytes[i] === buf[start + i]) i++;
      if (i === n) return this.#value;
    }
    const value = buf.utf8Slice(start, start + n);
    if (n <= 64) {
      buf.copy(this.#bytes, 0, start, start + n);
      this.#length = n;
      this.#value = value;
    }
    return value;
  }
}

const ifaceNames = new RepeatedString();
const methodNames = new RepeatedString();

class Truncated extends Error {
  constructor(what: string) {
    super(`truncated envelope (${what})`);
  }
}

/** Reads Avro longs, strings and bytes from one frame; throws on anything malformed. */
class Reader {
  buf: Utf8Buffer;
  pos = 0;

  constructor(buf: Buffer) {
    this.buf = buf as Utf8Buffer;
  }

  long(): number {
    const buf = this.buf;
    let b: number | undefined = buf[this.pos++];
    if (b === undefined) throw new Truncated('varint');
    let n = b & 0x7f;
    if (b < 0x80) return (n >>> 1) ^ -(n & 1);
    let shift = 7;
    // Up to 28 bits in 32-bit arithmetic, the rest in doubles (as avsc reads them).
    while (shift < 28) {
      b = buf[this.pos++];
      if (b === undefined) throw new Truncated('varint');
      n |= (b & 0x7f) << shift;
      if (b < 0x80) return (n >>> 1) ^ -(n & 1);
      shift += 7;
    }
    let z = n;
    let scale = 2 ** 28;
    for (let i = 4; ; i++) {
      b = buf[this.pos++];
      if (b === undefined) throw new Truncated('varint');
      z += (b & 0x7f) * scale;
      if (b < 0x80) break;
      if (i >= 9) throw new Error('varint longer than 64 bits');
      scale *= 128;
    }
    return (z % 2 ? -(z + 1) : z) / 2;
  }

  #length(what: string): number {
    const n = this.long();
    if (n < 0) throw new Error(`negative ${what} length`);
    if (this.pos + n > this.buf.length) throw new Truncated(what);
    return n;
  }

  string(): string {
    const n = this.#length('string');
    if (n === 0) return '';
    const start = this.pos;
    this.pos += n;
    return this.buf.utf8Slice(start, this.pos);
  }

  /** A string that usually repeats the previous one read with the same `cache`. */
  repeated(cache: RepeatedString): string {
    const n = this.#length('string');
    if (n === 0) return '';
    const start = this.pos;
    this.pos += n;
    return cache.read(this.buf, start, n);
  }

  bytes(): Buffer {
    const n = this.#length('bytes');
    const start = this.pos;
    this.pos += n;
    return this.buf.subarray(start, this.pos);
  }

  /** A map of strings; every entry takes at least two bytes, so no count may claim more (see avro.ts). */
  headers(): Record<string, string> {
    let out: Record<string, string> | undefined;
    for (;;) {
      let count = this.long();
      if (count === 0) return out ?? NO_HEADERS;
      if (count < 0) {
        count = -count;
        this.long(); // the block's size in bytes: we read the entries anyway
      }
      if (count * 2 > this.buf.length - this.pos) throw new Truncated('headers');
      out ??= {};
      for (let i = 0; i < count; i++) {
        const k = this.string();
        out[k] = this.string();
      }
    }
  }
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

function kindIndex(kind: EnvelopeKind): number {
  const i = KIND_INDEX[kind];
  if (i === undefined) throw new Error(`unknown envelope kind ${String(kind)}`);
  return i;
}

export class FrameWriter {
  #buf = Buffer.allocUnsafe(INITIAL_SIZE) as Utf8Buffer;
  #pos = 0;
  #count = 0;

  get count(): number {
    return this.#count;
  }

  get size(): number {
    return this.#pos;
  }

  /** Room for `n` more bytes at the end. */
  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n)) as Utf8Buffer;
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  /** Appends one envelope. Throws (leaving the batch intact) if a field has the wrong type. */
  write(env: Envelope): void {
    this.writeCall(env.kind, env.id, env, env.deadline, env.epoch, env.payload);
  }

  /** Appends a call-shaped envelope whose payload is `payload`, or `type`'s encoding of `value`. */
  writeCall(kind: EnvelopeKind, id: number, f: CallFields, deadline: number, epoch: number, payload: Buffer): void;
  writeCall<T>(kind: EnvelopeKind, id: number, f: CallFields, deadline: number, epoch: number, payload: undefined, type: AvroType<T>, value: T): void;
  writeCall<T>(kind: EnvelopeKind, id: number, f: CallFields, deadline: number, epoch: number, payload: Buffer | undefined, type?: AvroType<T>, value?: T): void {
    const k = kindIndex(kind);
    checkFields(f, id, deadline, epoch, payload);
    const strings = f.iface.length + f.key.length + f.method.length + f.chain.length;
    this.#reserve(FIXED_BOUND + 3 * strings + headersBound(f.headers) + (payload?.length ?? 0));
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = k << 1;
    pos = writeLong(buf, pos, id);
    pos = writeString(buf, pos, f.iface);
    pos = writeString(buf, pos, f.key);
    pos = writeString(buf, pos, f.method);
    pos = writeString(buf, pos, f.chain);
    pos = writeLong(buf, pos, deadline);
    pos = writeLong(buf, pos, epoch);
    pos = this.#writeHeaders(pos, f.headers);
    if (payload !== undefined) {
      this.#pos = writeBytes(this.#buf, pos, payload);
      this.#count++;
    } else this.#encodePayload(pos, type!, value as T, undefined);
  }

  /**
   * Appends a REQUEST or ONEWAY whose payload is a method's arguments, each encoded in place with
   * its parameter's type (the encoding of the method's request record, without building one).
   * Check the arguments first (`checkArgs`): an invalid one may encode to garbage.
   */
  writeArgs(kind: EnvelopeKind, id: number, f: CallFields, deadline: number, epoch: number, params: readonly { readonly type: AvroType }[], args: readonly unknown[]): void {
    const k = kindIndex(kind);
    checkFields(f, id, deadline, epoch, undefined);
    const strings = f.iface.length + f.key.length + f.method.length + f.chain.length;
    this.#reserve(FIXED_BOUND + 3 * strings + headersBound(f.headers));
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = k << 1;
    pos = writeLong(buf, pos, id);
    pos = writeString(buf, pos, f.iface);
    pos = writeString(buf, pos, f.key);
    pos = writeString(buf, pos, f.method);
    pos = writeString(buf, pos, f.chain);
    pos = writeLong(buf, pos, deadline);
    pos = writeLong(buf, pos, epoch);
    pos = this.#writeHeaders(pos, f.headers);
    this.#encodePayload(pos, undefined, args, params);
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

  /** Appends an answer whose payload is `type`'s encoding of `value`, encoded in place. Throws (batch intact) if `value` does not encode. */
  writeAnswerValue<T>(kind: EnvelopeKind, id: number, type: AvroType<T>, value: T): void {
    this.#reserve(FIXED_BOUND);
    this.#encodePayload(this.#answerHead(kindIndex(kind), id), type, value, undefined);
  }

  /** Re-sends a decoded call with a new kind, id, deadline and epoch; its other fields are copied as bytes. */
  forwardCall(kind: EnvelopeKind, id: number, raw: RawSpan, deadline: number, epoch: number): void {
    const route = raw.routeEnd - raw.routeStart;
    const tail = raw.end - raw.tailStart;
    this.#reserve(FIXED_BOUND + route + tail);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = kindIndex(kind) << 1;
    pos = writeLong(buf, pos, id);
    pos += raw.frame.copy(buf, pos, raw.routeStart, raw.routeEnd);
    pos = writeLong(buf, pos, deadline);
    pos = writeLong(buf, pos, epoch);
    pos += raw.frame.copy(buf, pos, raw.tailStart, raw.end);
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
      const keys = Object.keys(headers);
      if (keys.length > 0) {
        pos = writeLong(buf, pos, keys.length);
        for (const k of keys) {
          pos = writeString(buf, pos, k);
          pos = writeString(buf, pos, headers[k]!);
        }
      }
    }
    buf[pos] = 0;
    return pos + 1;
  }

  /**
   * Encodes `value` as the payload at `pos` (after the rest of the envelope): assumes a one-byte
   * length and moves the bytes if the payload turns out longer (≥ 64 bytes). On failure nothing
   * is committed.
   */
  #encodePayload(pos: number, type: AvroType | undefined, value: unknown, params: readonly { readonly type: AvroType }[] | undefined): void {
    let end = encodeAt(this.#buf, pos + 1, type, value, params);
    while (end < 0) {
      // avsc reports how many bytes it lacked as a negative position: grow and encode again.
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#buf.length - end)) as Utf8Buffer;
      this.#buf.copy(next, 0, 0, pos);
      this.#buf = next;
      end = encodeAt(this.#buf, pos + 1, type, value, params);
    }
    const n = end - pos - 1;
    if (n < 64) {
      this.#buf[pos] = n << 1;
      this.#pos = end;
    } else {
      const prefix = writeLong(Buffer.allocUnsafe(10), 0, n);
      if (end + prefix - 1 > this.#buf.length) {
        const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, end + prefix)) as Utf8Buffer;
        this.#buf.copy(next, 0, 0, end);
        this.#buf = next;
      }
      this.#buf.copyWithin(pos + prefix, pos + 1, end);
      writeLong(this.#buf, pos, n);
      this.#pos = pos + prefix + n;
    }
    this.#count++;
  }

  /** Hands out the frame (a private copy: the socket may still hold it after we reuse our buffer). */
  take(): Buffer {
    const frame = Buffer.from(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    this.#count = 0;
    if (this.#buf.length > 16 * INITIAL_SIZE) this.#buf = Buffer.allocUnsafe(INITIAL_SIZE) as Utf8Buffer;
    return frame;
  }
}

/** `type`'s encoding of `value`, or (params) each argument's in turn, at `pos`; a negative result is how many bytes were lacking. */
function encodeAt(buf: Buffer, pos: number, type: AvroType | undefined, value: unknown, params: readonly { readonly type: AvroType }[] | undefined): number {
  if (params === undefined) return type!.encode(value, buf, pos);
  const args = value as readonly unknown[];
  for (let i = 0; i < params.length; i++) {
    const end = params[i]!.type.encode(args[i], buf, pos);
    if (end < 0) return end; // lacking at least this much (the writer grows and starts over)
    pos = end;
  }
  return pos;
}

/** The checks avsc's encoder made: a wrong field type must throw before anything is written. */
function checkFields(f: CallFields, id: number, deadline: number, epoch: number, payload: Buffer | undefined): void {
  if (typeof f.iface !== 'string' || typeof f.key !== 'string' || typeof f.method !== 'string' || typeof f.chain !== 'string') {
    throw new Error('envelope iface, key, method and chain must be strings');
  }
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(deadline) || !Number.isSafeInteger(epoch)) throw new Error('envelope id, deadline and epoch must be integers');
  if (payload !== undefined && !Buffer.isBuffer(payload)) throw new Error('envelope payload must be a Buffer');
  if (f.headers !== NO_HEADERS) {
    if (typeof f.headers !== 'object' || f.headers === null) throw new Error('envelope headers must be a map of strings');
    for (const k in f.headers) if (typeof f.headers[k] !== 'string') throw new Error(`envelope header ${k} must be a string`);
  }
}

// ---- reading ---------------------------------------------------------------------------------

/** Splits a frame back into envelopes. Throws on a truncated or malformed frame. */
export function readFrame(frame: Buffer, onEnvelope: (env: DecodedEnvelope) => void): void {
  const r = new Reader(frame);
  while (r.pos < frame.length) onEnvelope(readEnvelope(r, frame));
}

function readEnvelope(r: Reader, frame: Buffer): DecodedEnvelope {
  const k = r.long();
  const kind = ENVELOPE_KINDS[k];
  if (kind === undefined) throw new Error(`invalid envelope kind index ${k}`);
  const id = r.long();
  const routeStart = r.pos;
  const iface = r.repeated(ifaceNames);
  const key = r.string();
  const method = r.repeated(methodNames);
  const chain = r.string();
  const routeEnd = r.pos;
  const deadline = r.long();
  const epoch = r.long();
  const tailStart = r.pos;
  const headers = r.headers();
  const payload = r.bytes();
  // Only calls are ever forwarded: answers need no span.
  const raw = k >= ANSWER_KINDS_FROM && k < ANSWER_KINDS_TO ? undefined : { frame, routeStart, routeEnd, tailStart, end: r.pos };
  return { kind, id, iface, key, method, chain, deadline, epoch, headers, payload, [RAW]: raw };
}
