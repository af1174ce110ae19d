// What the gateway itself answers (as `koala.Gateway`), besides forwarding actor calls.
import { defineInterface } from '../interface/interface.ts';
import { actorPlacementSchema, hostInfoSchema, interfaceInfoSchema } from '../placement/protocol.ts';

export const GatewayInterface = defineInterface({
  protocol: 'Gateway',
  namespace: 'koala',
  types: [interfaceInfoSchema, hostInfoSchema, actorPlacementSchema],
  messages: {
    /** The Avro protocol (JSON) of an interface, so clients can encode calls without its plugin. */
    describe: { request: [{ name: 'iface', type: 'string' }], response: 'string' },
    /** Live hosts and what they serve. */
    members: { request: [], response: { type: 'array', items: 'HostInfo' } },
    /** Live actor positions, of one interface or ('') of all. */
    actors: { request: [{ name: 'iface', type: 'string' }], response: { type: 'array', items: 'ActorPlacement' } },
    /** From hosts: an actor's message to client sessions held by this gateway. */
    push: { request: [{ name: 'sessions', type: { type: 'array', items: 'string' } }, { name: 'data', type: 'bytes' }], response: 'null', 'one-way': true },
  },
});
