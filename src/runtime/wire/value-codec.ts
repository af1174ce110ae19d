// Arguments and results of the primitive Avro types (most calls carry only those) are coded by
// hand, straight into and out of frames: avsc's `encode`/`fromBuffer` allocate a Tap (and for
// arguments a record) per call, which on a hot path costs more than the coding itself. Other types
// go through avsc. The bytes are the same either way.
import type { AvroMessageTypes, AvroType } from '../interface/avro.ts';
import { Reader, writeBytes, writeLong, writeString, type Utf8Buffer } from './avro-binary.ts';

/** Writes `value` (checked valid for the type) at `pos`; returns the position after it, or minus how many bytes were lacking at least. */
type Write = (buf: Utf8Buffer, pos: number, value: unknown) => number;

// One function per type, each with the room check of its own: a value's write is one call whose
// target V8 can inline (it was a shared method calling a bound and a write through an object,
// two calls whose targets varied with the type).
const WRITERS: Record<string, Write> = {
  null: (_buf, pos) => pos,
  boolean: (buf, pos, v) => {
    if (pos + 1 > buf.length) return -1;
    buf[pos] = v ? 1 : 0;
    return pos + 1;
  },
  int: (buf, pos, v) => (pos + 5 > buf.length ? -5 : writeLong(buf, pos, v as number)),
  long: (buf, pos, v) => (pos + 10 > buf.length ? -10 : writeLong(buf, pos, v as number)),
  float: (buf, pos, v) => (pos + 4 > buf.length ? -4 : buf.writeFloatLE(v as number, pos)),
  double: (buf, pos, v) => (pos + 8 > buf.length ? -8 : buf.writeDoubleLE(v as number, pos)),
  string: (buf, pos, v) => {
    const bound = 5 + 3 * (v as string).length;
    return pos + bound > buf.length ? -bound : writeString(buf, pos, v as string);
  },
  bytes: (buf, pos, v) => {
    const bound = 5 + (v as Buffer).length;
    return pos + bound > buf.length ? -bound : writeBytes(buf, pos, v as Buffer);
  },
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

const recordWriters = new WeakMap<AvroType, Write | null>();

/** A record whose fields all have hand-written writers: its fields in order (avsc's bytes). */
function recordWriter(type: AvroType): Write | undefined {
  let write = recordWriters.get(type);
  if (write === undefined) {
    const fields = (type as unknown as { fields?: readonly { name: string; type: AvroType }[] }).fields ?? [];
    const parts = fields.map((f) => ({ name: f.name, write: writerFor(f.type) }));
    write = parts.every((p) => p.write !== undefined)
      ? (buf, pos, v) => {
          const r = v as Record<string, unknown>;
          for (const p of parts) {
            pos = p.write!(buf, pos, r[p.name]);
            if (pos < 0) return pos;
          }
          return pos;
        }
      : null;
    recordWriters.set(type, write);
  }
  return write ?? undefined;
}

/** The hand-written writer for `type`, if it is a primitive type or a record of such. */
function writerFor(type: AvroType): Write | undefined {
  return WRITERS[type.typeName] ?? (type.typeName === 'record' ? recordWriter(type) : undefined);
}

/** avsc's validity checks of the primitive types (`Type#_check`), without a call through `isValid`. */
const CHECKS: Record<string, (value: unknown) => boolean> = {
  null: (v) => v === null,
  boolean: (v) => typeof v === 'boolean',
  // avsc's check is `v === (v | 0)`, which throws for a bigint: here it is just not an int.
  int: (v) => typeof v === 'number' && v === (v | 0),
  long: (v) => typeof v === 'number' && v % 1 === 0 && v >= -9007199254740990 && v <= 9007199254740990,
  float: (v) => typeof v === 'number',
  double: (v) => typeof v === 'number',
  string: (v) => typeof v === 'string',
  bytes: (v) => Buffer.isBuffer(v),
};

/**
 * How values of one type are checked, written and read, worked out once per type: the hot paths
 * then make no lookup by type name per value (a keyed load whose keys vary, which V8 serves from
 * its slow megamorphic cache: ~100 instructions each, several per call).
 */
export class ValueCodec {
  readonly type: AvroType;
  /** Whether `value` is valid for the type (as avsc's `isValid`). */
  readonly valid: (value: unknown) => boolean;
  /** Writes `value` (checked valid) at `pos`; returns the position after it, or minus how many bytes were lacking at least. */
  readonly write: Write;
  readonly #decode: Decode | undefined;

  constructor(type: AvroType) {
    this.type = type;
    this.valid = CHECKS[type.typeName] ?? ((value) => type.isValid(value));
    this.write = writerFor(type) ?? ((buf, pos, value) => type.encode(value, buf, pos));
    this.#decode = DECODERS[type.typeName];
  }

  /** Whether `read` decodes by hand (else only `decode`, through avsc, can). */
  get readsInPlace(): boolean {
    return this.#decode !== undefined;
  }

  /** Reads one value at the reader's position (a type that `readsInPlace`). */
  read(r: Reader): unknown {
    return this.#decode!(r);
  }

  /** Decodes one whole value from `buf[start, end)` (throws on truncated or trailing data). */
  decode(buf: Buffer, start: number, end: number): unknown {
    const decode = this.#decode;
    if (decode === undefined) return this.type.fromBuffer(span(buf, start, end));
    const r = reader.reset(buf, start, end);
    const value = decode(r);
    if (r.pos !== end) throw new Error('trailing data');
    return value;
  }
}

/**
 * One method's arguments and result: a ValueCodec per parameter and one for the result. The
 * arguments are checked, written and read in parameter order, as the fields of the method's
 * request record (the same bytes as avsc's encoding of that record, without building it).
 */
export class MethodCodec {
  readonly message: AvroMessageTypes;
  readonly params: readonly ValueCodec[];
  readonly result: ValueCodec;
  readonly #readsInPlace: boolean;

  constructor(message: AvroMessageTypes) {
    this.message = message;
    this.params = message.requestType.fields.map((f) => valueCodec(f.type));
    this.result = valueCodec(message.responseType);
    this.#readsInPlace = this.params.every((p) => p.readsInPlace);
    this.write = argsWriter(this.params);
    this.argsValid = argsChecker(this.params);
  }

  /** Whether there are as many arguments as parameters, each valid for its type. */
  readonly argsValid: (args: readonly unknown[]) => boolean;

  /** Writes the arguments `args` (checked valid) at `pos`; returns the position after them, or minus how many bytes were lacking at least. */
  readonly write: (buf: Utf8Buffer, pos: number, args: unknown) => number;

  /** Decodes the arguments from `buf[start, end)`, in parameter order (throws on truncated or trailing data). */
  decodeArgs(buf: Buffer, start: number, end: number): unknown[] {
    const params = this.params;
    if (!this.#readsInPlace) {
      const record = this.message.requestType.fromBuffer(span(buf, start, end));
      return this.message.requestType.fields.map((f) => record[f.name]);
    }
    const r = reader.reset(buf, start, end);
    const args = new Array<unknown>(params.length);
    for (let i = 0; i < params.length; i++) args[i] = params[i]!.read(r);
    if (r.pos !== end) throw new Error('trailing data');
    return args;
  }
}

/** A method's arguments' check: most methods take one argument, checked with one call. */
function argsChecker(params: readonly ValueCodec[]): (args: readonly unknown[]) => boolean {
  if (params.length === 1) {
    const valid = params[0]!.valid;
    return (args) => args.length === 1 && valid(args[0]);
  }
  return (args) => {
    if (args.length !== params.length) return false;
    for (let i = 0; i < params.length; i++) if (!params[i]!.valid(args[i])) return false;
    return true;
  };
}

/** A method's arguments' writer: most methods take one argument, written with one call. */
function argsWriter(params: readonly ValueCodec[]): (buf: Utf8Buffer, pos: number, args: unknown) => number {
  if (params.length === 0) return (_buf, pos) => pos;
  if (params.length === 1) {
    const write = params[0]!.write;
    return (buf, pos, args) => write(buf, pos, (args as readonly unknown[])[0]);
  }
  return (buf, pos, args) => {
    const values = args as readonly unknown[];
    for (let i = 0; i < params.length; i++) {
      pos = params[i]!.write(buf, pos, values[i]);
      if (pos < 0) return pos;
    }
    return pos;
  };
}

/**
 * What `make` gives for a key, made once per key; the last key asked for is remembered, and found
 * by a comparison (a fan-out asks for one key many times in a row; a WeakMap lookup costs more).
 */
class MadeOnce<K extends object, V> {
  readonly #made = new WeakMap<K, V>();
  readonly #make: (key: K) => V;
  #lastKey: K | undefined;
  #lastValue: V | undefined;

  constructor(make: (key: K) => V) {
    this.#make = make;
  }

  get(key: K): V {
    if (key === this.#lastKey) return this.#lastValue!;
    let value = this.#made.get(key);
    if (value === undefined) this.#made.set(key, (value = this.#make(key)));
    this.#lastKey = key;
    this.#lastValue = value;
    return value;
  }
}

const valueCodecs = new MadeOnce((type: AvroType) => new ValueCodec(type));
const methodCodecs = new MadeOnce((message: AvroMessageTypes) => new MethodCodec(message));

/** The ValueCodec of `type`. */
export function valueCodec(type: AvroType): ValueCodec {
  return valueCodecs.get(type);
}

/** The MethodCodec of `message`. */
export function methodCodec(message: AvroMessageTypes): MethodCodec {
  return methodCodecs.get(message);
}

let scratch = Buffer.allocUnsafe(4096) as Utf8Buffer;

/** `type.toBuffer(value)` (for a value already checked valid), by hand where the type's codec can. */
export function encodeValue(type: AvroType, value: unknown): Buffer {
  const codec = valueCodec(type);
  let end = codec.write(scratch, 0, value);
  // A codec reports how many bytes it lacked as a negative position.
  while (end < 0) end = codec.write((scratch = Buffer.allocUnsafe(Math.max(scratch.length - end, scratch.length * 2)) as Utf8Buffer), 0, value);
  return Buffer.from(scratch.subarray(0, end));
}

/** `buf[start, end)`: `buf` itself when that is all of it (no view made). */
function span(buf: Buffer, start: number, end: number): Buffer {
  return start === 0 && end === buf.length ? buf : buf.subarray(start, end);
}

/** Decodes one whole value of `type` from `buf` (throws on truncated or trailing data). */
export function decodeValue(type: AvroType, buf: Buffer): unknown {
  return valueCodec(type).decode(buf, 0, buf.length);
}

/** Decodes a call's arguments, in parameter order (throws on truncated or trailing data). */
export function decodeArguments(message: AvroMessageTypes, payload: Buffer): unknown[] {
  return methodCodec(message).decodeArgs(payload, 0, payload.length);
}
