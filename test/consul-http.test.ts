// The HTTP client under ConsulApi, against a local node:http server standing in for an agent:
// response framing (Content-Length, chunked, split anywhere), the connection limit, kept-alive
// connections, and failures as ConnectionErrors.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { AgentHttp, ConnectionError } from '../src/runtime/placement/consul/agent-http.ts';
import { ConsulApi } from '../src/runtime/placement/consul/consul-api.ts';
import { ResponseReader, ResponseParseError } from '../src/runtime/placement/consul/http-response.ts';

/** Feeds `raw` to a reader in pieces of `size` bytes; the response, once, at the last piece. */
function readInPieces(raw: string, size: number) {
  const bytes = Buffer.from(raw);
  const reader = new ResponseReader();
  let res;
  for (let i = 0; i < bytes.length; i += size) {
    if (res !== undefined) throw new Error('a response before the last piece');
    res = reader.feed(bytes.subarray(i, i + size));
  }
  return res;
}

test('a response is read whole however its bytes are split', (t) => {
  const body = '[{"Key":"koala/x","Value":"w6Q="}]';
  const fixed = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 42\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const chunked = `HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n[{"a"\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\n\r\n`;
  for (const size of [1, 2, 3, 7, 1000]) {
    t.deepEqual(readInPieces(fixed, size), { status: 200, index: '42', close: false, body }, `Content-Length, pieces of ${size}`);
    t.deepEqual(readInPieces(chunked, size), { status: 409, index: undefined, close: true, body: `[{"a"${body.slice(5)}` }, `chunked, pieces of ${size}`);
  }
  t.deepEqual(readInPieces('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 5), { status: 200, index: undefined, close: false, body: '' });
});

test('what is not an HTTP response from an agent is an error', (t) => {
  t.throws(() => new ResponseReader().feed(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), { instanceOf: ResponseParseError });
  t.throws(() => new ResponseReader().feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc')), { instanceOf: ResponseParseError });
  t.throws(() => new ResponseReader().feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\nabc')), { instanceOf: ResponseParseError });
});

async function server(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const s = createServer(handler);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return { server: s, port: (s.address() as AddressInfo).port };
}

test('at most maxSockets connections, kept alive and reused; method, path, body and token arrive', async (t) => {
  let open = 0;
  let peak = 0;
  let connections = 0;
  const seen: string[] = [];
  const { server: s, port } = await server(t, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers['x-consul-token']} ${body}`);
      // Answers out of order, some chunked (no Content-Length), some large.
      setTimeout(() => {
        if (req.url === '/big') res.end('x'.repeat(300_000));
        else res.end(JSON.stringify({ url: req.url, body }));
      }, Math.random() * 5);
    });
  });
  s.on('connection', (socket) => {
    connections++;
    peak = Math.max(peak, ++open);
    socket.on('close', () => open--);
  });
  const http = new AgentHttp({ host: '127.0.0.1', port, token: 'secret-token', maxSockets: 4 });
  t.teardown(() => http.close());
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => http.request('PUT', `/v1/kv/k${i}`, { body: `v${i}é` })));
  answers.forEach((res, i) => t.deepEqual(JSON.parse(res.body), { url: `/v1/kv/k${i}`, body: `v${i}é` }));
  t.is((await http.request('GET', '/big')).body.length, 300_000);
  t.true(peak <= 4, `${peak} connections at once`);
  t.is(connections, 4, 'connections are reused');
  t.true(seen.includes('PUT /v1/kv/k7 secret-token v7é'));
});

test('a refused connection, a timeout and an abort are ConnectionErrors; the pool recovers', async (t) => {
  const refused = new AgentHttp({ host: '127.0.0.1', port: 1, maxSockets: 2 });
  const errors = await Promise.all(Array.from({ length: 5 }, () => refused.request('GET', '/v1/status/leader').catch((e: unknown) => e)));
  for (const err of errors) t.like(err, { code: 'ECONNREFUSED' });
  t.true(errors.every((e) => e instanceof ConnectionError));

  const { port } = await server(t, (req, res) => {
    if (req.url === '/hang') return; // never answers
    res.end('"ok"');
  });
  const http = new AgentHttp({ host: '127.0.0.1', port, maxSockets: 1 });
  t.teardown(() => http.close());
  await t.throwsAsync(http.request('GET', '/hang', { timeoutMs: 100 }), { instanceOf: ConnectionError, message: /no answer within 100 ms/ });
  const abort = new AbortController();
  const aborted = http.request('GET', '/hang', { signal: abort.signal });
  const queued = http.request('GET', '/after'); // waits for the only connection
  setTimeout(() => abort.abort(), 50);
  await t.throwsAsync(aborted, { instanceOf: ConnectionError, message: /aborted/ });
  t.is((await queued).body, '"ok"');
  http.close();
  await t.throwsAsync(http.request('GET', '/after'), { instanceOf: ConnectionError });
});

test('ConsulApi: an agent that stops answering fails the request as UNREACHABLE after the request timeout, and the next agent takes over', async (t) => {
  const hung = await server(t, () => {}); // accepts requests, never answers
  const live = await server(t, (req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(req.url === '/v1/status/leader' ? '"10.0.0.1:8300"' : 'null');
  });
  const api = new ConsulApi([`127.0.0.1:${hung.port}`, `127.0.0.1:${live.port}`], undefined, 200);
  t.teardown(() => api.close());
  await t.throwsAsync(api.leader(), { code: 'UNREACHABLE', message: `Consul at 127.0.0.1:${hung.port} did not answer (no answer within 200 ms); check placement.consul.address and that the agent runs` });
  t.is(api.address, `127.0.0.1:${live.port}`);
  t.is(await api.leader(), '10.0.0.1:8300');
});
