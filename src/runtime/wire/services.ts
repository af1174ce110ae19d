// Process-level services (placement, gateway info, host admin) answer `koala.*` interfaces with
// the same envelopes and Avro encoding as actors, minus activation and mailboxes.
import { KoalaError } from '../errors/errors.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorImplementation, ActorInterface } from '../interface/interface.ts';
import type { Peer } from './peer.ts';
import { decodeArgs, methodOf, replyError, replyResult } from './rpc.ts';
import type { Envelope } from './schemas.ts';
import { isThenable } from '../util/thenable.ts';

type AnyMethod = (...args: unknown[]) => unknown;

export class ServiceTable {
  readonly #services = new Map<string, { iface: ActorInterface; impl: Record<string, AnyMethod> }>();

  add<I extends ActorInterface>(iface: I, impl: ActorImplementation<I>): this {
    this.#services.set(iface.name, { iface, impl: impl as unknown as Record<string, AnyMethod> });
    return this;
  }

  has(ifaceName: string): boolean {
    return this.#services.has(ifaceName);
  }

  /** Runs the call and answers it; resolves once answered. */
  dispatch(env: Envelope, peer: Peer): Promise<void> {
    // Services answer quickly and cannot be interrupted: a CANCEL has nothing to stop (and must not run the method).
    if (env.kind === 'CANCEL') return Promise.resolve();
    const service = this.#services.get(env.iface);
    if (service === undefined) {
      replyError(peer, env, new KoalaError('UNKNOWN_INTERFACE', `this process does not serve ${env.iface}`));
      return Promise.resolve();
    }
    let message: AvroMessageTypes;
    let result: unknown;
    try {
      message = methodOf(service.iface, env.method);
      result = service.impl[env.method]!.apply(service.impl, decodeArgs(message, env.payload));
    } catch (err) {
      replyError(peer, env, err);
      return Promise.resolve();
    }
    // Most services answer synchronously (placement's `locate` and `claim`): answered at once,
    // the result encoded straight into the answer frame.
    if (!isThenable(result)) {
      replyResult(peer, env, service.iface, message, result);
      return Promise.resolve();
    }
    return Promise.resolve(result).then(
      (value) => replyResult(peer, env, service.iface, message, value),
      (err: unknown) => replyError(peer, env, err),
    );
  }
}
