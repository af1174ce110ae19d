// Calls to `koala.*` services of another process, through the same typed proxies as actors.
// Placement is asked twice per new activation (the gateway's `locate`, the host's `claim`), so a
// call takes the actors' short path: arguments encoded into the frame, the answer decoded in its
// handler, one Promise per call, and no wait for the connection when it is open already.
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorInterface, ActorProxy } from '../interface/interface.ts';
import { createProxy } from '../interface/proxy.ts';
import { NO_HEADERS } from './frame.ts';
import type { Peer } from './peer.ts';
import { checkArgs, ValueAnswer } from './rpc.ts';

/**
 * A proxy for the service `iface` of the process `peer()` connects to. `open()`, if given, returns
 * that connection when it is open now, so that a call need not wait for `peer()`'s Promise.
 */
export function serviceProxy<I extends ActorInterface>(iface: I, peer: () => Promise<Peer>, timeoutMs: number, open?: () => Peer | undefined): ActorProxy<I> {
  const send = (to: Peer, key: string, message: AvroMessageTypes, args: unknown[]): Promise<unknown> => {
    const call = new ValueAnswer(iface, key, message, Date.now() + timeoutMs, '', NO_HEADERS);
    const result = call.promise();
    to.requestArgs(call, call.codec, args, call);
    return result;
  };
  return createProxy(iface, '', (_iface, key, message, args) => {
    try {
      checkArgs(iface, message, args);
    } catch (err) {
      return Promise.reject(err);
    }
    const ready = open?.();
    if (ready !== undefined && !ready.closed) return send(ready, key, message, args);
    return peer().then((p) => send(p, key, message, args));
  });
}
