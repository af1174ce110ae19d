import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Flags } from '@oclif/core';
import { KoalaCommand, CliError } from '../cli/base-command.ts';

const MANIFEST = `# Koala cluster manifest — every field is described in Koala's README, section "Manifest"
cluster: my-cluster
logLevel: info
placement:
  provider: embedded
gateway:
  port: 0          # 0 = any free port; \`koala status\` shows the URL
hosts:
  - name: host
    replicas: 2
    plugins:
      - plugins/*
`;

const PLUGIN = `import { Actor, defineInterface, definePlugin } from 'koala';

// The interface is an Avro protocol; parameter and result types are inferred from it.
export const IGreeter = defineInterface({
  protocol: 'IGreeter',
  messages: {
    greet: { request: [{ name: 'name', type: 'string' }], response: 'string' },
  },
});

class Greeter extends Actor {
  #greeted = 0;

  greet(name: string): string {
    this.#greeted++;
    return \`hello \${name} from \${this.identity} (#\${this.#greeted})\`;
  }
}

export default definePlugin({ interface: IGreeter, implementation: Greeter });
`;

export default class Init extends KoalaCommand {
  static override description = 'Create a manifest and an example actor plugin in the current directory';
  static override flags = {
    force: Flags.boolean({ description: 'overwrite existing files' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Init);
    const cwd = process.cwd();
    const files = [
      { path: join(cwd, 'koala.config.yaml'), text: MANIFEST },
      { path: join(cwd, 'plugins', 'greeter', 'index.ts'), text: PLUGIN },
    ];
    for (const f of files) {
      if (existsSync(f.path) && !flags.force) throw new CliError(`${relative(cwd, f.path)} already exists`, { exitCode: 2, hint: 'pass --force to overwrite it' });
    }
    for (const f of files) {
      await mkdir(join(f.path, '..'), { recursive: true });
      await writeFile(f.path, f.text);
      this.log(`created ${relative(cwd, f.path)}`);
    }
    this.log('next: `npx koala up`, then in another shell `npx koala call IGreeter/1 greet world`');
  }
}
