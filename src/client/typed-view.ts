// A client session's messages and pushes as typed values (`typed()` of the Node and of the browser
// client). Served to browsers with the browser client, so it uses no Node API.

/** A session's messages and pushes as typed values. */
export interface TypedSession<In, Out> {
  /** A message to the bound actor, encoded with its interface's `session.inbound` type. */
  send(value: In): void;
  /** Pushes from the bound actor, decoded with its `session.outbound` type. Returns an unsubscribe function. */
  onPush(listener: (value: Out) => void): () => void;
}

/** The bytes side of a session, as both clients have it. */
export interface ByteSession {
  send(data: Uint8Array): void;
  onPush(listener: (data: Uint8Array) => void): () => void;
}

/**
 * `session`'s messages encoded with `encode` and its pushes decoded with `decode` (bytes as they
 * are where one is missing). A push that does not decode goes to `fail`, not to the listener.
 */
export function typedView(session: ByteSession, encode: ((value: unknown) => Uint8Array) | undefined, decode: ((data: Uint8Array) => unknown) | undefined, fail: (err: Error) => void): TypedSession<unknown, unknown> {
  return {
    send: (value) => session.send(encode ? encode(value) : (value as Uint8Array)),
    onPush: (listener) =>
      session.onPush((data) => {
        let value: unknown;
        try {
          value = decode ? decode(data) : data;
        } catch (err) {
          fail(err as Error);
          return;
        }
        listener(value);
      }),
  };
}
