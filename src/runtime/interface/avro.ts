// The one place that touches avsc's loosely typed API. Everything else in Koala sees these
// narrow, typed views. avsc 5 is CommonJS: a default import is the only form that works at run time.
import avro from 'avsc';

// avsc believes the item count that heads each array and map block. In untrusted input (a frame,
// an argument payload) a count like 2^40 makes decoding spin for hours on a 14-byte buffer. Every
// map entry and every array item of a non-empty type takes at least one byte, so a block may not
// claim more items than there are bytes left; if it does, the input is treated as truncated.
interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
  _invalidate(): void;
}
interface InternalType {
  readonly typeName: string;
  _read(tap: Tap): unknown;
}

function blockCount(tap: Tap): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong(); // block size in bytes
  }
  return n;
}

const zeroWidthCache = new WeakMap<object, boolean>();
/** Whether values of the type can encode to zero bytes (null, fixed(0), records of such fields). */
function zeroWidth(type: InternalType): boolean {
  let zero = zeroWidthCache.get(type);
  if (zero === undefined) {
    zeroWidthCache.set(type, false); // recursion through a record cannot be zero-width
    const t = type as InternalType & { size?: number; fields?: readonly { type: InternalType }[]; underlyingType?: InternalType };
    if (t.typeName === 'null') zero = true;
    else if (t.typeName === 'fixed') zero = t.size === 0;
    else if (t.typeName === 'record' || t.typeName === 'error') zero = (t.fields ?? []).every((f) => zeroWidth(f.type));
    else if (t.typeName.startsWith('logical:') && t.underlyingType) zero = zeroWidth(t.underlyingType);
    else zero = false;
    zeroWidthCache.set(type, zero);
  }
  return zero;
}

(avro.types.ArrayType.prototype as unknown as InternalType)._read = function (this: { itemsType: InternalType }, tap: Tap): unknown[] {
  const items = this.itemsType;
  let val: unknown[] | undefined;
  let i = 0;
  let n: number;
  while ((n = blockCount(tap))) {
    if (n > tap.buf.length - tap.pos && !zeroWidth(items)) {
      tap._invalidate();
      return [];
    }
    val ??= new Array<unknown>(n);
    while (n--) val[i++] = items._read(tap);
  }
  return val ?? [];
};

(avro.types.MapType.prototype as unknown as InternalType)._read = function (this: { valuesType: InternalType }, tap: Tap): Record<string, unknown> {
  const values = this.valuesType;
  const val: Record<string, unknown> = {};
  let n: number;
  while ((n = blockCount(tap))) {
    if (n > tap.buf.length - tap.pos) {
      tap._invalidate();
      return {};
    }
    while (n--) {
      const key = tap.readString();
      val[key] = values._read(tap);
    }
  }
  return val;
};

/** An Avro type able to encode into a caller-owned buffer (no allocation per message). */
export interface AvroType<T = unknown> {
  /** Writes `value` at `pos`; returns the new position, or a negative number (−needed) when `buf` is too small. */
  encode(value: T, buf: Buffer, pos?: number): number;
  decode(buf: Buffer, pos?: number): { value: T; offset: number };
  toBuffer(value: T): Buffer;
  /** With a resolver (from `createResolver`), reads data written with another, compatible schema. */
  fromBuffer(buf: Buffer, resolver?: AvroResolver): T;
  /** Throws if data of `writer` cannot be read as this type (Avro schema resolution). */
  createResolver(writer: AvroType): AvroResolver;
  /** The schema's fingerprint (MD5 of its canonical form by default). */
  fingerprint(algorithm?: string): Buffer;
  /** Avro's JSON encoding (unions wrapped as {"type": value}, bytes as ISO-8859-1 strings). */
  toString(value?: T): string;
  fromString(json: string): T;
  isValid(value: unknown, opts?: { errorHook?: (path: string[], value: unknown) => void }): boolean;
  clone(value: unknown, opts?: { wrapUnions?: boolean; coerceBuffers?: boolean }): T;
  schema(): unknown;
  readonly typeName: string;
}

/** Opaque: how to read data of one schema as another. */
export interface AvroResolver {
  readonly __resolver: unique symbol;
}

export interface AvroMessageTypes {
  readonly name: string;
  /** A record type whose fields are the method's parameters, in order. */
  readonly requestType: AvroType<Record<string, unknown>> & { readonly fields: readonly { readonly name: string; readonly type: AvroType }[] };
  readonly responseType: AvroType;
  readonly oneWay: boolean;
  readonly doc: string | undefined;
}

export interface AvroService {
  readonly name: string;
  readonly protocol: object;
  /** MD5 of the protocol's canonical JSON: the interface fingerprint exchanged between peers. */
  readonly hash: Buffer;
  readonly messages: readonly AvroMessageTypes[];
  message(name: string): AvroMessageTypes | undefined;
}

export function serviceForProtocol(protocol: object): AvroService {
  return avro.Service.forProtocol(protocol) as unknown as AvroService;
}

export function typeForSchema<T>(schema: unknown): AvroType<T> {
  return avro.Type.forSchema(schema as avro.Schema) as unknown as AvroType<T>;
}

/** Parses Avro IDL (`.avdl` text without imports) into protocol JSON. */
export function readIdl(idl: string): object {
  // By default avsc turns every `void` message into a one-way one; in Avro IDL only `oneway` does.
  return avro.readProtocol(idl, { ackVoidMessages: true } as Parameters<typeof avro.readProtocol>[1]) as object;
}
