// Calls to `koala.*` services of another process, through the same typed proxies as actors.
import { KoalaError } from '../errors/errors.ts';
import type { ActorInterface, ActorProxy } from '../interface/interface.ts';
import { createProxy } from '../interface/proxy.ts';
import type { Peer } from './peer.ts';
import { encodeArgs, readAnswer } from './rpc.ts';

export function serviceProxy<I extends ActorInterface>(iface: I, peer: () => Promise<Peer>, timeoutMs: number): ActorProxy<I> {
  return createProxy(iface, '', async (_iface, key, message, args) => {
    const payload = encodeArgs(iface, message, args);
    const answer = readAnswer(
      await (await peer()).request({ iface: iface.name, key, method: message.name, chain: '', deadline: Date.now() + timeoutMs, epoch: 0, headers: {}, payload }),
      message,
    );
    if (answer.kind === 'redirect') throw new KoalaError('INTERNAL', `${iface.name} answered with a redirect`);
    return answer.value;
  });
}
