import { Flags } from '@oclif/core';
import { KoalaCommand } from '../cli/base-command.ts';

interface ListedReminder {
  identity: string;
  iface: string;
  key: string;
  name: string;
  due: string;
  periodMs: number;
}

export default class Reminders extends KoalaCommand {
  static override description = 'List durable reminders (from the state storage of the manifest)';
  static override enableJsonFlag = true;
  static override flags = {
    config: Flags.string({ char: 'c', description: 'manifest file (default: found from the current directory)' }),
    interface: Flags.string({ char: 'i', description: 'only reminders of this interface' }),
  };

  async run(): Promise<{ reminders: ListedReminder[] }> {
    const { flags } = await this.parse(Reminders);
    const [{ loadManifest }, { StateStores }] = await Promise.all([import('../runtime/config/manifest.ts'), import('../runtime/host/state.ts')]);
    const loaded = await loadManifest({ cwd: process.cwd(), ...(flags.config ? { configPath: flags.config } : {}) });
    const stores = new StateStores(loaded.manifest.storage, loaded.root);
    try {
      // The default store, and every interface's own (they may be other stores).
      const ifaces = flags.interface ? [flags.interface] : [undefined, ...Object.keys(loaded.manifest.storage.interfaces)];
      const seen = new Set<string>();
      const rows = (await Promise.all(ifaces.map(async (i) => (await stores.for(i ?? '')).listReminders(i))))
        .flat()
        .filter((r) => {
          const id = `${r.iface}/${r.key}/${r.name}`;
          return seen.has(id) ? false : (seen.add(id), true);
        });
      const reminders = rows.map((r) => ({ identity: `${r.iface}/${r.key}`, iface: r.iface, key: r.key, name: r.name, due: new Date(r.dueAt).toISOString(), periodMs: r.periodMs }));
      if (!this.jsonEnabled()) {
        if (reminders.length === 0) this.log('no reminders');
        else for (const r of reminders) this.log(`${r.identity}  ${r.name}  due ${r.due}${r.periodMs ? `  every ${r.periodMs} ms` : ''}`);
      }
      return { reminders };
    } finally {
      await stores.close();
    }
  }
}
