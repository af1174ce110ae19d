// Reads one HTTP/1.1 response from the bytes of a connection, as they arrive.
//
// Only what a Consul agent sends: a status line, headers, and a body framed by Content-Length or
// by chunked transfer encoding (Go's net/http uses one or the other; no trailers, no compression
// since we never ask for it). Koala reads few headers, so only those are kept.

export interface HttpResponse {
  status: number;
  /** `X-Consul-Index`, for blocking queries. */
  index: string | undefined;
  /** Whether the agent will close the connection after this response. */
  close: boolean;
  body: string;
}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
/** A response head larger than this is not from a Consul agent. */
const MAX_HEAD = 64 * 1024;

export class ResponseParseError extends Error {}

/** An answer Consul refused with this HTTP status. */
export class StatusError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    super(`HTTP ${status}${body.trim() ? `: ${body.trim().split('\n')[0]!.slice(0, 200)}` : ''}`);
    this.status = status;
  }
}

export class ResponseReader {
  /** Bytes received and not yet consumed: the head, or a chunk not yet whole. */
  #buf: Buffer = Buffer.alloc(0);
  #head: Head | undefined;
  /** Body bytes so far, kept apart until the body is whole (a large body comes in many pieces). */
  #parts: Buffer[] = [];
  #received = 0;

  /**
   * Adds bytes; returns the response once it is complete. Bytes past its end are an error: the
   * agent answers one request at a time per connection, so there must be none.
   */
  feed(chunk: Buffer): HttpResponse | undefined {
    if (this.#head === undefined) {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      const end = this.#buf.indexOf(HEAD_END);
      if (end < 0) {
        if (this.#buf.length > MAX_HEAD) throw new ResponseParseError('response head too large');
        return undefined;
      }
      this.#head = parseHead(this.#buf.toString('latin1', 0, end));
      chunk = this.#buf.subarray(end + HEAD_END.length);
      this.#buf = Buffer.alloc(0);
    }
    const head = this.#head;
    let body: Buffer | undefined;
    if (head.chunked) {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      body = this.#dechunk();
    } else if (head.length !== undefined) {
      if (chunk.length > 0) this.#parts.push(chunk);
      this.#received += chunk.length;
      if (this.#received > head.length) throw new ResponseParseError('unexpected bytes after the response');
      if (this.#received === head.length) body = Buffer.concat(this.#parts, head.length);
    } else if (head.status === 204 || head.status === 304) {
      if (chunk.length > 0) throw new ResponseParseError('unexpected bytes after the response');
      body = Buffer.alloc(0);
    } else {
      throw new ResponseParseError('response has neither Content-Length nor chunked encoding');
    }
    if (body === undefined) return undefined;
    return { status: head.status, index: head.index, close: head.close, body: body.toString('utf8') };
  }

  /** Consumes whole chunks; the body once the last (empty) chunk and the final CRLF are in. */
  #dechunk(): Buffer | undefined {
    for (;;) {
      const lineEnd = this.#buf.indexOf(CRLF);
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(this.#buf.toString('latin1', 0, lineEnd).split(';')[0]!.trim(), 16);
      if (!Number.isFinite(size) || size < 0) throw new ResponseParseError('bad chunk size');
      const dataStart = lineEnd + CRLF.length;
      if (size === 0) {
        // No trailers from Consul: the last chunk is followed by an empty line.
        if (this.#buf.length < dataStart + CRLF.length) return undefined;
        if (this.#buf.length > dataStart + CRLF.length) throw new ResponseParseError('unexpected bytes after the response');
        return Buffer.concat(this.#parts);
      }
      if (this.#buf.length < dataStart + size + CRLF.length) return undefined;
      this.#parts.push(this.#buf.subarray(dataStart, dataStart + size));
      this.#buf = this.#buf.subarray(dataStart + size + CRLF.length);
    }
  }
}

interface Head {
  status: number;
  index: string | undefined;
  close: boolean;
  length: number | undefined;
  chunked: boolean;
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!status) throw new ResponseParseError(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`);
  let index: string | undefined;
  let close = lines[0]!.startsWith('HTTP/1.0');
  let length: number | undefined;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const value = line.slice(colon + 1).trim();
    switch (line.slice(0, colon).toLowerCase()) {
      case 'content-length':
        length = Number(value);
        if (!Number.isSafeInteger(length) || length < 0) throw new ResponseParseError('bad Content-Length');
        break;
      case 'transfer-encoding':
        chunked = value.toLowerCase().includes('chunked');
        break;
      case 'connection':
        close = value.toLowerCase() === 'close';
        break;
      case 'x-consul-index':
        index = value;
        break;
    }
  }
  return { status: Number(status[1]), index, close, length, chunked };
}
