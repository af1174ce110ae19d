// Routes calls to the host that owns the target actor. Positions are cached, so steady-state
// calls never touch placement; a REDIRECT from a host corrects the cache and the call is retried.
// Requests carry epoch 0 (an embedded epoch costs 8 bytes a call), except a gateway's first call
// to an actor it has just located, which carries placement's grant to the host it goes to.
import { KoalaError } from '../errors/errors.ts';
import { ByInterface } from '../util/by-interface.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorInterface } from '../interface/interface.ts';
import { checkArgs, encodeArgs, readAnswer, ValueAnswer, type StaleCallHandler } from '../wire/rpc.ts';
import type { Placement } from '../placement/protocol.ts';
import type { PeerPool } from '../wire/connect.ts';
import { answerEnvelope, type DecodedEnvelope } from '../wire/frame.ts';
import { AnswerHandler, type AnswerSink, type Outgoing, type Peer } from '../wire/peer.ts';
import { errorRecordType, positionType, type Envelope, type EnvelopeKind, type Position } from '../wire/schemas.ts';

const MAX_REDIRECTS = 3;

/** Error codes with which a host refuses a call without running it: safe to send elsewhere. */
const REFUSED_UNRUN = new Set(['LEASE_LOST', 'SHUTTING_DOWN']);

function refusedUnrun(answer: Envelope): boolean {
  try {
    return REFUSED_UNRUN.has(errorRecordType.fromBuffer(answer.payload).code);
  } catch {
    return false;
  }
}

/** An answer saying the position the call went to is stale: a redirect, or a refusal before running. */
function isStale(answer: Envelope): boolean {
  return answer.kind === 'REDIRECT' || (answer.kind === 'ERROR' && refusedUnrun(answer));
}

export interface RouterOptions {
  placement: Placement;
  pool: PeerPool;
  /** This process's host id and in-process handler: calls to local actors skip the network. */
  local?: {
    hostId: string;
    handle: (env: Envelope) => Promise<Envelope>;
    /** Stateless workers of interfaces this host serves run here, never elsewhere (as in Orleans). */
    statelessHere: (iface: string) => boolean;
  };
  /** How many actors' positions are kept at most (default MAX_CACHED_POSITIONS). */
  maxCachedPositions?: number;
}

/**
 * Positions a router keeps at most. An actor's position stays cached after it has gone idle (its
 * next call finds it stale and asks again), so without a bound a gateway that calls a new actor
 * per user would grow for ever. An entry with an 11-character key takes ~61 bytes (a million:
 * 61 MB). Beyond the bound the oldest hundredth goes at once (~8 ms for 10 000 entries here; their
 * next calls ask placement again): small pauses, rarely.
 */
export const MAX_CACHED_POSITIONS = 1_000_000;

/** What placement answered for an actor: the position as cached, and the epoch it granted. */
export interface Located {
  readonly position: Position;
  readonly epoch: number;
}

/** What a caller gives `call` besides the target, method and arguments. */
export type CallEnvelope = Omit<Outgoing, 'iface' | 'method' | 'payload' | 'epoch'>;

function outgoingOf(env: DecodedEnvelope, deadline: number): Outgoing {
  return { iface: env.iface, key: env.key, method: env.method, chain: env.chain, deadline, epoch: 0, headers: env.headers, payload: env.payload };
}

/**
 * The answer to a call the gateway forwarded on the fast path. The common answer goes straight to
 * the caller; a redirect or a refusal (the cached position was stale) sends the call down the
 * general path, which asks placement and retries.
 */
class Forwarded extends AnswerHandler {
  readonly #router: ActorRouter;
  readonly #env: DecodedEnvelope;
  readonly #deadline: number;
  readonly #position: Position;
  readonly #to: AnswerSink;

  constructor(router: ActorRouter, env: DecodedEnvelope, deadline: number, position: Position, to: AnswerSink) {
    super();
    this.#router = router;
    this.#env = env;
    this.#deadline = deadline;
    this.#position = position;
    this.#to = to;
  }

  answer(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void {
    // Only a non-RESPONSE needs looking into (an envelope is built for it alone).
    const answer = kind === 'RESPONSE' ? undefined : answerEnvelope(kind, id, frame.subarray(start, end));
    if (answer === undefined || !isStale(answer)) {
      this.#to.answer(kind, id, frame, start, end);
      return;
    }
    this.#router.stale(this.#env.iface, this.#env.key, this.#position, answer);
    this.#router.forward(outgoingOf(this.#env, this.#deadline)).then(
      (a) => this.#to.answer(a.kind, a.id, a.payload, 0, a.payload.length),
      (err: Error) => this.#to.fail(err),
    );
  }

  fail(err: Error): void {
    // Sent, and then the connection died: the call may have run, so it is not retried.
    this.#router.stale(this.#env.iface, this.#env.key, this.#position, undefined);
    this.#to.fail(err);
  }
}

export class ActorRouter implements StaleCallHandler {
  readonly #opts: RouterOptions;
  /** Cached positions (see ByInterface: no `iface/key` string per lookup). */
  readonly #positions = new ByInterface<Position>();
  #lastAddress = '';
  #lastPeer: Peer | undefined;
  #lastStatelessIface: string | undefined;
  #lastStateless = false;
  readonly #locating = new Map<string, Promise<Located>>();
  /** One Position object per host, shared by every cached actor it holds (see `#shared`). */
  readonly #byHost = new Map<string, Position>();

  readonly #maxPositions: number;

  constructor(opts: RouterOptions) {
    this.#opts = opts;
    this.#maxPositions = opts.maxCachedPositions ?? MAX_CACHED_POSITIONS;
  }

  /** How many actors' positions are cached now. */
  get cachedPositions(): number {
    return this.#positions.size;
  }

  /** Caches a position, keeping the cache within its bound (see MAX_CACHED_POSITIONS). */
  #cache(iface: string, key: string, position: Position): void {
    this.#positions.set(iface, key, position);
    if (this.#positions.size > this.#maxPositions) this.#positions.dropOldest(Math.ceil(this.#maxPositions / 100));
  }

  /**
   * A gateway's hot path: forwards a call decoded from a client connection by copying its bytes
   * to the owner's connection, when the position is cached and the connection open (steady state:
   * no Promise, no re-encoding). Anything else goes the general way of `forward`.
   */
  forwardDecoded(env: DecodedEnvelope, deadline: number, to: AnswerSink, located?: Located): void {
    // Just located: the position placement named (the cache holds it too; no second lookup).
    const position = this.#opts.local !== undefined ? undefined : located !== undefined ? located.position : this.#positions.get(env.iface, env.key);
    const peer = position === undefined ? undefined : this.#ready(position.address);
    if (peer !== undefined) {
      // A call placement has just placed carries the epoch it was granted, to the host it was
      // granted to (checked by name: another process may have taken a dead host's address). That
      // host may then activate the actor without claiming it (Host: the grant floor); any other
      // call carries 0.
      const grant = located !== undefined && peer.remote.node === position!.host ? located.epoch : 0;
      peer.forward(env, deadline, grant, new Forwarded(this, env, deadline, position!, to));
      return;
    }
    if (position === undefined && located === undefined && this.#opts.local === undefined) {
      // A first call to this actor (a new activation): once placement has named its host, the
      // call is forwarded by copying its bytes like any other (no re-encoding, no Promise per answer).
      this.#locate(`${env.iface}/${env.key}`, env.iface, env.key).then(
        (found) => this.forwardDecoded(env, deadline, to, found),
        (err: Error) => to.fail(err),
      );
      return;
    }
    this.forward(outgoingOf(env, deadline)).then(
      (a) => to.answer(a.kind, a.id, a.payload, 0, a.payload.length),
      (err: Error) => to.fail(err),
    );
  }

  /** A cached position proved stale: forget it, or (a redirect) replace it with the one the host named. */
  stale(iface: string, key: string, position: Position, answer: Envelope | undefined): void {
    if (answer?.kind === 'REDIRECT') this.#cache(iface, key, this.#shared(positionType.fromBuffer(answer.payload)));
    else this.#positions.deleteIf(iface, key, position);
  }

  /** Sends a request to the actor's owner; resolves with the RESPONSE or ERROR envelope. */
  async forward(env: Outgoing): Promise<Envelope> {
    const id = `${env.iface}/${env.key}`;
    const local = this.#opts.local;
    // In-process: the activation's own deadline sweep fails the call in time (no second timer here).
    if (local?.statelessHere(env.iface)) return local.handle({ ...env, id: 0, kind: 'REQUEST' });
    let position = this.#positions.get(env.iface, env.key) ?? (await this.#locate(id, env.iface, env.key)).position;
    for (let attempt = 0; ; attempt++) {
      let answer: Envelope;
      if (local !== undefined && position.host === local.hostId) {
        answer = await local.handle({ ...env, id: 0, kind: 'REQUEST' });
      } else {
        // An open connection is used at once, without waiting a turn for the pool's Promise: calls
        // to one actor then leave in the order they were made, whichever path each takes (a
        // session's open event goes this way, and must not be overtaken by the session's first
        // call, which `forwardDecoded` sends as soon as the actor is located).
        let peer = this.#ready(position.address);
        try {
          peer ??= await this.#opts.pool.get(position.address);
        } catch (err) {
          // Nothing was sent, so asking placement again and retrying is safe: the host may be gone
          // and its actors already free to activate elsewhere.
          this.#positions.deleteIf(env.iface, env.key, position);
          const fresh = attempt < MAX_REDIRECTS ? (await this.#locate(id, env.iface, env.key)).position : position;
          if (fresh.host === position.host) throw err;
          position = fresh;
          continue;
        }
        try {
          answer = await peer.request(env);
        } catch (err) {
          // Sent, and then the connection died: the call may have run, so it is not retried.
          this.#positions.deleteIf(env.iface, env.key, position);
          throw err;
        }
      }
      if (answer.kind === 'ERROR' && refusedUnrun(answer)) {
        // The host refused before running the call (it lost its lease, or is stopping): its cached
        // position is stale. If placement now names another host, the call goes there.
        this.#positions.deleteIf(env.iface, env.key, position);
        if (attempt >= MAX_REDIRECTS) return answer;
        const fresh = await this.#locate(id, env.iface, env.key).then((l) => l.position, () => position);
        if (fresh.host === position.host) return answer;
        position = fresh;
        continue;
      }
      if (answer.kind !== 'REDIRECT') return answer;
      if (attempt >= MAX_REDIRECTS) throw new KoalaError('NOT_OWNER', `${id} moved more than ${MAX_REDIRECTS} times during one call; try again`);
      position = this.#shared(positionType.fromBuffer(answer.payload));
      this.#cache(env.iface, env.key, position);
    }
  }

  /**
   * A typed call through the router: encodes the arguments, sends, decodes the answer (or throws
   * its typed error). One-way messages resolve at once; their failures go to `onOneWayError`.
   * Steady state (position cached, connection open) takes a short path: the arguments are encoded
   * straight into the frame and the answer decoded in its handler, with one Promise per call.
   */
  call(target: ActorInterface, message: AvroMessageTypes, args: readonly unknown[], env: CallEnvelope, onOneWayError?: (err: Error) => void, now?: number): Promise<unknown> {
    return this.callAs(target, message, args, env.key, env.chain, env.deadline, env.headers, onOneWayError, now);
  }

  /** `call` with the envelope's fields as arguments (a host's calls: no envelope object per call). */
  callAs(target: ActorInterface, message: AvroMessageTypes, args: readonly unknown[], key: string, chain: string, deadline: number, headers: Record<string, string>, onOneWayError?: (err: Error) => void, now?: number): Promise<unknown> {
    const position = message.oneWay ? undefined : this.#positions.get(target.name, key);
    const local = this.#opts.local;
    if (position !== undefined && (local === undefined || (position.host !== local.hostId && !this.#statelessHere(local, target.name)))) {
      const peer = this.#ready(position.address);
      if (peer !== undefined) {
        try {
          checkArgs(target, message, args);
        } catch (err) {
          return Promise.reject(err);
        }
        const call = new ValueAnswer(target, key, message, deadline, chain, headers, this, args, position);
        const result = call.promise();
        peer.requestArgs(call, call.codec, args, call, now);
        return result;
      }
    }
    return this.callSlow(target, message, args, { key, chain, deadline, headers }, onOneWayError);
  }

  /** A call sent on `call`'s short path whose cached position was stale: the general path asks placement (or follows the redirect) and retries. */
  takeBack(call: ValueAnswer, answer: Envelope): boolean {
    if (!isStale(answer)) return false;
    this.stale(call.iface, call.key, call.position!, answer);
    call.settleWith(this.callSlow(call.target, call.message, call.args!, { key: call.key, chain: call.chain, deadline: call.deadline, headers: call.headers }));
    return true;
  }

  /** A call sent on `call`'s short path whose connection died: the call may have run, so it is not retried. */
  lost(call: ValueAnswer): void {
    this.stale(call.iface, call.key, call.position!, undefined);
  }

  /** The open connection to `address`, if any; the last one is remembered (calls go to few hosts, many in a row). */
  #ready(address: string): Peer | undefined {
    const last = this.#lastPeer;
    if (last !== undefined && address === this.#lastAddress && !last.closed) return last;
    const peer = this.#opts.pool.ready(address);
    if (peer === undefined || peer.closed) return undefined;
    this.#lastAddress = address;
    this.#lastPeer = peer;
    return peer;
  }

  /** `local.statelessHere(iface)`, remembered for the last interface (it never changes). */
  #statelessHere(local: NonNullable<RouterOptions['local']>, iface: string): boolean {
    if (iface !== this.#lastStatelessIface) {
      this.#lastStatelessIface = iface;
      this.#lastStateless = local.statelessHere(iface);
    }
    return this.#lastStateless;
  }

  /** `call`'s general path: placement lookups, dialling, redirects, retries. */
  async callSlow(target: ActorInterface, message: AvroMessageTypes, args: readonly unknown[], env: CallEnvelope, onOneWayError?: (err: Error) => void): Promise<unknown> {
    const outgoing: Outgoing = { ...env, iface: target.name, method: message.name, epoch: 0, payload: encodeArgs(target, message, args) };
    if (message.oneWay) {
      void this.forward(outgoing).catch((err: Error) => onOneWayError?.(err));
      return undefined;
    }
    const result = readAnswer(await this.forward(outgoing), message);
    return result.kind === 'value' ? result.value : undefined;
  }

  /**
   * The cached form of a position: the host's one shared object. The cache keeps one entry per
   * actor (a gateway may know millions), and a caller never needs the epoch (see the top of this
   * file), so the entry need not be an object and two strings of its own.
   */
  #shared(position: Position): Position {
    const known = this.#byHost.get(position.host);
    if (known !== undefined && known.address === position.address) return known;
    const shared: Position = { host: position.host, address: position.address, epoch: 0 };
    this.#byHost.set(position.host, shared);
    return shared;
  }

  /**
   * Asks placement, once for any number of concurrent first calls to one actor: the position as
   * cached, and the epoch placement gave it (for a host to recognise its grant: `forwardDecoded`).
   */
  #locate(id: string, iface: string, key: string): Promise<Located> {
    let pending = this.#locating.get(id);
    if (pending === undefined) {
      pending = this.#opts.placement.locate(iface, key, this.#opts.local?.hostId).then(
        (found) => {
          this.#locating.delete(id);
          const position = this.#shared(found);
          this.#cache(iface, key, position);
          return { position, epoch: found.epoch };
        },
        (err: unknown) => {
          this.#locating.delete(id);
          throw err;
        },
      );
      this.#locating.set(id, pending);
    }
    return pending;
  }
}
