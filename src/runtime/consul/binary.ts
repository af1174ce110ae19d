// Where the `consul` binary is: KOALA_CONSUL_BIN, else the PATH, else the copy the project's
// scripts/ensure-consul.sh keeps under .cache/ (for this repository's tests and demos).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KoalaError } from '../errors/errors.ts';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findConsul(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.KOALA_CONSUL_BIN;
  if (explicit) {
    if (executable(explicit)) return explicit;
    throw new KoalaError('UNREACHABLE', `KOALA_CONSUL_BIN=${explicit} is not an executable file; point it at the consul binary`);
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'consul'))) return join(dir, 'consul');
  }
  const cached = fileURLToPath(new URL('../../../.cache/consul/consul', import.meta.url));
  if (executable(cached)) return cached;
  throw new KoalaError('UNREACHABLE', 'the consul binary was not found (placement.consul.start needs it): install Consul, put it on PATH or set KOALA_CONSUL_BIN, or set placement.consul.address to a running agent');
}
