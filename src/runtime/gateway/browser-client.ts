// Serves `koala/client` to browsers at /koala/…: the browser client's TypeScript sources, with
// their types stripped by Node, so a page can `import { BrowserSession } from '/koala/client/browser/session.ts'`
// with no build step. Only the files the browser client is made of are served.
import { readFile } from 'node:fs/promises';
import module from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const SRC = fileURLToPath(new URL('../../', import.meta.url));
const FILES = new Set(['client/browser/session.ts', 'client/browser/avro.ts', 'client/typed-view.ts', 'runtime/wire/schema-json.ts']);

type Strip = (code: string) => string;

export function registerBrowserClient(app: FastifyInstance): void {
  const cache = new Map<string, string>();
  app.get<{ Params: { '*': string } }>('/koala/*', async (req, reply) => {
    const path = req.params['*'];
    if (!FILES.has(path)) return reply.code(404).send({ error: `no such client file: ${path}` });
    let js = cache.get(path);
    if (js === undefined) {
      const strip = (module as unknown as { stripTypeScriptTypes: Strip }).stripTypeScriptTypes;
      js = strip(await readFile(`${SRC}${path}`, 'utf8'));
      cache.set(path, js);
    }
    return reply.type('text/javascript; charset=utf-8').send(js);
  });
}
