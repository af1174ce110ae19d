// Gateway plugins: modules that add HTTP routes to the gateway and answer them by calling actors.
import type { FastifyInstance } from 'fastify';
import type { ActorInterface, ActorProxy } from '../interface/interface.ts';

export interface GatewayCluster {
  /** A typed proxy; its calls go through the gateway's router like any client's. */
  getProxy<I extends ActorInterface>(iface: I, id: string | number, opts?: { timeoutMs?: number }): ActorProxy<I>;
  /**
   * A first packet signed with the gateway's client secret, for a route that has authenticated a
   * user itself and hands the browser its session ticket. Throws if no client secret is set.
   */
  signFirstPacket(fields: { claims?: Record<string, string>; iface?: string; key?: string | number }): Buffer;
}

const BRAND = 'koala.gateway-plugin';

export interface GatewayPlugin {
  readonly kind: typeof BRAND;
  readonly register: (app: FastifyInstance, cluster: GatewayCluster) => void | Promise<void>;
}

/** `export default defineGatewayPlugin((app, cluster) => { app.get('/echo/:msg', …) })` */
export function defineGatewayPlugin(register: GatewayPlugin['register']): GatewayPlugin {
  return Object.freeze({ kind: BRAND, register });
}

export function isGatewayPlugin(value: unknown): value is GatewayPlugin {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === BRAND;
}
