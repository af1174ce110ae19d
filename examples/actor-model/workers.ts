// A stateless worker: no placement, several activations per id on every host that serves it.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Actor, defineInterface, definePlugin } from 'koala';

export const IHasher = defineInterface(
  {
    protocol: 'IHasher',
    messages: {
      sha256: { request: [{ name: 'text', type: 'string' }], response: 'string' },
      /** Which activation answered (`pid:n`), after `ms`: for the demo. */
      whoami: { request: [{ name: 'ms', type: 'int' }], response: 'string' },
    },
  },
  { stateless: { maxLocal: 2 } },
);

let activations = 0;

class Hasher extends Actor {
  readonly #name = `${process.pid}:${++activations}`;

  sha256(text: string): string {
    return createHash('sha256').update(text).digest('hex');
  }

  async whoami(ms: number): Promise<string> {
    await sleep(ms);
    return this.#name;
  }
}

export const IUploader = defineInterface({
  protocol: 'IUploader',
  messages: {
    upload: { request: [{ name: 'text', type: 'string' }], response: 'string' },
    /** This uploader's process id and the hasher activation that served it. */
    where: { request: [], response: { type: 'array', items: 'string' } },
  },
});

class Uploader extends Actor {
  // IHasher is served on this host too, so the call runs here, on one of this host's workers.
  async upload(text: string): Promise<string> {
    return this.getProxy(IHasher, 'any').sha256(text);
  }

  async where(): Promise<string[]> {
    return [String(process.pid), await this.getProxy(IHasher, 'any').whoami(0)];
  }
}

export default [definePlugin({ interface: IHasher, implementation: Hasher }), definePlugin({ interface: IUploader, implementation: Uploader })];
