// The wire schemas as plain JSON, with no imports: shared by the Node runtime (which parses them
// with avsc) and by the browser client (which has its own small Avro codec).

export const ENVELOPE_KINDS = ['REQUEST', 'ONEWAY', 'RESPONSE', 'ERROR', 'REDIRECT', 'CANCEL', 'MESSAGE', 'PUSH'] as const;

export const ENVELOPE_SCHEMA = {
  type: 'record',
  name: 'Envelope',
  namespace: 'koala.wire',
  fields: [
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: [...ENVELOPE_KINDS] } },
    { name: 'id', type: 'long' },
    { name: 'iface', type: 'string' },
    { name: 'key', type: 'string' },
    { name: 'method', type: 'string' },
    { name: 'chain', type: 'string' },
    { name: 'deadline', type: 'long' },
    { name: 'epoch', type: 'long' },
    { name: 'headers', type: { type: 'map', values: 'string' } },
    { name: 'payload', type: 'bytes' },
  ],
};

export const ERROR_SCHEMA = {
  type: 'record',
  name: 'Error',
  namespace: 'koala.wire',
  fields: [
    { name: 'name', type: 'string' },
    { name: 'code', type: 'string' },
    { name: 'message', type: 'string' },
    { name: 'actor', type: 'string' },
    { name: 'stack', type: 'string' },
  ],
};

export const SESSION_REPLY_SCHEMA = {
  type: 'record',
  name: 'SessionReply',
  namespace: 'koala',
  fields: [
    { name: 'ok', type: 'boolean' },
    { name: 'session', type: 'string' },
    { name: 'iface', type: 'string' },
    { name: 'key', type: 'string' },
    { name: 'resume', type: 'string' },
    { name: 'code', type: 'string' },
    { name: 'message', type: 'string' },
  ],
};
