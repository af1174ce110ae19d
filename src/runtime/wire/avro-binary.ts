// Avro's binary encoding of the primitive types, written by hand for the wire's hot paths
// (envelopes, and the arguments and results of most calls): varint longs, strings, bytes. Same
// bytes as avsc; test/wire.test.ts and test/value-codec.test.ts compare them.

/** The empty string map most envelopes carry: shared, so decoding allocates none. */
export const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export type Utf8Buffer = Buffer & { utf8Slice(start: number, end: number): string; utf8Write(s: string, offset: number, length?: number): number };

// ---- varints (Avro longs: zigzag, then base-128 little-endian) --------------------------------

/** Writes `n` (an integer of at most 53 bits) and returns the position after it. */
export function writeLong(buf: Buffer, pos: number, n: number): number {
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

/** How many bytes `writeLong` takes for `n` (a non-negative integer of at most 53 bits). */
export function longSize(n: number): number {
  let z = n * 2;
  let size = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 0x80);
    size++;
  }
  return size;
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

export function writeString(buf: Utf8Buffer, pos: number, s: string): number {
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

/** The most bytes RememberedBytes keeps (a multiple of 4). */
const MAX_REMEMBERED = 64;

/**
 * Bytes written before (1 to MAX_REMEMBERED), kept to be written again or recognised: from 4 bytes
 * on as 32-bit words, a store or a comparison per four bytes where a byte loop made one per byte,
 * each with its bounds check; fewer than 4 as one number, byte by byte.
 */
export class RememberedBytes {
  readonly #words = new Int32Array(MAX_REMEMBERED / 4);
  /** The last four bytes (the words before them may overlap them), or all of them when fewer. */
  #lastWord = 0;
  /** 0: nothing remembered. */
  #size = 0;

  get size(): number {
    return this.#size;
  }

  forget(): void {
    this.#size = 0;
  }

  /** Remembers `[start, end)` of `view`'s buffer; false (and nothing remembered) if it is empty or too long. */
  remember(view: DataView, start: number, end: number): boolean {
    const n = end - start;
    if (n < 1 || n > MAX_REMEMBERED) {
      this.forget();
      return false;
    }
    if (n < 4) {
      let w = 0;
      for (let i = 0; i < n; i++) w |= view.getUint8(start + i) << (8 * i);
      this.#lastWord = w;
    } else {
      const words = this.#words;
      for (let i = 0; i + 4 < n; i += 4) words[i >> 2] = view.getInt32(start + i, true);
      this.#lastWord = view.getInt32(end - 4, true);
    }
    this.#size = n;
    return true;
  }

  /** Whether `view`'s buffer holds the remembered bytes at `pos` (before `end`). */
  matches(view: DataView, pos: number, end: number): boolean {
    const n = this.#size;
    if (n === 0 || pos + n > end) return false;
    if (n < 4) {
      for (let i = 0; i < n; i++) if (view.getUint8(pos + i) !== ((this.#lastWord >>> (8 * i)) & 0xff)) return false;
      return true;
    }
    const words = this.#words;
    for (let i = 0; i + 4 < n; i += 4) if (view.getInt32(pos + i, true) !== words[i >> 2]) return false;
    return view.getInt32(pos + n - 4, true) === this.#lastWord;
  }

  /** Writes the remembered bytes at `pos` (there must be room); returns the position after them. */
  write(view: DataView, pos: number): number {
    const n = this.#size;
    if (n < 4) {
      for (let i = 0; i < n; i++) view.setUint8(pos + i, this.#lastWord >>> (8 * i));
      return pos + n;
    }
    const words = this.#words;
    for (let i = 0; i + 4 < n; i += 4) view.setInt32(pos + i, words[i >> 2]!, true);
    view.setInt32(pos + n - 4, this.#lastWord, true);
    return pos + n;
  }
}

/**
 * Writes strings that usually repeat the previous one written with it (an interface, a method, a
 * chain id: a fan-out writes the same ones a thousand times): the previous one's bytes are copied
 * (`RememberedBytes`), which costs less than encoding its characters again.
 */
export class RepeatedStringWriter {
  #last: string | undefined;
  readonly #bytes = new RememberedBytes();

  write(buf: Utf8Buffer, view: DataView, pos: number, s: string): number {
    if (s === this.#last) return this.#bytes.write(view, pos);
    const end = writeString(buf, pos, s);
    this.#last = this.#bytes.remember(view, pos, end) ? s : undefined;
    return end;
  }
}

export function writeBytes(buf: Buffer, pos: number, b: Uint8Array): number {
  pos = writeLong(buf, pos, b.length);
  return copyBytes(b, 0, b.length, buf, pos);
}

/** Below this many bytes a copy is a JS loop: a native copy's call costs more than the bytes. */
const NATIVE_COPY_FROM = 64;

/**
 * Copies `from[start, end)` to `to` at `pos`; returns the position after it. Most of what the wire
 * copies is a few bytes (a forwarded call's fields, a small answer), for which `Buffer#copy`'s
 * native call was a tenth of a gateway's CPU per call.
 */
export function copyBytes(from: Uint8Array, start: number, end: number, to: Uint8Array, pos: number): number {
  const n = end - start;
  if (n >= NATIVE_COPY_FROM) {
    to.set(from.subarray(start, end), pos);
    return pos + n;
  }
  for (let i = 0; i < n; i++) to[pos + i] = from[start + i]!;
  return pos + n;
}

/**
 * Remembers the last string read in one field (an interface or method name: the same few values
 * arrive over and over) and returns that string again for the same bytes: comparing a few bytes
 * costs less than creating a string, and creates no garbage.
 */
export class RepeatedString {
  readonly #bytes = new RememberedBytes();
  #value = '';

  read(buf: Utf8Buffer, view: DataView, start: number, n: number): string {
    if (n === this.#bytes.size && this.#bytes.matches(view, start, start + n)) return this.#value;
    const value = buf.utf8Slice(start, start + n);
    if (this.#bytes.remember(view, start, start + n)) this.#value = value;
    return value;
  }
}

/**
 * Short ASCII strings read before (1 to 8 bytes), in a direct-mapped table by their bytes: a call's
 * actor key is one of the keys of the actors a process serves or calls, and the same string object
 * each time costs far less than a new one. A new string is hashed again when it is looked up (in the
 * activation table, the router's positions) and its characters compared with the key stored there;
 * the one from this table has its hash already, and is the very object stored there when the actor
 * was first met, so the lookup compares pointers. With more keys than slots, a key read finds
 * another in its slot and is made anew (as without the table), replacing it.
 */
export class ShortStrings {
  readonly #low = new Int32Array(SHORT_SLOTS);
  readonly #high = new Int32Array(SHORT_SLOTS);
  readonly #lengths = new Uint8Array(SHORT_SLOTS);
  readonly #strings: string[] = new Array<string>(SHORT_SLOTS).fill('');

  /** `buf[start, start + n)` (n ≤ 8) as a string, if it is ASCII; else undefined. */
  read(buf: Buffer, start: number, n: number): string | undefined {
    let low = 0;
    let high = 0;
    let ascii = 0;
    for (let i = 0; i < n; i++) {
      const c = buf[start + i]!;
      ascii |= c;
      if (i < 4) low |= c << (8 * i);
      else high |= c << (8 * (i - 4));
    }
    if (ascii >= 0x80) return undefined;
    // MurmurHash3's finaliser: every bit of the key moves the slot's bits.
    let h = Math.imul(low, 0x9e3779b1) ^ high ^ n;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    const slot = (h ^ (h >>> 16)) >>> (32 - SHORT_SLOT_BITS);
    if (this.#low[slot] === low && this.#high[slot] === high && this.#lengths[slot] === n) return this.#strings[slot];
    const value = n <= 4 ? shortAscii(buf, start, n)! : (buf as Utf8Buffer).utf8Slice(start, start + n);
    this.#low[slot] = low;
    this.#high[slot] = high;
    this.#lengths[slot] = n;
    this.#strings[slot] = value;
    return value;
  }
}

/** A ShortStrings table has 2^SHORT_SLOT_BITS slots (~20 kB). */
const SHORT_SLOT_BITS = 10;
const SHORT_SLOTS = 1 << SHORT_SLOT_BITS;

/**
 * `buf[start, start + n)` as a string if it is 1 to 4 ASCII bytes (short actor keys: `7`, `42`),
 * else undefined. `String.fromCharCode` costs a tenth of `utf8Slice`'s native call for these; from
 * about 8 bytes on, the native call is cheaper.
 */
function shortAscii(buf: Buffer, start: number, n: number): string | undefined {
  const c0 = buf[start]!;
  if (n === 1) return c0 < 0x80 ? String.fromCharCode(c0) : undefined;
  const c1 = buf[start + 1]!;
  if (n === 2) return (c0 | c1) < 0x80 ? String.fromCharCode(c0, c1) : undefined;
  const c2 = buf[start + 2]!;
  if (n === 3) return (c0 | c1 | c2) < 0x80 ? String.fromCharCode(c0, c1, c2) : undefined;
  const c3 = buf[start + 3]!;
  return (c0 | c1 | c2 | c3) < 0x80 ? String.fromCharCode(c0, c1, c2, c3) : undefined;
}

class Truncated extends Error {
  constructor(what: string) {
    super(`truncated data (${what})`);
  }
}

/** Reads Avro values from a buffer (a frame, a payload); throws on anything malformed or truncated. */
export class Reader {
  buf: Utf8Buffer;
  pos = 0;
  /** Where the data ends (the buffer may hold more after it). */
  end: number;

  #view: DataView | undefined;

  constructor(buf: Buffer) {
    this.buf = buf as Utf8Buffer;
    this.end = buf.length;
  }

  /** A DataView of the buffer (made once it is asked for), for reading words. */
  get view(): DataView {
    return (this.#view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length));
  }

  /** Starts over on `buf[start, end)` (a reader reused for many small values allocates nothing per value). */
  reset(buf: Buffer, start = 0, end = buf.length): this {
    if (buf !== this.buf) this.#view = undefined;
    this.buf = buf as Utf8Buffer;
    this.pos = start;
    this.end = end;
    return this;
  }

  long(): number {
    // One byte (-64…63: kinds, lengths, small ids and budgets) in a function small enough to be
    // inlined where it is called; the rest in `#longer`.
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return (b >>> 1) ^ -(b & 1);
      }
    }
    return this.#longer();
  }

  #longer(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    let n = 0;
    // Up to 28 bits in 32-bit arithmetic (ids, budgets, lengths), the position kept in a local.
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) throw new Truncated('varint');
      const b = buf[pos++]!;
      n |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return (n >>> 1) ^ -(n & 1);
      }
    }
    this.pos = pos;
    return this.#longest(n);
  }

  /** The bits past the first 28 (`n`), in doubles (as avsc reads them). */
  #longest(n: number): number {
    const buf = this.buf;
    const end = this.end;
    let z = n;
    let scale = 2 ** 28;
    for (let i = 4; ; i++) {
      if (this.pos >= end) throw new Truncated('varint');
      const b = buf[this.pos++]!;
      z += (b & 0x7f) * scale;
      if (b < 0x80) break;
      if (i >= 9) throw new Error('varint longer than 64 bits');
      scale *= 128;
    }
    return (z % 2 ? -(z + 1) : z) / 2;
  }

  /** Skips a string or bytes value; returns where its bytes begin (they end at the new `pos`). */
  skipBytes(): number {
    // Not `this.pos += this.#length()`: that would add to the position from before the length was read.
    const n = this.#length('bytes');
    const start = this.pos;
    this.pos += n;
    return start;
  }

  /** Skips a map of strings (see `headers`). */
  skipHeaders(): void {
    let count: number;
    while ((count = this.#mapBlock()) > 0) for (let i = 0; i < 2 * count; i++) this.skipBytes();
  }

  /**
   * The entry count heading a block of a map of strings (0 at its end). Every entry takes at
   * least two bytes, so no count may claim more than what is left (see avro.ts).
   */
  #mapBlock(): number {
    let count = this.long();
    if (count < 0) {
      count = -count;
      this.long(); // the block's size in bytes: the entries are read anyway
    }
    if (count * 2 > this.end - this.pos) throw new Truncated('headers');
    return count;
  }

  #length(what: string): number {
    const n = this.long();
    if (n < 0) throw new Error(`negative ${what} length`);
    if (this.pos + n > this.end) throw new Truncated(what);
    return n;
  }

  string(): string {
    const n = this.#length('string');
    if (n === 0) return '';
    const start = this.pos;
    this.pos += n;
    return (n <= 4 ? shortAscii(this.buf, start, n) : undefined) ?? this.buf.utf8Slice(start, this.pos);
  }

  /** A string that is often one of a few thousand short ones read before (actor keys: see ShortStrings). */
  known(cache: ShortStrings): string {
    const n = this.#length('string');
    if (n === 0) return '';
    const start = this.pos;
    this.pos += n;
    return (n <= 8 ? cache.read(this.buf, start, n) : undefined) ?? this.buf.utf8Slice(start, this.pos);
  }

  /** A string that usually repeats the previous one read with the same `cache`. */
  repeated(cache: RepeatedString): string {
    const n = this.#length('string');
    if (n === 0) return '';
    const start = this.pos;
    this.pos += n;
    return cache.read(this.buf, this.view, start, n);
  }

  bytes(): Buffer {
    const n = this.#length('bytes');
    const start = this.pos;
    this.pos += n;
    return this.buf.subarray(start, this.pos);
  }

  boolean(): boolean {
    if (this.pos >= this.end) throw new Truncated('boolean');
    return this.buf[this.pos++] !== 0;
  }

  float(): number {
    if (this.pos + 4 > this.end) throw new Truncated('float');
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new Truncated('double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /**
   * A map of strings; every entry takes at least two bytes, so no count may claim more (see
   * avro.ts). With `cache`, a map whose bytes repeat the previous one's is that same (frozen) object.
   */
  headers(cache?: RepeatedMap): Record<string, string> {
    if (this.pos < this.end && this.buf[this.pos] === 0) {
      this.pos++;
      return NO_HEADERS;
    }
    const start = this.pos;
    const seen = cache === undefined ? 0 : cache.match(this.buf, start, this.end);
    if (seen > 0) {
      this.pos += seen;
      return cache!.value;
    }
    const out: Record<string, string> = {};
    let count: number;
    while ((count = this.#mapBlock()) > 0) {
      for (let i = 0; i < count; i++) {
        const k = this.string();
        out[k] = this.string();
      }
    }
    Object.freeze(out);
    cache?.remember(this.buf, start, this.pos, out);
    return out;
  }
}

/** The last string map read in one field, by its bytes (the headers of a turn's fan-out repeat). */
export class RepeatedMap {
  readonly #bytes = Buffer.alloc(256);
  #length = 0;
  #value: Record<string, string> = NO_HEADERS;

  /** The length of the remembered map if `buf` holds its bytes at `start`, else 0. */
  match(buf: Buffer, start: number, end: number): number {
    const n = this.#length;
    if (n === 0 || start + n > end) return 0;
    const bytes = this.#bytes;
    for (let i = 0; i < n; i++) if (bytes[i] !== buf[start + i]) return 0;
    return n;
  }

  /** The remembered map. */
  get value(): Record<string, string> {
    return this.#value;
  }

  remember(buf: Buffer, start: number, end: number, value: Record<string, string>): void {
    if (end - start > this.#bytes.length) return;
    buf.copy(this.#bytes, 0, start, end);
    this.#length = end - start;
    this.#value = value;
  }
}
