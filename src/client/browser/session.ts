// `koala/client` for browsers: a client session with no Node APIs and no dependencies (the page
// imports it from the gateway, which serves it at /koala/client/session.ts as JavaScript). It binds
// with a ticket (a first packet your backend signed), sends messages to the bound actor, receives
// pushes, calls actors through typed proxies, and reconnects with backoff, resuming the binding.
import type { AvroProtocol, AvroSchema, Infer } from '../../runtime/interface/avro-types.ts';
import type { ActorInterface, ActorProxy } from '../../runtime/interface/interface.ts';
import { ENVELOPE_KINDS, ENVELOPE_SCHEMA, ERROR_SCHEMA, SESSION_REPLY_SCHEMA } from '../../runtime/wire/schema-json.ts';
import { AvroCodec } from './avro.ts';
import { typedView, type TypedSession } from '../typed-view.ts';

export { AvroCodec };

type Kind = (typeof ENVELOPE_KINDS)[number];

interface Envelope {
  kind: Kind;
  id: number;
  iface: string;
  key: string;
  method: string;
  chain: string;
  deadline: number;
  epoch: number;
  headers: Record<string, string>;
  payload: Uint8Array;
}

/** A failure reported by the cluster: Koala's error code, name and message. */
export class KoalaClientError extends Error {
  readonly code: string;
  readonly actor: string;
  constructor(code: string, message: string, name = 'KoalaError', actor = '') {
    super(message);
    this.name = name;
    this.code = code;
    this.actor = actor;
  }
}

const envelopes = new AvroCodec(ENVELOPE_SCHEMA);
const errors = new AvroCodec(ERROR_SCHEMA);
const replies = new AvroCodec(SESSION_REPLY_SCHEMA);
const strings = new AvroCodec('string');

/** One value that fills `bytes` exactly: trailing bytes mean it was written as another type. */
function decodeWhole(codec: AvroCodec, bytes: Uint8Array): unknown {
  const { value, offset } = codec.decode(bytes);
  if (offset !== bytes.length) throw new RangeError(`${bytes.length - offset} bytes left over`);
  return value;
}

/** The same typed proxy as in Node, inferred from the protocol literal. */
export type BrowserProxy<P extends AvroProtocol> = ActorProxy<ActorInterface<P>>;

/** The bound actor's session types, as its interface declares them (`session: { inbound, outbound }`). */
export interface SessionTypes {
  readonly inbound?: AvroSchema;
  readonly outbound?: AvroSchema;
}

/** A session's messages and pushes as typed values (`BrowserSession.typed`). */
export type BrowserTypedSession<In, Out> = TypedSession<In, Out>;

/** `typed(types)`'s view: values of `types.inbound` / `types.outbound`, bytes where one is not given. */
export type TypedFor<S extends SessionTypes> = BrowserTypedSession<S extends { readonly inbound: infer T } ? Infer<T> : Uint8Array, S extends { readonly outbound: infer T } ? Infer<T> : Uint8Array>;

type StateListener = (state: 'open' | 'reconnecting' | 'closed', error?: KoalaClientError) => void;

const page = (globalThis as { location?: { protocol: string; host: string } }).location;

export interface BrowserSessionOptions {
  /** The gateway's WebSocket URL (`wss://host:port`); default: the page's own host. */
  url?: string;
  /** The signed first packet, or a function fetching a fresh one (used again if resuming fails). */
  ticket: Uint8Array | (() => Promise<Uint8Array>);
  reconnect?: boolean;
  timeoutMs?: number;
}

export class BrowserSession {
  readonly #opts: BrowserSessionOptions;
  readonly #push = new Set<(data: Uint8Array) => void>();
  readonly #state = new Set<StateListener>();
  readonly #pending = new Map<number, { resolve: (e: Envelope) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  #ws: WebSocket | undefined;
  #reply: { session: string; iface: string; key: string; resume: string } | undefined;
  #nextId = 1;
  #closed = false;
  #chains = 0;

  private constructor(opts: BrowserSessionOptions) {
    this.#opts = opts;
  }

  static async connect(opts: BrowserSessionOptions): Promise<BrowserSession> {
    const s = new BrowserSession(opts);
    await s.#open(typeof opts.ticket === 'function' ? await opts.ticket() : opts.ticket);
    return s;
  }

  get id(): string {
    return this.#reply?.session ?? '';
  }

  /** The bound actor, `Interface/id`. */
  get actor(): string {
    return this.#reply ? `${this.#reply.iface}/${this.#reply.key}` : '';
  }

  onPush(listener: (data: Uint8Array) => void): () => void {
    this.#push.add(listener);
    return () => this.#push.delete(listener);
  }

  /** Pushes decoded as Avro strings (for actors whose `session.outbound` is "string"). */
  onPushText(listener: (text: string) => void): () => void {
    return this.onPush((data) => listener(strings.decode(data).value as string));
  }

  /**
   * State changes. A failure about a message (the actor threw in `onSessionMessage`, a push that
   * does not decode in `typed`) arrives as `open` with the error.
   */
  onState(listener: StateListener): () => void {
    this.#state.add(listener);
    return () => this.#state.delete(listener);
  }

  /** A message to the bound actor: bytes, or a string Avro-encoded (for `session.inbound: "string"`). */
  send(data: Uint8Array | string): void {
    this.#send({ kind: 'MESSAGE', id: 0, iface: '', key: '', method: '', chain: '', deadline: 0, epoch: 0, headers: {}, payload: typeof data === 'string' ? strings.encode(data) : data });
  }

  /**
   * Messages and pushes as values of the bound actor's session types: pass the `session` object of
   * its interface's options (the same literal, `as const`, for the TypeScript types). A type not
   * given means bytes. A push that does not decode goes to `onState` listeners, not to `listener`.
   */
  typed<const S extends SessionTypes>(types: S): TypedFor<S> {
    const inbound = types.inbound === undefined ? undefined : new AvroCodec(types.inbound);
    const outbound = types.outbound === undefined ? undefined : new AvroCodec(types.outbound);
    const view = typedView(
      this,
      inbound && ((value) => inbound.encode(value)),
      outbound && ((data) => decodeWhole(outbound, data)),
      (err) => this.#emit('open', new KoalaClientError('BAD_FRAME', `a push from ${this.actor} does not decode as the session's outbound type (${err.message})`)),
    );
    return view as TypedFor<S>;
  }

  /** A typed proxy to any actor, from the interface's protocol literal (the same `as const` object the plugin uses). */
  getProxy<P extends AvroProtocol>(protocol: P, id: string | number): BrowserProxy<P> {
    const name = protocol.namespace ? `${protocol.namespace}.${protocol.protocol}` : protocol.protocol;
    const proxy: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
    for (const [method, message] of Object.entries(protocol.messages)) {
      const request = new AvroCodec({ type: 'record', name: `${method}Request`, fields: message.request }, protocol.types ?? [], protocol.namespace);
      const response = new AvroCodec(message.response, protocol.types ?? [], protocol.namespace);
      proxy[method] = async (...args: unknown[]) => {
        const record = Object.fromEntries(message.request.map((f, i) => [f.name, args[i]]));
        const timeoutMs = this.#opts.timeoutMs ?? 30_000;
        const env = { iface: name, key: String(id), method, chain: `browser.${Math.random().toString(36).slice(2)}.${++this.#chains}`, deadline: timeoutMs, epoch: 0, headers: {}, payload: request.encode(record) };
        if (message['one-way']) {
          this.#send({ ...env, kind: 'ONEWAY', id: 0 });
          return undefined;
        }
        const answer = await this.#request(env, timeoutMs);
        if (answer.kind === 'ERROR') {
          const e = errors.decode(answer.payload).value as { name: string; code: string; message: string; actor: string };
          throw new KoalaClientError(e.code, e.message, e.name, e.actor);
        }
        return response.decode(answer.payload).value;
      };
    }
    return proxy as unknown as BrowserProxy<P>;
  }

  close(): void {
    this.#closed = true;
    this.#ws?.close(1000);
  }

  #open(ticket: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const base = this.#opts.url ?? `${page?.protocol === 'https:' ? 'wss' : 'ws'}://${page?.host ?? ''}`;
      const ws = new WebSocket(`${base.replace(/\/$/, '')}/v1/session`);
      ws.binaryType = 'arraybuffer';
      let bound = false;
      ws.onopen = () => ws.send(ticket);
      ws.onmessage = (event: { data: ArrayBuffer }) => {
        const bytes = new Uint8Array(event.data);
        if (!bound) {
          const r = replies.decode(bytes).value as { ok: boolean; session: string; iface: string; key: string; resume: string; code: string; message: string };
          if (!r.ok) return reject(new KoalaClientError(r.code, r.message));
          bound = true;
          this.#ws = ws;
          this.#reply = r;
          this.#emit('open');
          return resolve();
        }
        for (let pos = 0; pos < bytes.length; ) {
          const { value, offset } = envelopes.decode(bytes, pos);
          pos = offset;
          this.#onEnvelope(value as Envelope);
        }
      };
      ws.onclose = () => {
        if (!bound) return reject(new KoalaClientError('CONNECTION_LOST', 'the gateway closed the connection'));
        if (this.#ws !== ws) return;
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(new KoalaClientError('CONNECTION_LOST', 'the session connection closed'));
        }
        this.#pending.clear();
        if (this.#closed || this.#opts.reconnect === false) {
          this.#emit('closed');
          return;
        }
        this.#emit('reconnecting');
        void this.#reconnect();
      };
    });
  }

  async #reconnect(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      try {
        // A resume packet: only the token (version 1, empty claims and strings, no signature).
        const token = strings.encode(this.#reply?.resume ?? '');
        const resume = new Uint8Array([2, 0, 0, 0, ...new AvroCodec('long').encode(Date.now()), 0, ...token, 0]);
        await this.#open(resume);
        return;
      } catch {
        if (typeof this.#opts.ticket === 'function') {
          try {
            await this.#open(await this.#opts.ticket());
            return;
          } catch {
            // keep trying
          }
        }
      }
    }
  }

  #request(env: Omit<Envelope, 'id' | 'kind'>, timeoutMs: number): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new KoalaClientError('TIMEOUT', `${env.iface}/${env.key}.${env.method} did not answer within ${timeoutMs} ms`, 'TimeoutError'));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#send({ ...env, id, kind: 'REQUEST' });
    });
  }

  #send(env: Envelope): void {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) throw new KoalaClientError('CONNECTION_LOST', 'the session is not connected');
    this.#ws.send(envelopes.encode(env));
  }

  #emit(state: 'open' | 'reconnecting' | 'closed', error?: KoalaClientError): void {
    for (const l of this.#state) l(state, error);
  }

  #onEnvelope(env: Envelope): void {
    if (env.kind === 'PUSH') {
      for (const l of this.#push) l(env.payload);
      return;
    }
    if (env.id === 0) {
      // An error about a message (no request to answer): reported as a state event, as in Node.
      if (env.kind === 'ERROR') {
        const e = errors.decode(env.payload).value as { name: string; code: string; message: string; actor: string };
        this.#emit('open', new KoalaClientError(e.code, e.message, e.name, e.actor));
      }
      return;
    }
    const pending = this.#pending.get(env.id);
    if (pending === undefined) return;
    this.#pending.delete(env.id);
    clearTimeout(pending.timer);
    pending.resolve(env);
  }
}
