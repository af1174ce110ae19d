// The ceiling's wire: bare `ws` with Koala's batching and nothing else. No Koala code.
//
// A message is a small binary header plus payload, about the size of a Koala call envelope for
// `IBench.ping(n)` (~40 bytes):
//   u16 length of what follows | u8 kind (1 request, 2 response) | u32 id | u8 target length |
//   target ("IBench/17.ping") | 12-byte chain id | u16 payload length | payload (int32 n)
// Batching as in Koala: everything produced in one event-loop turn goes out as one binary frame
// (flushed from setImmediate), written into a reused buffer with one copy per frame, and a batch
// that reaches Koala's batch size (its own constants, so that the two cannot drift apart) is sent at
// once, without waiting for the end of the turn.
import type WebSocket from 'ws';
import { BATCH_BYTES, BATCH_ENVELOPES } from '../../src/runtime/wire/frame.ts';

export const REQUEST = 1;
export const RESPONSE = 2;
const TARGET = Buffer.from('IBench/17.ping');
const CHAIN = Buffer.from('q1w2e3r4.t5y');

export const ID_OFFSET = 3; // from the start of a message (after the u16 length and the kind)
export const KIND_OFFSET = 2;
/** Size of a request/response with an int32 payload. */
export const MESSAGE_BYTES = 2 + 1 + 4 + 1 + TARGET.length + CHAIN.length + 2 + 4;
const PAYLOAD_OFFSET = MESSAGE_BYTES - 4;

export class Batcher {
  #buf = Buffer.allocUnsafe(64 * 1024);
  #pos = 0;
  #scheduled = false;
  #count = 0;
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  /** Room for `n` more bytes; returns the buffer and the offset to write at. */
  #reserve(n: number): number {
    if (this.#pos + n > this.#buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
      this.#buf.copy(next, 0, 0, this.#pos);
      this.#buf = next;
    }
    return this.#pos;
  }

  #commit(end: number): void {
    this.#pos = end;
    if (++this.#count >= BATCH_ENVELOPES || this.#pos >= BATCH_BYTES) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Encodes a request for `ping(n)`. */
  request(id: number, n: number): void {
    const at = this.#reserve(MESSAGE_BYTES);
    const b = this.#buf;
    let p = at;
    b.writeUInt16LE(MESSAGE_BYTES - 2, p);
    b[p + 2] = REQUEST;
    b.writeUInt32LE(id, p + 3);
    b[p + 7] = TARGET.length;
    p += 8;
    p += TARGET.copy(b, p);
    p += CHAIN.copy(b, p);
    b.writeUInt16LE(4, p);
    b.writeInt32LE(n, p + 2);
    this.#commit(p + 6);
  }

  /** Copies a message from a received frame, with a new kind and id. */
  forward(frame: Buffer, start: number, end: number, kind: number, id: number): void {
    const at = this.#reserve(end - start);
    frame.copy(this.#buf, at, start, end);
    this.#buf[at + KIND_OFFSET] = kind;
    this.#buf.writeUInt32LE(id, at + ID_OFFSET);
    this.#commit(at + end - start);
  }

  flush(): void {
    this.#scheduled = false;
    this.#count = 0;
    if (this.#pos === 0) return;
    const frame = Buffer.from(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    this.#ws.send(frame, { binary: true });
  }
}

/** Calls `each(start, end, id)` for every message of a frame. */
export function eachMessage(frame: Buffer, each: (start: number, end: number, id: number) => void): void {
  let pos = 0;
  while (pos + 2 <= frame.length) {
    const end = pos + 2 + frame.readUInt16LE(pos);
    if (end > frame.length) throw new Error('truncated message');
    each(pos, end, frame.readUInt32LE(pos + ID_OFFSET));
    pos = end;
  }
}

export function payloadInt(frame: Buffer, start: number): number {
  return frame.readInt32LE(start + PAYLOAD_OFFSET);
}
