// `koala/client`: a client session of a Koala gateway. It binds to an actor with a signed first
// packet (issued by your backend, see `signFirstPacket`), sends that actor messages, receives its
// pushes, calls any actor through typed proxies, and reconnects with backoff, resuming its binding.
import WebSocket from 'ws';
import { newChainId } from '../runtime/actor/call-context.ts';
import { KoalaError } from '../runtime/errors/errors.ts';
import { resumePacket, SESSION_PATH, sessionReplyType, type SessionReply } from '../runtime/gateway/session-protocol.ts';
import type { ActorInterface, ActorProxy, SessionInbound, SessionOutbound } from '../runtime/interface/interface.ts';
import { typeForSchema } from '../runtime/interface/avro.ts';
import { typedView, type TypedSession } from './typed-view.ts';
import { createProxy } from '../runtime/interface/proxy.ts';
import { FrameWriter, readFrame } from '../runtime/wire/frame.ts';
import { encodeArgs, readAnswer } from '../runtime/wire/rpc.ts';
import { errorRecordType, type Envelope } from '../runtime/wire/schemas.ts';
import { fromErrorRecord, isErrorCode } from '../runtime/errors/errors.ts';

export { signFirstPacket } from '../runtime/gateway/session-protocol.ts';
export type { TypedSession } from './typed-view.ts';

export interface SessionOptions {
  /** The gateway: `ws://host:port` (the session path is added) or a full `…/v1/session` URL. */
  url: string;
  /** The signed first packet (bytes from `signFirstPacket`), or a function that fetches a fresh one. */
  firstPacket: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
  /** Reconnect after a lost connection, resuming the binding (default true). */
  reconnect?: boolean;
  /** Deadline of calls through proxies (default 30 s). */
  timeoutMs?: number;
  /** The gateway's gateway.limits.maxFrameBytes (default 1 MiB): batches are sent before they reach it. */
  maxFrameBytes?: number;
  /** Extra options for the WebSocket (TLS `ca`, …). */
  ws?: WebSocket.ClientOptions;
}

type PushListener = (data: Buffer) => void;
type StateListener = (state: 'open' | 'reconnecting' | 'closed', detail?: Error) => void;

interface Pending {
  resolve: (env: Envelope) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;

export class KoalaSession {
  readonly #opts: SessionOptions;
  readonly #push = new Set<PushListener>();
  readonly #state = new Set<StateListener>();
  readonly #pending = new Map<number, Pending>();
  readonly #writer = new FrameWriter();
  #ws: WebSocket | undefined;
  #reply: SessionReply | undefined;
  #nextId = 1;
  #closed = false;
  #flushScheduled = false;

  private constructor(opts: SessionOptions) {
    this.#opts = opts;
  }

  /** Connects and binds; rejects with the gateway's typed refusal (AUTH_FAILED, SESSION_LIMIT, …). */
  static async connect(opts: SessionOptions): Promise<KoalaSession> {
    const session = new KoalaSession(opts);
    const first = typeof opts.firstPacket === 'function' ? await opts.firstPacket() : opts.firstPacket;
    await session.#open(first);
    return session;
  }

  get id(): string {
    return this.#reply?.session ?? '';
  }

  /** The actor this session is bound to, as `Interface/id`. */
  get actor(): string {
    return this.#reply ? `${this.#reply.iface}/${this.#reply.key}` : '';
  }

  /** The token that resumes this binding after a reconnect (valid for gateway.session.resumeTtl). */
  get resumeToken(): string {
    return this.#reply?.resume ?? '';
  }

  /** Messages the bound actor pushes. Returns a function that unsubscribes. */
  onPush(listener: PushListener): () => void {
    this.#push.add(listener);
    return () => this.#push.delete(listener);
  }

  onState(listener: StateListener): () => void {
    this.#state.add(listener);
    return () => this.#state.delete(listener);
  }

  /** A message to the bound actor (its `onSessionMessage`), in order. */
  send(data: Uint8Array): void {
    this.#enqueue({ kind: 'MESSAGE', id: 0, iface: this.#reply?.iface ?? '', key: this.#reply?.key ?? '', method: '', chain: '', deadline: 0, epoch: 0, headers: {}, payload: Buffer.from(data) });
  }

  /**
   * This session's messages and pushes as values of the bound interface's session types
   * (`session: { inbound, outbound }` in its options; bytes where one is not declared). Throws a
   * TypeError when the session is bound to an actor of another interface. A push that does not
   * decode is reported to `onState` listeners (`open`, with a `BAD_FRAME` error), not to `listener`.
   */
  typed<I extends ActorInterface>(iface: I): TypedSession<SessionInbound<I>, SessionOutbound<I>> {
    if (this.#reply?.iface !== iface.name) throw new TypeError(`this session is bound to ${this.actor}, not to an actor of ${iface.name}`);
    const { inbound, outbound } = iface.options.session ?? {};
    const inType = inbound === undefined ? undefined : typeForSchema(inbound);
    const outType = outbound === undefined ? undefined : typeForSchema(outbound);
    // Built untyped: the generic session types are resolved for the caller, not in here.
    const view = typedView(
      this,
      inType && ((value) => inType.toBuffer(value)),
      outType && ((data) => outType.fromBuffer(Buffer.from(data.buffer, data.byteOffset, data.byteLength))),
      (err) => this.#emitState('open', new KoalaError('BAD_FRAME', `a push from ${this.actor} is not a value of ${iface.name}'s session.outbound type (${err.message})`)),
    );
    return view as TypedSession<SessionInbound<I>, SessionOutbound<I>>;
  }

  /** A typed proxy to any actor; calls go through this session's connection. */
  getProxy<I extends ActorInterface>(iface: I, id: string | number, opts: { timeoutMs?: number } = {}): ActorProxy<I> {
    return createProxy(iface, id, async (target, key, message, args) => {
      const timeoutMs = opts.timeoutMs ?? this.#opts.timeoutMs ?? 30_000;
      const payload = encodeArgs(target, message, args);
      const base = { iface: target.name, key, method: message.name, chain: newChainId(), deadline: timeoutMs, epoch: 0, headers: {}, payload };
      if (message.oneWay) {
        this.#enqueue({ ...base, kind: 'ONEWAY', id: 0 });
        return undefined;
      }
      const answer = readAnswer(await this.#request(base, timeoutMs), message);
      return answer.kind === 'value' ? answer.value : undefined;
    });
  }

  close(): void {
    this.#closed = true;
    this.#ws?.close(1000, 'client done');
    this.#failPending(new KoalaError('CONNECTION_LOST', 'the session was closed'));
  }

  #open(first: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = this.#opts.url.endsWith(SESSION_PATH) ? this.#opts.url : `${this.#opts.url.replace(/\/$/, '')}${SESSION_PATH}`;
      const ws = new WebSocket(url, { perMessageDeflate: false, ...this.#opts.ws });
      let bound = false;
      ws.on('error', (err) => {
        if (!bound) reject(new KoalaError('UNREACHABLE', `cannot reach ${url}: ${err.message}`));
      });
      ws.on('open', () => ws.send(first));
      ws.on('message', (data: Buffer) => {
        if (!bound) {
          let reply: SessionReply;
          try {
            reply = sessionReplyType.fromBuffer(data);
          } catch {
            reject(new KoalaError('BAD_FRAME', 'the gateway answered the first packet with something that is not a SessionReply'));
            ws.terminate();
            return;
          }
          if (!reply.ok) {
            reject(new KoalaError(isErrorCode(reply.code) ? reply.code : 'AUTH_FAILED', reply.message));
            return;
          }
          bound = true;
          this.#ws = ws;
          this.#reply = reply;
          this.#emitState('open');
          resolve();
          return;
        }
        try {
          readFrame(data, (env) => this.#onEnvelope(env));
        } catch {
          ws.close(1007, 'BAD_FRAME');
        }
      });
      ws.on('close', (code, reason) => {
        if (!bound) {
          reject(new KoalaError('CONNECTION_LOST', `the gateway closed the connection (${code}${reason.length ? `: ${reason.toString()}` : ''})`));
          return;
        }
        if (this.#ws !== ws) return;
        const err = new KoalaError(code === 4008 ? 'IDLE_TIMEOUT' : code === 1009 ? 'FRAME_TOO_LARGE' : 'CONNECTION_LOST', `session connection closed (${code}${reason.length ? `: ${reason.toString()}` : ''})`);
        this.#failPending(err);
        if (this.#closed || this.#opts.reconnect === false) {
          this.#emitState('closed', err);
          return;
        }
        this.#emitState('reconnecting', err);
        void this.#reconnect();
      });
    });
  }

  async #reconnect(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      await new Promise((r) => setTimeout(r, Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt)));
      if (this.#closed) return;
      try {
        await this.#open(resumePacket(this.resumeToken));
        return;
      } catch (err) {
        if ((err as KoalaError).code === 'AUTH_FAILED') {
          // The token expired: only a freshly signed packet can bind again.
          if (typeof this.#opts.firstPacket !== 'function') return this.#emitState('closed', err as Error);
          try {
            await this.#open(await this.#opts.firstPacket());
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
        reject(new KoalaError('TIMEOUT', `${env.iface}/${env.key}.${env.method} did not answer within ${timeoutMs} ms`, { name: 'TimeoutError' }));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#enqueue({ ...env, id, kind: 'REQUEST' });
    });
  }

  #enqueue(env: Envelope): void {
    if (this.#ws === undefined || this.#ws.readyState !== WebSocket.OPEN) throw new KoalaError('CONNECTION_LOST', 'the session is not connected');
    this.#writer.write(env);
    // A full batch goes now (the gateway starts on it while this turn writes more), as does one
    // that nears the gateway's frame limit.
    if (this.#writer.full || this.#writer.size >= (this.#opts.maxFrameBytes ?? 1024 * 1024) / 2) {
      this.#ws.send(this.#writer.take());
      return;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        if (this.#writer.count > 0 && this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(this.#writer.take());
      });
    }
  }

  #onEnvelope(env: Envelope): void {
    if (env.kind === 'PUSH') {
      // A copy: the payload is a view of the whole frame it came in, which a kept push would keep alive.
      const data = Buffer.from(env.payload);
      for (const listener of this.#push) listener(data);
      return;
    }
    if (env.id === 0) {
      // An error about a message (no request to answer): report it as a state event.
      if (env.kind === 'ERROR') this.#emitState('open', fromErrorRecord(errorRecordType.fromBuffer(env.payload)));
      return;
    }
    const pending = this.#pending.get(env.id);
    if (pending === undefined) return;
    this.#pending.delete(env.id);
    clearTimeout(pending.timer);
    pending.resolve(env);
  }

  #failPending(err: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }

  #emitState(state: 'open' | 'reconnecting' | 'closed', detail?: Error): void {
    for (const listener of this.#state) listener(state, detail);
  }
}
