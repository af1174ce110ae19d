// A Peer is one authenticated WebSocket connection carrying envelopes both ways: it batches what
// we send, matches answers to our requests, enforces deadlines and detects a dead remote.
import type { WebSocket } from 'ws';
import { KoalaError, TimeoutError } from '../errors/errors.ts';
import { clockNow, lastReading } from '../util/clock.ts';
import { DeadlineTimer } from '../util/deadline-timer.ts';
import { answerEnvelope, FrameWriter, RAW, readFrame, type DecodedEnvelope } from './frame.ts';
import { PendingTable } from './pending.ts';
import type { MethodCodec, ValueCodec } from './value-codec.ts';
import { INHERITED_CALLS_VERSION, type Envelope, type EnvelopeKind } from './schemas.ts';

export interface PeerIdentity {
  node: string;
  role: string;
  cluster: string;
  /** The protocol version it speaks (from the handshake; undefined: 1). From INHERITED_CALLS_VERSION on, calls to it may inherit their fields (frame.ts). */
  version?: number;
}

export type RequestHandler = (env: DecodedEnvelope, peer: Peer) => void;

export interface PeerOptions {
  onRequest: RequestHandler;
  /** Ping interval; a peer that misses a whole interval is considered dead. */
  heartbeatMs?: number;
  log?: (line: string) => void;
  /** Keep where each received call's bytes lie, so that it can be forwarded by copying them (a gateway). */
  spans?: boolean;
  /** Frames that arrived before the Peer existed (right behind the handshake); handled first. */
  early?: readonly { data: Buffer; isBinary: boolean }[];
}

/**
 * Told the answer to a request (RESPONSE, ERROR or REDIRECT, with its payload at `frame[start,
 * end)`: read or copy it there, do not keep the frame), or why there is none.
 */
export interface AnswerSink {
  answer(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void;
  fail(err: Error): void;
}

/**
 * An AnswerSink that is also the Peer's record of its request while it is pending (what was asked,
 * and until when), so that a request needs no bookkeeping object of its own. One per request.
 * A call's record that is also its envelope (`ValueAnswer`) already holds what was asked: the Peer
 * then sets only `id`.
 */
export interface PendingRequest extends AnswerSink {
  /** Set by the Peer when the request is sent. */
  id: number;
  deadline: number;
  iface: string;
  key: string;
  method: string;
}

/** A PendingRequest whose fields the Peer fills in when it sends the request. */
export abstract class AnswerHandler implements PendingRequest {
  id = 0;
  deadline = 0;
  iface = '';
  key = '';
  method = '';
  abstract answer(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void;
  abstract fail(err: Error): void;
}

/** Adapts a Promise's resolve/reject to an AnswerHandler. */
class Settle extends AnswerHandler {
  readonly #resolve: (env: DecodedEnvelope) => void;
  readonly #reject: (err: Error) => void;

  constructor(resolve: (env: DecodedEnvelope) => void, reject: (err: Error) => void) {
    super();
    this.#resolve = resolve;
    this.#reject = reject;
  }

  answer(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void {
    this.#resolve(answerEnvelope(kind, id, frame.subarray(start, end)));
  }

  fail(err: Error): void {
    this.#reject(err);
  }
}

const MAX_ID = 2 ** 52;

export type Outgoing = Omit<Envelope, 'id' | 'kind'>;

/**
 * Deadlines travel as the time left, not as a clock reading, so that machines whose clocks
 * disagree still agree on how long a call may take (only the network delay is not accounted for).
 */
function budget(deadline: number, now = Date.now()): number {
  return deadline > 0 ? Math.max(1, deadline - now) : 0;
}

export class Peer {
  readonly remote: PeerIdentity;
  readonly #ws: WebSocket;
  readonly #opts: PeerOptions;
  readonly #writer: FrameWriter;
  readonly #pending = new PendingTable<PendingRequest>();
  readonly #closeListeners: ((err: KoalaError) => void)[] = [];
  #nextId = 1;
  #flushScheduled = false;
  readonly #deadlines = new DeadlineTimer((now) => this.#sweep(now));
  #heartbeat: NodeJS.Timeout | undefined;
  #alive = true;
  #closed = false;

  constructor(ws: WebSocket, remote: PeerIdentity, opts: PeerOptions) {
    this.#ws = ws;
    this.remote = remote;
    this.#opts = opts;
    this.#writer = new FrameWriter((remote.version ?? 1) >= INHERITED_CALLS_VERSION);
    ws.on('message', (data, isBinary) => this.#onFrame(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    ws.on('error', () => {}); // 'close' follows and carries what we need
    ws.on('pong', () => (this.#alive = true));
    const heartbeatMs = opts.heartbeatMs ?? 5000;
    if (heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs).unref();
    }
    for (const frame of opts.early ?? []) this.#onFrame(frame.data, frame.isBinary);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  /** Sends a request and resolves with its answer (RESPONSE, ERROR or REDIRECT envelope). */
  request(env: Outgoing): Promise<DecodedEnvelope> {
    return new Promise<DecodedEnvelope>((resolve, reject) => this.#requestTo(env, new Settle(resolve, reject)));
  }

  /**
   * Sends a request; `handler` hears its answer, or the error (closed connection, deadline, an
   * envelope that does not encode: then nothing is sent or pending).
   */
  #requestTo(env: Outgoing, handler: PendingRequest): void {
    if (this.#closed) {
      handler.fail(this.#closedError());
      return;
    }
    const id = this.#takeId();
    try {
      this.#writer.writeCall('REQUEST', id, env, budget(env.deadline), env.epoch, env.payload);
    } catch (err) {
      handler.fail(err as Error);
      return;
    }
    this.#track(id, handler, env.deadline, env);
  }

  /**
   * Sends a call whose payload is `args`, encoded in place with the method's parameter types
   * (checked by the caller: `checkArgs`). ONEWAY when `handler` is undefined. `now`: the clock
   * reading the caller computed the deadline from, if it has one (a clock read per call is a
   * measurable part of a call's cost).
   */
  requestArgs(env: Omit<Outgoing, 'payload'>, method: MethodCodec, args: readonly unknown[], handler: PendingRequest | undefined, now = Date.now()): void {
    if (this.#closed) {
      handler?.fail(this.#closedError());
      return;
    }
    const id = handler === undefined ? 0 : this.#takeId();
    try {
      this.#writer.writeArgs(handler === undefined ? 'ONEWAY' : 'REQUEST', id, env, budget(env.deadline, now), env.epoch, method, args);
    } catch (err) {
      handler?.fail(err as Error);
      return;
    }
    if (handler === undefined) this.#scheduleFlush();
    else this.#track(id, handler, env.deadline, env);
  }

  /**
   * Forwards a call decoded from another connection, copying its bytes (a gateway's path), with
   * our own id, the given absolute deadline and `epoch` (0, or a placement grant: see schemas.ts).
   */
  forward(env: DecodedEnvelope, deadline: number, epoch: number, handler: PendingRequest): void {
    if (this.#closed) {
      handler.fail(this.#closedError());
      return;
    }
    const id = this.#takeId();
    const raw = env[RAW];
    const left = budget(deadline, lastReading());
    if (raw === undefined) this.#writer.writeCall('REQUEST', id, env, left, epoch, env.payload);
    else this.#writer.forwardCall('REQUEST', id, raw, left, epoch);
    this.#track(id, handler, deadline, env);
  }

  #takeId(): number {
    const id = this.#nextId;
    this.#nextId = id >= MAX_ID ? 1 : id + 1;
    return id;
  }

  #track(id: number, handler: PendingRequest, deadline: number, target: { iface: string; key: string; method: string }): void {
    handler.id = id;
    if (handler !== target) {
      handler.deadline = deadline;
      handler.iface = target.iface;
      handler.key = target.key;
      handler.method = target.method;
    }
    this.#pending.add(handler);
    this.#deadlines.expect(deadline);
    this.#scheduleFlush();
  }

  #closedError(): KoalaError {
    return new KoalaError('CONNECTION_LOST', `connection to ${this.remote.node} is closed`);
  }

  /** Fire-and-forget: no answer is expected or tracked. */
  notify(env: Outgoing): void {
    if (this.#closed) return;
    this.#writer.writeCall('ONEWAY', 0, env, budget(env.deadline), env.epoch, env.payload);
    this.#scheduleFlush();
  }

  /**
   * Answers a request received from this peer: only kind, id and payload travel (the requester
   * matches answers by id). Late answers to a closed peer are dropped.
   */
  reply(request: Envelope, kind: EnvelopeKind, payload: Buffer): void {
    if (this.#closed) return;
    this.#writer.writeAnswer(kind, request.id, payload);
    this.#scheduleFlush();
  }

  /** Answers with the payload `frame[start, end)` (an answer passed on from another connection). */
  replyBytes(request: Envelope, kind: EnvelopeKind, frame: Buffer, start: number, end: number): void {
    if (this.#closed) return;
    this.#writer.writeAnswerBytes(kind, request.id, frame, start, end);
    this.#scheduleFlush();
  }

  /** Answers with `codec`'s encoding of `value`, encoded straight into the frame. Throws if it does not encode. */
  replyValue(request: Envelope, codec: ValueCodec, value: unknown): void {
    if (this.#closed) return;
    this.#writer.writeAnswerValue('RESPONSE', request.id, codec, value);
    this.#scheduleFlush();
  }

  /** Sends an envelope that expects no answer (a session's MESSAGE or PUSH). */
  send(env: Omit<Envelope, 'id'>): void {
    if (this.#closed) return;
    this.#writer.writeCall(env.kind, 0, env, env.deadline, env.epoch, env.payload);
    this.#scheduleFlush();
  }

  onClose(listener: (err: KoalaError) => void): void {
    this.#closeListeners.push(listener);
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed) return;
    this.#flush();
    this.#ws.close(code, reason);
    // A remote that never answers the closing handshake must not hold us up.
    setTimeout(() => this.#ws.terminate(), 1000).unref();
  }

  #scheduleFlush(): void {
    if (this.#writer.full) {
      // Sent now: the remote starts on it while this turn writes the next batch (frame.ts).
      this.#flush();
      return;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // setImmediate runs after the poll phase: everything this turn produced shares one frame,
      // and a lone message still leaves within the same loop iteration.
      setImmediate(this.#flushNow);
    }
  }

  readonly #flushNow = () => this.#flush();
  readonly #onEnvelopeBound = (env: DecodedEnvelope) => this.#onEnvelope(env);
  readonly #onAnswerBound = (kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number) => this.#onAnswer(kind, id, frame, start, end);
  #readFrame(data: Buffer): void {
    try {
      readFrame(data, this.#onEnvelopeBound, this.#opts.spans === true, this.#onAnswerBound);
    } catch (err) {
      this.#protocolError(`undecodable frame: ${(err as Error).message}`);
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#writer.count === 0 || this.#closed) return;
    this.#ws.send(this.#writer.take(), { binary: true });
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.#protocolError('text frames are not part of the Koala protocol; send binary Avro envelopes');
      return;
    }
    // A fresh reading for the frame, which its calls share (see util/clock.ts): their deadlines
    // count from it, and the lease checks and activity stamps they cause use it.
    clockNow();
    this.#readFrame(data);
  }

  /** A call (REQUEST, ONEWAY, CANCEL, MESSAGE, PUSH): answers come to `#onAnswer`. */
  #onEnvelope(env: DecodedEnvelope): void {
    // On the wire a deadline is the budget left (ms); here it becomes a time on our own clock.
    if (env.deadline > 0) env.deadline += lastReading();
    this.#opts.onRequest(env, this);
  }

  #onAnswer(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void {
    const pending = this.#pending.take(id);
    if (pending === undefined) return; // answer after its deadline: dropped on purpose
    try {
      pending.answer(kind, id, frame, start, end);
    } catch (err) {
      // The answer was fine; whoever handled it failed. That must not look like a bad frame.
      this.#opts.log?.(`handling the answer to ${pending.iface}/${pending.key}.${pending.method} failed: ${(err as Error).message}`);
    }
  }

  #protocolError(message: string): void {
    this.#opts.log?.(`closing connection from ${this.remote.node}: ${message}`);
    this.close(1007, `BAD_FRAME: ${message}`.slice(0, 120));
  }

  /** Fails the requests whose deadline has passed; returns the earliest deadline of the others. */
  #sweep(now: number): number {
    let next = Infinity;
    const expired = this.#pending.removeWhere((p) => {
      if (p.deadline <= 0) return false;
      if (p.deadline <= now) return true;
      if (p.deadline < next) next = p.deadline;
      return false;
    });
    for (const p of expired) p.fail(new TimeoutError(`${p.iface}/${p.key}.${p.method} did not answer before its deadline`));
    return next;
  }

  #beat(): void {
    if (!this.#alive) {
      this.#opts.log?.(`${this.remote.node} missed a heartbeat; dropping the connection`);
      this.#ws.terminate();
      return;
    }
    this.#alive = false;
    this.#ws.ping();
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#deadlines.stop();
    const err = new KoalaError('CONNECTION_LOST', `connection to ${this.remote.node} closed (${code}${reason ? `: ${reason}` : ''})`);
    for (const p of this.#pending.clear()) p.fail(err);
    for (const listener of this.#closeListeners) listener(err);
  }
}
