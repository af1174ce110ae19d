// `placement.consul.tls`: the PEM files for HTTPS to the Consul agents, read when a process opens
// its connection to them (the supervisor, each host and gateway, the CLI looking for a gateway).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KoalaError } from '../../errors/errors.ts';
import type { ConsulTls } from './consul-api.ts';

/** As in the manifest: file names (relative to the manifest's directory until `absoluteTlsFiles`). */
export interface ConsulTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

export function absoluteTlsFiles(root: string, files: ConsulTlsFiles): ConsulTlsFiles {
  return {
    ...(files.ca === undefined ? {} : { ca: resolve(root, files.ca) }),
    ...(files.cert === undefined ? {} : { cert: resolve(root, files.cert) }),
    ...(files.key === undefined ? {} : { key: resolve(root, files.key) }),
    ...(files.serverName === undefined ? {} : { serverName: files.serverName }),
  };
}

/** Reads the files; one that cannot be read is a clear error naming the setting and the file. */
export function readConsulTls(files: ConsulTlsFiles): ConsulTls {
  const read = (setting: 'ca' | 'cert' | 'key', file: string | undefined): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new KoalaError('UNREACHABLE', `placement.consul.tls.${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); fix the path in the manifest`);
    }
  };
  const [ca, cert, key] = [read('ca', files.ca), read('cert', files.cert), read('key', files.key)];
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(files.serverName ? { serverName: files.serverName } : {}) };
}
