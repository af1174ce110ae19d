import { Flags } from '@oclif/core';
import { KoalaCommand } from '../cli/base-command.ts';
import { loadManifest } from '../runtime/config/manifest.ts';

export default class Validate extends KoalaCommand {
  static override description = 'Check the cluster manifest without starting anything';
  static override enableJsonFlag = true;
  static override flags = {
    config: Flags.string({ char: 'c', description: 'manifest file (default: found from the current directory)' }),
  };

  async run(): Promise<{ valid: true; file: string | null; cluster: string; hosts: number }> {
    const { flags } = await this.parse(Validate);
    const loaded = await loadManifest({ cwd: process.cwd(), ...(flags.config ? { configPath: flags.config } : {}) });
    const hosts = loaded.manifest.hosts.reduce((n, g) => n + g.replicas, 0);
    this.log(`${loaded.filepath ?? '(defaults)'} is valid: cluster "${loaded.manifest.cluster}", ${hosts} host${hosts === 1 ? '' : 's'} in ${loaded.manifest.hosts.length} group${loaded.manifest.hosts.length === 1 ? '' : 's'}, placement ${loaded.manifest.placement.provider}`);
    return { valid: true, file: loaded.filepath, cluster: loaded.manifest.cluster, hosts };
  }
}
