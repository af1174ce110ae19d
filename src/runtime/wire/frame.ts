// Batching: every envelope produced in one event-loop turn goes out in one binary frame.
// Envelopes are Avro-encoded straight into a reused, growing buffer; the only copy is one per frame.
import { envelopeType, type Envelope } from './schemas.ts';

const INITIAL_SIZE = 64 * 1024;

export class FrameWriter {
  #buf = Buffer.allocUnsafe(INITIAL_SIZE);
  #pos = 0;
  #count = 0;

  get count(): number {
    return this.#count;
  }

  get size(): number {
    return this.#pos;
  }

  /** Appends one envelope. Throws (leaving the batch intact) if the envelope does not match the schema. */
  write(env: Envelope): void {
    let end = envelopeType.encode(env, this.#buf, this.#pos);
    while (end < 0) {
      // avsc reports how many bytes it lacked as a negative position: grow and re-encode.
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#buf.length - end));
      this.#buf.copy(next, 0, 0, this.#pos);
      this.#buf = next;
      end = envelopeType.encode(env, this.#buf, this.#pos);
    }
    this.#pos = end;
    this.#count++;
  }

  /** Hands out the frame (a private copy: the socket may still hold it after we reuse our buffer). */
  take(): Buffer {
    const frame = Buffer.from(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    this.#count = 0;
    if (this.#buf.length > 16 * INITIAL_SIZE) this.#buf = Buffer.allocUnsafe(INITIAL_SIZE);
    return frame;
  }
}

/** Splits a frame back into envelopes. Throws on a truncated or malformed frame. */
export function readFrame(frame: Buffer, onEnvelope: (env: Envelope) => void): void {
  let pos = 0;
  while (pos < frame.length) {
    const { value, offset } = envelopeType.decode(frame, pos);
    if (offset < 0 || offset > frame.length || value === undefined) throw new Error('truncated envelope');
    pos = offset;
    onEnvelope(value);
  }
}
