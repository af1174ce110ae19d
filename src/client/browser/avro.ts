// A small Avro binary codec for browsers (no Buffer, no dependencies): the schemas Koala's client
// needs — primitives, records, enums, arrays, maps, unions, fixed and named references. Longs are
// JavaScript numbers (exact up to 2^53). Union values are not wrapped: the first branch the value
// fits is used.

type Schema = string | readonly Schema[] | { readonly type: string; readonly [key: string]: unknown };
type Named = { type: string; name: string; namespace?: string; fields?: { name: string; type: Schema; default?: unknown }[]; symbols?: string[]; size?: number };

const text = new TextEncoder();
const untext = new TextDecoder();
const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

class Writer {
  buf = new Uint8Array(256);
  pos = 0;
  #room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  byte(b: number): void {
    this.#room(1);
    this.buf[this.pos++] = b;
  }
  long(n: number): void {
    if (!Number.isSafeInteger(n)) throw new TypeError(`${n} is not an integer Avro can carry here`);
    let z = n >= 0 ? n * 2 : -n * 2 - 1; // zig-zag
    do {
      let b = z % 128;
      z = Math.floor(z / 128);
      if (z > 0) b |= 128;
      this.byte(b);
    } while (z > 0);
  }
  raw(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
  float(n: number, size: 4 | 8): void {
    this.#room(size);
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, size);
    if (size === 4) view.setFloat32(0, n, true);
    else view.setFloat64(0, n, true);
    this.pos += size;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

class Reader {
  readonly buf: Uint8Array;
  pos: number;
  constructor(buf: Uint8Array, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError('truncated Avro data');
    return this.buf[this.pos++]!;
  }
  long(): number {
    let n = 0;
    let scale = 1;
    let b: number;
    do {
      b = this.byte();
      n += (b & 127) * scale;
      scale *= 128;
    } while (b & 128);
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
  raw(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.buf.length) throw new RangeError('truncated Avro data');
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  float(size: 4 | 8): number {
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, size);
    this.pos += size;
    return size === 4 ? view.getFloat32(0, true) : view.getFloat64(0, true);
  }
}

export class AvroCodec {
  readonly #schema: Schema;
  readonly #named = new Map<string, Named>();

  /** `types`: named types the schema may refer to (a protocol's `types`), in `namespace`. */
  constructor(schema: unknown, types: readonly unknown[] = [], namespace?: string) {
    for (const t of types) this.#register(t as Schema, namespace);
    this.#register(schema as Schema, namespace);
    this.#schema = schema as Schema;
  }

  encode(value: unknown): Uint8Array {
    const w = new Writer();
    this.#write(w, this.#schema, value);
    return w.done();
  }

  /** Decodes one value at `pos`; `offset` is where the next value starts. */
  decode(bytes: Uint8Array, pos = 0): { value: unknown; offset: number } {
    const r = new Reader(bytes, pos);
    const value = this.#read(r, this.#schema);
    return { value, offset: r.pos };
  }

  #register(schema: Schema, ns: string | undefined): void {
    if (typeof schema === 'string') return;
    if (Array.isArray(schema)) {
      for (const s of schema) this.#register(s, ns);
      return;
    }
    const s = schema as Named & { items?: Schema; values?: Schema };
    if (s.name) {
      const space = s.namespace ?? ns;
      this.#named.set(s.name, s);
      if (space) this.#named.set(`${space}.${s.name}`, s);
      for (const f of s.fields ?? []) this.#register(f.type, space);
    }
    if (s.items) this.#register(s.items, ns);
    if (s.values) this.#register(s.values, ns);
  }

  #resolve(schema: Schema): Schema {
    if (typeof schema === 'string' && !PRIMITIVES.has(schema)) {
      const named = this.#named.get(schema);
      if (!named) throw new TypeError(`unknown Avro type ${schema}`);
      return named as Schema;
    }
    if (typeof schema === 'object' && !Array.isArray(schema) && PRIMITIVES.has((schema as { type: string }).type)) return (schema as { type: string }).type;
    return schema;
  }

  #fits(schema: Schema, value: unknown): boolean {
    const s = this.#resolve(schema);
    if (typeof s === 'string') {
      switch (s) {
        case 'null': return value === null || value === undefined;
        case 'boolean': return typeof value === 'boolean';
        case 'int': case 'long': return typeof value === 'number' && Number.isInteger(value);
        case 'float': case 'double': return typeof value === 'number';
        case 'string': return typeof value === 'string';
        case 'bytes': return value instanceof Uint8Array;
        default: return false;
      }
    }
    if (Array.isArray(s)) return s.some((b) => this.#fits(b, value));
    const t = (s as { type: string }).type;
    if (t === 'enum') return typeof value === 'string' && ((s as Named).symbols ?? []).includes(value);
    if (t === 'fixed') return value instanceof Uint8Array;
    if (t === 'array') return Array.isArray(value);
    return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
  }

  #write(w: Writer, schema: Schema, value: unknown): void {
    const s = this.#resolve(schema);
    if (typeof s === 'string') {
      switch (s) {
        case 'null': return;
        case 'boolean': return w.byte(value ? 1 : 0);
        case 'int': case 'long': return w.long(value as number);
        case 'float': return w.float(value as number, 4);
        case 'double': return w.float(value as number, 8);
        case 'bytes': {
          const bytes = value as Uint8Array;
          w.long(bytes.length);
          return w.raw(bytes);
        }
        case 'string': {
          const bytes = text.encode(value as string);
          w.long(bytes.length);
          return w.raw(bytes);
        }
      }
    }
    if (Array.isArray(s)) {
      const branch = s.findIndex((b) => this.#fits(b, value));
      if (branch < 0) throw new TypeError(`${JSON.stringify(value)} fits no branch of ${JSON.stringify(s)}`);
      w.long(branch);
      return this.#write(w, s[branch]!, value);
    }
    const n = s as Named & { items?: Schema; values?: Schema };
    switch (n.type) {
      case 'record':
      case 'error':
        for (const f of n.fields ?? []) {
          const v = (value as Record<string, unknown>)[f.name];
          this.#write(w, f.type, v === undefined && f.default !== undefined ? f.default : v);
        }
        return;
      case 'enum': {
        const i = (n.symbols ?? []).indexOf(value as string);
        if (i < 0) throw new TypeError(`${String(value)} is not a symbol of ${n.name}`);
        return w.long(i);
      }
      case 'fixed':
        return w.raw(value as Uint8Array);
      case 'array': {
        const items = value as unknown[];
        if (items.length) {
          w.long(items.length);
          for (const item of items) this.#write(w, n.items!, item);
        }
        return w.long(0);
      }
      case 'map': {
        const entries = Object.entries(value as Record<string, unknown>);
        if (entries.length) {
          w.long(entries.length);
          for (const [k, v] of entries) {
            this.#write(w, 'string', k);
            this.#write(w, n.values!, v);
          }
        }
        return w.long(0);
      }
    }
    throw new TypeError(`Avro type ${JSON.stringify(s)} is not supported here`);
  }

  #read(r: Reader, schema: Schema): unknown {
    const s = this.#resolve(schema);
    if (typeof s === 'string') {
      switch (s) {
        case 'null': return null;
        case 'boolean': return r.byte() === 1;
        case 'int': case 'long': return r.long();
        case 'float': return r.float(4);
        case 'double': return r.float(8);
        case 'bytes': return r.raw(r.long());
        case 'string': return untext.decode(r.raw(r.long()));
      }
    }
    if (Array.isArray(s)) {
      const branch = s[r.long()];
      if (branch === undefined) throw new RangeError('bad union branch in Avro data');
      return this.#read(r, branch);
    }
    const n = s as Named & { items?: Schema; values?: Schema };
    switch (n.type) {
      case 'record':
      case 'error': {
        const out: Record<string, unknown> = {};
        for (const f of n.fields ?? []) out[f.name] = this.#read(r, f.type);
        return out;
      }
      case 'enum':
        return (n.symbols ?? [])[r.long()];
      case 'fixed':
        return r.raw(n.size ?? 0);
      case 'array':
      case 'map': {
        const out: unknown[] = [];
        const map: Record<string, unknown> = {};
        for (let count = r.long(); count !== 0; count = r.long()) {
          if (count < 0) {
            count = -count;
            r.long(); // block size in bytes
          }
          for (let i = 0; i < count; i++) {
            if (n.type === 'array') out.push(this.#read(r, n.items!));
            else map[this.#read(r, 'string') as string] = this.#read(r, n.values!);
          }
        }
        return n.type === 'array' ? out : map;
      }
    }
    throw new TypeError(`Avro type ${JSON.stringify(s)} is not supported here`);
  }
}
