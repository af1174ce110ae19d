// Typed errors that cross process boundaries. Every error a caller sees has a stable `code`
// (documented in docs/errors.md), a `name`, a message and, when it came from an actor, the
// actor's identity and the remote stack.

export const ERROR_CODES = [
  'UNKNOWN_INTERFACE',
  'UNKNOWN_METHOD',
  'BAD_ARGUMENTS',
  'ACTOR_ERROR',
  'ACTIVATION_FAILED',
  'TIMEOUT',
  'UNREACHABLE',
  'CONNECTION_LOST',
  'NO_HOST',
  'NOT_OWNER',
  'AUTH_FAILED',
  'BAD_FRAME',
  'SHUTTING_DOWN',
  'LEASE_LOST',
  'DEADLOCK',
  'RATE_LIMITED',
  'TOO_BUSY',
  'SESSION_LIMIT',
  'FRAME_TOO_LARGE',
  'IDLE_TIMEOUT',
  'BAD_FIRST_PACKET',
  'STALE_STATE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorRecord {
  name: string;
  code: string;
  message: string;
  actor: string;
  stack: string;
}

export class KoalaError extends Error {
  readonly code: ErrorCode;
  /** `Interface/id` of the actor that raised it, when an actor did. */
  readonly actor: string | undefined;
  /** The stack as it was on the remote side. */
  readonly remoteStack: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { name?: string; actor?: string; remoteStack?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = opts.name ?? 'KoalaError';
    this.code = code;
    this.actor = opts.actor;
    this.remoteStack = opts.remoteStack;
  }
}

export class TimeoutError extends KoalaError {
  constructor(message: string, actor?: string) {
    super('TIMEOUT', message, { name: 'TimeoutError', ...(actor ? { actor } : {}) });
  }
}

export function isErrorCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code);
}

/** Turns anything thrown into the record that travels on the wire. */
export function toErrorRecord(err: unknown, actor = ''): ErrorRecord {
  if (err instanceof KoalaError) {
    return { name: err.name, code: err.code, message: err.message, actor: err.actor ?? actor, stack: err.remoteStack ?? err.stack ?? '' };
  }
  if (err instanceof Error) {
    return { name: err.name, code: 'ACTOR_ERROR', message: err.message, actor, stack: err.stack ?? '' };
  }
  return { name: 'Error', code: 'ACTOR_ERROR', message: String(err), actor, stack: '' };
}

/** Rebuilds a typed error from a wire record; the local stack is kept, the remote one attached. */
export function fromErrorRecord(rec: ErrorRecord): KoalaError {
  const code: ErrorCode = isErrorCode(rec.code) ? rec.code : 'INTERNAL';
  if (code === 'TIMEOUT') return new TimeoutError(rec.message, rec.actor || undefined);
  return new KoalaError(code, rec.message, {
    name: rec.name,
    ...(rec.actor ? { actor: rec.actor } : {}),
    ...(rec.stack ? { remoteStack: rec.stack } : {}),
  });
}
