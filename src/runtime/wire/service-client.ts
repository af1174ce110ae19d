// Calls to `koala.*` services of another process, through the same typed proxies as actors.
// Placement is asked twice per new activation (the gateway's `locate`, the host's `claim`), so a
// call takes the actors' short path: arguments encoded into the frame, the answer decoded in its
// handler, one Promise per call, and no wait for the connection when it is open already.
import { KoalaError } from '../errors/errors.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorInterface, ActorProxy } from '../interface/interface.ts';
import { createProxy } from '../interface/proxy.ts';
import { answerEnvelope, NO_HEADERS } from './frame.ts';
import { AnswerHandler, type Peer } from './peer.ts';
import { checkArgs, readAnswer } from './rpc.ts';
import type { EnvelopeKind } from './schemas.ts';
import { decodeValueAt } from './value-codec.ts';

/** Resolves with a service call's decoded result, or rejects with its typed error. */
class ServiceAnswer extends AnswerHandler {
  readonly #message: AvroMessageTypes;
  readonly #resolve: (value: unknown) => void;
  readonly #reject: (err: Error) => void;

  constructor(message: AvroMessageTypes, resolve: (value: unknown) => void, reject: (err: Error) => void) {
    super();
    this.#message = message;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  answer(kind: EnvelopeKind, id: number, frame: Buffer, start: number, end: number): void {
    try {
      if (kind === 'RESPONSE') {
        this.#resolve(decodeValueAt(this.#message.responseType, frame, start, end));
        return;
      }
      const answer = readAnswer(answerEnvelope(kind, id, frame.subarray(start, end)), this.#message); // throws the typed error
      if (answer.kind === 'redirect') throw new KoalaError('INTERNAL', `${this.iface} answered with a redirect`);
      this.#resolve(answer.value);
    } catch (err) {
      this.#reject(err as Error);
    }
  }

  fail(err: Error): void {
    this.#reject(err);
  }
}

/**
 * A proxy for the service `iface` of the process `peer()` connects to. `open()`, if given, returns
 * that connection when it is open now, so that a call need not wait for `peer()`'s Promise.
 */
export function serviceProxy<I extends ActorInterface>(iface: I, peer: () => Promise<Peer>, timeoutMs: number, open?: () => Peer | undefined): ActorProxy<I> {
  const send = (to: Peer, key: string, message: AvroMessageTypes, args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const env = { iface: iface.name, key, method: message.name, chain: '', deadline: Date.now() + timeoutMs, epoch: 0, headers: NO_HEADERS };
      to.requestArgs(env, message.requestType.fields, args, new ServiceAnswer(message, resolve, reject));
    });
  return createProxy(iface, '', (_iface, key, message, args) => {
    try {
      checkArgs(iface, message, args);
    } catch (err) {
      return Promise.reject(err);
    }
    const now = open?.();
    if (now !== undefined && !now.closed) return send(now, key, message, args);
    return peer().then((p) => send(p, key, message, args));
  });
}
