// Arguments and results of the primitive Avro types (most calls carry only those) are coded by
// hand, straight into and out of frames: avsc's `encode`/`fromBuffer` allocate a Tap (and for
// arguments a record) per call, which on a hot path costs more than the coding itself. Other types
// go through avsc. The bytes are the same either way.
import type { AvroMessageTypes, AvroType } from '../interface/avro.ts';
import { Reader, writeBytes, writeLong, writeString, type Utf8Buffer } from './avro-binary.ts';

export interface Encoder {
  /** At most how many bytes `value` encodes to. */
  bound(value: unknown): number;
  /** Writes `value` (already checked valid for the type) at `pos`, with `bound` bytes of room; returns the position after it. */
  write(buf: Utf8Buffer, pos: number, value: unknown): number;
}

const varint: Encoder = { bound: () => 10, write: (buf, pos, v) => writeLong(buf, pos, v as number) };

const ENCODERS: Record<string, Encoder> = {
  null: { bound: () => 0, write: (_buf, pos) => pos },
  boolean: {
    bound: () => 1,
    write: (buf, pos, v) => {
      buf[pos] = v ? 1 : 0;
      return pos + 1;
    },
  },
  int: varint,
  long: varint,
  float: { bound: () => 4, write: (buf, pos, v) => buf.writeFloatLE(v as number, pos) },
  double: { bound: () => 8, write: (buf, pos, v) => buf.writeDoubleLE(v as number, pos) },
  string: { bound: (v) => 5 + 3 * (v as string).length, write: (buf, pos, v) => writeString(buf, pos, v as string) },
  bytes: { bound: (v) => 5 + (v as Buffer).length, write: (buf, pos, v) => writeBytes(buf, pos, v as Buffer) },
};

type Decode = (r: Reader) => unknown;

/** One reader for all decoding here: decoding is synchronous and runs no other code, so it is never shared. */
const reader = new Reader(Buffer.alloc(0));

const DECODERS: Record<string, Decode> = {
  null: () => null,
  boolean: (r) => r.boolean(),
  int: (r) => r.long(),
  long: (r) => r.long(),
  float: (r) => r.float(),
  double: (r) => r.double(),
  string: (r) => r.string(),
  // A copy, as avsc makes: the bytes would otherwise keep the whole frame they arrived in alive.
  bytes: (r) => Buffer.from(r.bytes()),
};

const recordEncoders = new WeakMap<AvroType, Encoder | null>();

/** A record whose fields all have hand-written encoders: its fields in order (avsc's bytes). */
function recordEncoder(type: AvroType): Encoder | undefined {
  let enc = recordEncoders.get(type);
  if (enc === undefined) {
    const fields = (type as unknown as { fields?: readonly { name: string; type: AvroType }[] }).fields ?? [];
    const parts = fields.map((f) => ({ name: f.name, enc: encoderFor(f.type) }));
    enc = parts.every((p) => p.enc !== undefined)
      ? {
          bound: (v) => {
            const r = v as Record<string, unknown>;
            let n = 0;
            for (const p of parts) n += p.enc!.bound(r[p.name]);
            return n;
          },
          write: (buf, pos, v) => {
            const r = v as Record<string, unknown>;
            for (const p of parts) pos = p.enc!.write(buf, pos, r[p.name]);
            return pos;
          },
        }
      : null;
    recordEncoders.set(type, enc);
  }
  return enc ?? undefined;
}

/** The hand-written encoder for `type`, if it is a primitive type or a record of such. */
export function encoderFor(type: AvroType): Encoder | undefined {
  return ENCODERS[type.typeName] ?? (type.typeName === 'record' ? recordEncoder(type) : undefined);
}

let scratch = Buffer.allocUnsafe(4096) as Utf8Buffer;

/** `type.toBuffer(value)` (for a value already checked valid), by hand where `encoderFor` can. */
export function encodeValue(type: AvroType, value: unknown): Buffer {
  const enc = encoderFor(type);
  if (enc === undefined) return type.toBuffer(value);
  const n = enc.bound(value);
  if (n > scratch.length) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2)) as Utf8Buffer;
  return Buffer.from(scratch.subarray(0, enc.write(scratch, 0, value)));
}

/** `buf[start, end)`: `buf` itself when that is all of it (no view made). */
function span(buf: Buffer, start: number, end: number): Buffer {
  return start === 0 && end === buf.length ? buf : buf.subarray(start, end);
}

/** Decodes one whole value of `type` from `buf` (throws on truncated or trailing data). */
export function decodeValue(type: AvroType, buf: Buffer): unknown {
  return decodeValueAt(type, buf, 0, buf.length);
}

/** Decodes one whole value of `type` from `buf[start, end)`: an answer's payload, read in its frame. */
export function decodeValueAt(type: AvroType, buf: Buffer, start: number, end: number): unknown {
  const decode = DECODERS[type.typeName];
  if (decode === undefined) return type.fromBuffer(span(buf, start, end));
  const r = reader.reset(buf, start, end);
  const value = decode(r);
  if (r.pos !== end) throw new Error('trailing data');
  return value;
}

const argDecoders = new WeakMap<AvroMessageTypes, readonly Decode[] | null>();

/** Decodes a call's arguments, in parameter order (throws on truncated or trailing data). */
export function decodeArguments(message: AvroMessageTypes, payload: Buffer): unknown[] {
  return decodeArgumentsAt(message, payload, 0, payload.length);
}

/** `decodeArguments` of the payload `buf[start, end)`: a call's arguments, read in its frame. */
export function decodeArgumentsAt(message: AvroMessageTypes, buf: Buffer, start: number, end: number): unknown[] {
  let decoders = argDecoders.get(message);
  if (decoders === undefined) {
    const all = message.requestType.fields.map((f) => DECODERS[f.type.typeName]);
    decoders = all.every((d) => d !== undefined) ? (all as Decode[]) : null;
    argDecoders.set(message, decoders);
  }
  if (decoders === null) {
    const record = message.requestType.fromBuffer(span(buf, start, end));
    return message.requestType.fields.map((f) => record[f.name]);
  }
  const r = reader.reset(buf, start, end);
  const args = new Array<unknown>(decoders.length);
  for (let i = 0; i < decoders.length; i++) args[i] = decoders[i]!(r);
  if (r.pos !== end) throw new Error('trailing data');
  return args;
}
