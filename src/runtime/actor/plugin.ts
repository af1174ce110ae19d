// A plugin module's default export: an interface and the class that implements it.
import type { ActorImplementation, ActorInterface } from '../interface/interface.ts';

const PLUGIN_BRAND = 'koala.plugin';

export interface ActorPlugin<I extends ActorInterface = ActorInterface> {
  readonly kind: typeof PLUGIN_BRAND;
  readonly interface: I;
  /** Checked against the interface by `definePlugin`; the runtime only needs to construct it. */
  readonly implementation: new () => object;
}

export interface PluginDefinition<I extends ActorInterface> {
  interface: I;
  implementation: new () => ActorImplementation<I>;
}

export function definePlugin<I extends ActorInterface>(def: PluginDefinition<I>): ActorPlugin<I> {
  const proto = def.implementation.prototype as Record<string, unknown>;
  const missing = def.interface.service.messages.map((m) => m.name).filter((name) => typeof proto[name] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`${def.implementation.name} does not implement ${def.interface.name}: missing ${missing.join(', ')}`);
  }
  return Object.freeze({ kind: PLUGIN_BRAND, interface: def.interface, implementation: def.implementation });
}

export function isActorPlugin(value: unknown): value is ActorPlugin {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === PLUGIN_BRAND;
}
