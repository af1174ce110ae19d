// HTTP/1.1 requests to one Consul agent over a small pool of kept-alive TCP connections.
//
// Why not node:http (or the `consul` package on top of it): every activation costs a few Consul
// requests, and each ClientRequest with its IncomingMessage, streams, header objects and (in the
// package) its middleware pipeline is several kB of short-lived objects, many of which are still
// alive at a scavenge while hundreds of requests are in flight or queued in the http.Agent. V8
// answers that survival by growing the young generation to its maximum (128 MB of new space), which
// it keeps: +60–100 MB of RSS per process after a burst of activations, with a small heapUsed. Here
// a request waiting for a connection is one small object, and one in flight is a string and a
// parser.
//
// At most `maxSockets` connections: Consul refuses more than `limits.http_max_conns_per_client`
// (200) from one address, and a burst of activations would otherwise open one per request.
import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { ResponseReader, type HttpResponse } from './http-response.ts';

export type { HttpResponse } from './http-response.ts';

/** The agent could not be reached, or the connection failed before a whole response came back. */
export class ConnectionError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface RequestOptions {
  /** JSON, or a KV value as it is to be stored. */
  body?: string;
  /** Fails the request with ETIMEDOUT when no whole response came back by then (blocking queries). */
  timeoutMs?: number;
  /** Aborts the request (closing its connection): a watch that ends while its query is held. */
  signal?: AbortSignal;
}

interface Pending {
  head: string;
  body: string | undefined;
  timeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  resolve: (res: HttpResponse) => void;
  reject: (err: Error) => void;
}

/** An idle connection is closed after this long (the agent never closes one by itself). */
const IDLE_MS = 30_000;

/** One TCP connection, one request at a time. */
class Connection {
  readonly socket: Socket;
  #reader = new ResponseReader();
  #current: Pending | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onAbort: (() => void) | undefined;
  /** Closed: reported to the pool once, never used again. */
  #dead = false;
  readonly #done: (conn: Connection, reusable: boolean) => void;

  constructor(host: string, port: number, tls: ConnectionOptions | undefined, done: (conn: Connection, reusable: boolean) => void) {
    this.#done = done;
    // A TLS socket takes writes before its handshake is done (it queues them), like a TCP one before it connects.
    this.socket = tls === undefined ? connect({ host, port, noDelay: true }) : connectTls({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...tls }).setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.#data(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(new ConnectionError(err.code ?? 'ECONNRESET', err.message)));
    this.socket.on('close', () => this.#fail(new ConnectionError('ECONNRESET', 'the agent closed the connection')));
    this.socket.on('timeout', () => this.socket.destroy()); // idle for IDLE_MS
  }

  send(p: Pending): void {
    this.#current = p;
    this.#reader = new ResponseReader();
    this.socket.setTimeout(0);
    this.socket.ref();
    if (p.timeoutMs !== undefined) {
      this.#timer = setTimeout(() => this.#fail(new ConnectionError('ETIMEDOUT', `no answer within ${p.timeoutMs} ms`)), p.timeoutMs);
      this.#timer.unref();
    }
    if (p.signal) {
      this.#onAbort = () => this.#fail(new ConnectionError('ABORTED', 'request aborted'));
      p.signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.socket.write(p.body === undefined ? p.head : p.head + p.body);
  }

  /** Waiting for the next request: does not keep the process alive. */
  park(): void {
    this.socket.unref();
    this.socket.setTimeout(IDLE_MS);
  }

  #data(chunk: Buffer): void {
    const p = this.#current;
    if (p === undefined) {
      this.socket.destroy(); // bytes nobody asked for
      return;
    }
    let res: HttpResponse | undefined;
    try {
      res = this.#reader.feed(chunk);
    } catch (err) {
      this.#fail(new ConnectionError('EPROTO', `bad response from the agent: ${(err as Error).message}`));
      return;
    }
    if (res === undefined) return;
    this.#finish();
    if (res.close) {
      this.#dead = true;
      this.socket.destroy();
    }
    p.resolve(res);
    this.#done(this, !res.close);
  }

  #fail(err: ConnectionError): void {
    if (this.#dead) return;
    this.#dead = true;
    const p = this.#current;
    this.#finish();
    if (!this.socket.destroyed) this.socket.destroy();
    p?.reject(err);
    this.#done(this, false);
  }

  #finish(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#onAbort) this.#current?.signal?.removeEventListener('abort', this.#onAbort);
    this.#onAbort = undefined;
    this.#current = undefined;
  }
}

export class AgentHttp {
  readonly #host: string;
  readonly #port: number;
  readonly #headers: string;
  readonly #maxSockets: number;
  readonly #tls: ConnectionOptions | undefined;
  readonly #all = new Set<Connection>();
  readonly #idle: Connection[] = [];
  /** Requests waiting for a connection, oldest first. */
  #queue: Pending[] = [];
  #closed = false;

  /** `tls`: speak HTTPS (the agent's `ports.https`), with these options (CA, client certificate). */
  constructor(opts: { host: string; port: number; token?: string; maxSockets: number; tls?: ConnectionOptions }) {
    this.#host = opts.host;
    this.#port = opts.port;
    this.#maxSockets = opts.maxSockets;
    this.#tls = opts.tls;
    if (opts.token !== undefined && /[\r\n]/.test(opts.token)) throw new Error('the Consul token contains a line break');
    this.#headers = `Host: ${opts.host}:${opts.port}\r\n${opts.token ? `X-Consul-Token: ${opts.token}\r\n` : ''}`;
  }

  request(method: 'GET' | 'PUT' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new ConnectionError('ECLOSED', 'the client is closed'));
      if (opts.signal?.aborted) return reject(new ConnectionError('ABORTED', 'request aborted'));
      const body = opts.body;
      const length = body === undefined ? 0 : Buffer.byteLength(body);
      const head = `${method} ${path} HTTP/1.1\r\n${this.#headers}Content-Length: ${length}\r\n\r\n`;
      this.#dispatch({ head, body, timeoutMs: opts.timeoutMs, signal: opts.signal, resolve, reject });
    });
  }

  /** Closes every connection; requests in flight or waiting fail. */
  close(): void {
    this.#closed = true;
    const queued = this.#queue;
    this.#queue = [];
    for (const p of queued) p.reject(new ConnectionError('ECLOSED', 'the client is closed'));
    for (const conn of [...this.#all]) conn.socket.destroy();
  }

  #dispatch(p: Pending): void {
    const idle = this.#idle.pop();
    if (idle) return idle.send(p);
    if (this.#all.size < this.#maxSockets) {
      const conn = new Connection(this.#host, this.#port, this.#tls, (c, reusable) => this.#done(c, reusable));
      this.#all.add(conn);
      return conn.send(p);
    }
    this.#queue.push(p);
  }

  /** A connection finished a request: give it the next waiting one, or park it (or forget it). */
  #done(conn: Connection, reusable: boolean): void {
    if (!reusable) {
      this.#all.delete(conn);
      const i = this.#idle.indexOf(conn);
      if (i >= 0) this.#idle.splice(i, 1);
    }
    // A request dropped because its connection failed frees a slot for a waiting one, too.
    let next = this.#closed ? undefined : this.#queue.shift();
    while (next?.signal?.aborted) {
      next.reject(new ConnectionError('ABORTED', 'request aborted'));
      next = this.#queue.shift();
    }
    if (next) return reusable ? conn.send(next) : this.#dispatch(next);
    if (reusable && !this.#closed) {
      conn.park();
      this.#idle.push(conn);
    }
  }
}
