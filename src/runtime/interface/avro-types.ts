// Type-level mapping from Avro schemas (written as `as const` literals) to TypeScript types.
// This is what lets an actor interface be one Avro protocol with no code-generation step:
// proxies and implementations get their parameter and result types from the same literal
// that the wire uses to encode them.

/** An Avro schema as JSON: a type name, a complex type object, or a union array. */
export type AvroSchema =
  | string
  | { readonly type: string; readonly [key: string]: unknown }
  | readonly AvroSchema[];

export interface AvroField {
  readonly name: string;
  readonly type: AvroSchema;
  readonly default?: unknown;
  readonly doc?: string;
}

export interface AvroNamedType {
  readonly type: 'record' | 'error' | 'enum' | 'fixed';
  readonly name: string;
  readonly namespace?: string;
  readonly [key: string]: unknown;
}

export interface AvroMessage {
  readonly request: readonly AvroField[];
  readonly response: AvroSchema;
  readonly errors?: readonly AvroSchema[];
  readonly 'one-way'?: boolean;
  readonly doc?: string;
}

export interface AvroProtocol {
  readonly protocol: string;
  readonly namespace?: string;
  readonly doc?: string;
  readonly types?: readonly AvroNamedType[];
  readonly messages: { readonly [name: string]: AvroMessage };
}

/** A named type's full name: its own namespace, else the protocol's (Avro lets schemas use either name). */
type FullName<T extends AvroNamedType, NS> = T['namespace'] extends string
  ? `${T['namespace']}.${T['name']}`
  : NS extends string
    ? `${NS}.${T['name']}`
    : never;

/** Named types of a protocol, indexed by their short and their full name. */
export type NamedTypes<P extends AvroProtocol> = P['types'] extends readonly AvroNamedType[]
  ? { [T in P['types'][number] as T['name'] | FullName<T, P['namespace']>]: T }
  : {};

type Primitive<S extends string> = S extends 'null'
  ? null
  : S extends 'boolean'
    ? boolean
    : S extends 'int' | 'long' | 'float' | 'double'
      ? number
      : S extends 'bytes'
        ? Buffer
        : S extends 'string'
          ? string
          : never;

type Fields<F, N> = F extends readonly AvroField[]
  ? { -readonly [K in F[number] as K['name']]: Infer<K['type'], N> }
  : never;

/** The TypeScript type of values of schema `S`, given the protocol's named types `N`. */
export type Infer<S, N = {}> = S extends 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string'
  ? Primitive<S>
  : S extends string
    ? S extends keyof N
      ? Infer<N[S], N>
      : unknown
    : S extends readonly unknown[]
      ? Infer<S[number], N>
      : S extends { readonly type: 'array'; readonly items: infer I }
        ? Infer<I, N>[]
        : S extends { readonly type: 'map'; readonly values: infer V }
          ? Record<string, Infer<V, N>>
          : S extends { readonly type: 'record' | 'error'; readonly fields: infer F }
            ? Fields<F, N>
            : S extends { readonly type: 'enum'; readonly symbols: readonly (infer E)[] }
              ? E
              : S extends { readonly type: 'fixed' }
                ? Buffer
                : S extends { readonly type: infer T }
                  ? Infer<T, N>
                  : unknown;

type ArgsOf<R extends readonly AvroField[], N> = {
  -readonly [K in keyof R]: R[K] extends { readonly type: infer T } ? Infer<T, N> : never;
};

/** Method parameters as a tuple, in declaration order. */
export type MethodArgs<P extends AvroProtocol, M extends keyof P['messages']> = ArgsOf<P['messages'][M]['request'], NamedTypes<P>>;

export type MethodResult<P extends AvroProtocol, M extends keyof P['messages']> = P['messages'][M] extends {
  readonly 'one-way': true;
}
  ? void
  : Infer<P['messages'][M]['response'], NamedTypes<P>>;

export type MethodName<P extends AvroProtocol> = keyof P['messages'] & string;
