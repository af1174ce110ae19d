// A plugin module's default export: an interface and the class that implements it.
import { typeForSchema, type AvroType } from '../interface/avro.ts';
import type { AvroSchema } from '../interface/avro-types.ts';
import type { ActorImplementation, ActorInterface } from '../interface/interface.ts';

const PLUGIN_BRAND = 'koala.plugin';

export interface ActorPlugin<I extends ActorInterface = ActorInterface> {
  readonly kind: typeof PLUGIN_BRAND;
  readonly interface: I;
  /** Persistent state: its Avro type and the value a new actor starts with. */
  readonly state?: { readonly type: AvroType; readonly initial: unknown; readonly rows?: AvroType };
  /** Checked against the interface by `definePlugin`; the runtime only needs to construct it. */
  readonly implementation: new () => object;
}

export interface PluginDefinition<I extends ActorInterface> {
  interface: I;
  implementation: new () => ActorImplementation<I>;
  /**
   * Persistent state (`this.state`, `this.writeState()`): its Avro schema and the value of an actor
   * that has none stored yet.
   */
  state?: { schema: AvroSchema; initial: unknown; /** The schema of sub-keyed rows (`this.writeStateRow`). */ rows?: AvroSchema };
}

export function definePlugin<I extends ActorInterface>(def: PluginDefinition<I>): ActorPlugin<I> {
  const proto = def.implementation.prototype as Record<string, unknown>;
  const missing = def.interface.service.messages.map((m) => m.name).filter((name) => typeof proto[name] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`${def.implementation.name} does not implement ${def.interface.name}: missing ${missing.join(', ')}`);
  }
  let state: ActorPlugin['state'];
  if (def.state) {
    const type = typeForSchema(def.state.schema);
    if (!type.isValid(def.state.initial)) throw new TypeError(`${def.interface.name}: the initial state does not match the state schema`);
    state = { type, initial: def.state.initial, ...(def.state.rows === undefined ? {} : { rows: typeForSchema(def.state.rows) }) };
  }
  return Object.freeze({ kind: PLUGIN_BRAND, interface: def.interface, implementation: def.implementation, ...(state ? { state } : {}) });
}

export function isActorPlugin(value: unknown): value is ActorPlugin {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === PLUGIN_BRAND;
}
