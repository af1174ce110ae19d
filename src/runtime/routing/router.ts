// Routes calls to the host that owns the target actor. Positions are cached, so steady-state
// calls never touch placement; a REDIRECT from a host corrects the cache and the call is retried.
import { KoalaError } from '../errors/errors.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorInterface } from '../interface/interface.ts';
import { encodeArgs, readAnswer } from '../wire/rpc.ts';
import type { Placement } from '../placement/protocol.ts';
import type { PeerPool } from '../wire/connect.ts';
import type { Outgoing } from '../wire/peer.ts';
import { errorRecordType, positionType, type Envelope, type Position } from '../wire/schemas.ts';

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
}

export class ActorRouter {
  readonly #opts: RouterOptions;
  readonly #positions = new Map<string, Position>();
  readonly #locating = new Map<string, Promise<Position>>();

  constructor(opts: RouterOptions) {
    this.#opts = opts;
  }

  /** Sends a request to the actor's owner; resolves with the RESPONSE or ERROR envelope. */
  async forward(env: Outgoing): Promise<Envelope> {
    const id = `${env.iface}/${env.key}`;
    const local = this.#opts.local;
    // In-process: the activation's own deadline sweep fails the call in time (no second timer here).
    if (local?.statelessHere(env.iface)) return local.handle({ ...env, id: 0, kind: 'REQUEST' });
    let position = this.#positions.get(id) ?? (await this.#locate(id, env.iface, env.key));
    for (let attempt = 0; ; attempt++) {
      const request = { ...env, epoch: position.epoch };
      let answer: Envelope;
      if (local !== undefined && position.host === local.hostId) {
        answer = await local.handle({ ...request, id: 0, kind: 'REQUEST' });
      } else {
        let peer;
        try {
          peer = await this.#opts.pool.get(position.address);
        } catch (err) {
          // Nothing was sent, so asking placement again and retrying is safe: the host may be gone
          // and its actors already free to activate elsewhere.
          if (this.#positions.get(id) === position) this.#positions.delete(id);
          const fresh = attempt < MAX_REDIRECTS ? await this.#locate(id, env.iface, env.key) : position;
          if (fresh.host === position.host) throw err;
          position = fresh;
          continue;
        }
        try {
          answer = await peer.request(request);
        } catch (err) {
          // Sent, and then the connection died: the call may have run, so it is not retried.
          if (this.#positions.get(id) === position) this.#positions.delete(id);
          throw err;
        }
      }
      if (answer.kind === 'ERROR' && refusedUnrun(answer)) {
        // The host refused before running the call (it lost its lease, or is stopping): its cached
        // position is stale. If placement now names another host, the call goes there.
        if (this.#positions.get(id) === position) this.#positions.delete(id);
        if (attempt >= MAX_REDIRECTS) return answer;
        const fresh = await this.#locate(id, env.iface, env.key).catch(() => position);
        if (fresh.host === position.host) return answer;
        position = fresh;
        continue;
      }
      if (answer.kind !== 'REDIRECT') return answer;
      if (attempt >= MAX_REDIRECTS) throw new KoalaError('NOT_OWNER', `${id} moved more than ${MAX_REDIRECTS} times during one call; try again`);
      position = positionType.fromBuffer(answer.payload);
      this.#positions.set(id, position);
    }
  }

  /**
   * A typed call through the router: encodes the arguments, sends, decodes the answer (or throws
   * its typed error). One-way messages resolve at once; their failures go to `onOneWayError`.
   */
  async call(target: ActorInterface, message: AvroMessageTypes, args: readonly unknown[], env: Omit<Outgoing, 'iface' | 'method' | 'payload' | 'epoch'>, onOneWayError?: (err: Error) => void): Promise<unknown> {
    const outgoing: Outgoing = { ...env, iface: target.name, method: message.name, epoch: 0, payload: encodeArgs(target, message, args) };
    if (message.oneWay) {
      void this.forward(outgoing).catch((err: Error) => onOneWayError?.(err));
      return undefined;
    }
    const result = readAnswer(await this.forward(outgoing), message);
    return result.kind === 'value' ? result.value : undefined;
  }

  /** Asks placement, once for any number of concurrent first calls to one actor. */
  #locate(id: string, iface: string, key: string): Promise<Position> {
    let pending = this.#locating.get(id);
    if (pending === undefined) {
      pending = this.#opts.placement.locate(iface, key).then(
        (position) => {
          this.#locating.delete(id);
          this.#positions.set(id, position);
          return position;
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
