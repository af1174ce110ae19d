// The HTTP bridge: `POST /v1/actors/{interface}/{id}/{method}` with the arguments as a JSON object
// by name, answered with the result as JSON — both in Avro's JSON mapping of the method's types.
// Errors are an HTTP status and a problem body (RFC 9457) carrying Koala's error code. With a
// token (`gateway.bridge.token`), a request must bear it; it is refused before its body is read.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { newChainId } from '../actor/call-context.ts';
import { KoalaError, toErrorRecord } from '../errors/errors.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorRouter } from '../routing/router.ts';
import { methodOf } from '../wire/rpc.ts';
import type { InterfaceCatalog } from './interfaces.ts';

const STATUS: Record<string, number> = {
  UNKNOWN_INTERFACE: 404,
  UNKNOWN_METHOD: 404,
  BAD_ARGUMENTS: 400,
  ACTOR_ERROR: 500,
  ACTIVATION_FAILED: 500,
  DEADLOCK: 409,
  TIMEOUT: 504,
  RATE_LIMITED: 429,
  TOO_BUSY: 429,
  UNREACHABLE: 503,
  CONNECTION_LOST: 503,
  NO_HOST: 503,
  NOT_OWNER: 503,
  LEASE_LOST: 503,
  SHUTTING_DOWN: 503,
};

/** Sends a typed error as a problem document, with the status of its code unless `status` is given. */
export function sendProblem(reply: FastifyReply, err: unknown, status?: number): FastifyReply {
  const rec = toErrorRecord(err);
  status ??= STATUS[rec.code] ?? 500;
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `https://koala.invalid/errors/${rec.code}`, title: rec.name, status, detail: rec.message, code: rec.code, ...(rec.actor ? { actor: rec.actor } : {}) });
}

/** Arguments by name, in Avro's JSON mapping; bare union values are accepted too. */
function decodeBody(message: AvroMessageTypes, body: unknown): unknown[] {
  const json = body === undefined || body === null || body === '' ? {} : body;
  if (typeof json !== 'object' || Array.isArray(json)) throw new KoalaError('BAD_ARGUMENTS', `the body must be a JSON object of arguments by name (${message.requestType.fields.map((f) => f.name).join(', ') || 'none'})`);
  const given = json as Record<string, unknown>;
  const names = message.requestType.fields.map((f) => f.name);
  const unknown = Object.keys(given).filter((k) => !names.includes(k));
  if (unknown.length) throw new KoalaError('BAD_ARGUMENTS', `${message.name} has no parameter ${unknown.map((k) => `"${k}"`).join(', ')} (parameters: ${names.join(', ') || 'none'})`);
  let record: Record<string, unknown>;
  try {
    record = message.requestType.fromString(JSON.stringify(given)) as Record<string, unknown>;
  } catch {
    try {
      record = message.requestType.clone(given, { wrapUnions: false, coerceBuffers: true });
    } catch (err) {
      throw new KoalaError('BAD_ARGUMENTS', `arguments of ${message.name} do not match its parameters (${(err as Error).message})`);
    }
  }
  return names.map((n) => record[n]);
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Refuses (401) a request that does not bear `token`. The digests have equal lengths, so the
 * comparison takes the same time whatever the request sent.
 */
function requireBearer(token: string): (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const expected = digest(token);
  return async (req, reply) => {
    const bearer = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && timingSafeEqual(digest(bearer), expected)) return undefined;
    const why =
      bearer === undefined
        ? 'the HTTP bridge takes only requests with the header `Authorization: Bearer <token>` (the gateway’s gateway.bridge.token / KOALA_BRIDGE_TOKEN)'
        : 'the bearer token does not match the gateway’s gateway.bridge.token / KOALA_BRIDGE_TOKEN';
    return sendProblem(reply.header('www-authenticate', 'Bearer realm="koala"'), new KoalaError('AUTH_FAILED', why), 401);
  };
}

export interface HttpBridgeOptions {
  catalog: InterfaceCatalog;
  router: ActorRouter;
  requestTimeoutMs: number;
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
}

export function registerHttpBridge(app: FastifyInstance, deps: HttpBridgeOptions): void {
  const onRequest = deps.token === undefined ? [] : [requireBearer(deps.token)];
  app.post<{ Params: { iface: string; id: string; method: string } }>('/v1/actors/:iface/:id/:method', { onRequest }, async (req, reply) => {
    try {
      const iface = await deps.catalog.get(req.params.iface);
      const message = methodOf(iface, req.params.method);
      const args = decodeBody(message, req.body);
      const value = await deps.router.call(iface, message, args, { key: req.params.id, chain: newChainId(), deadline: Date.now() + deps.requestTimeoutMs, headers: {} });
      if (message.oneWay) return reply.code(202).send();
      return reply.type('application/json').send(message.responseType.toString(value === undefined ? null : value));
    } catch (err) {
      return sendProblem(reply, err);
    }
  });
}
