import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Flags } from '@oclif/core';
import { CliError, KoalaCommand } from '../cli/base-command.ts';
import { findLogRoot, LOG_FILE, matches, parseLogLine, type LogEntry, type LogFilter } from '../cli/cluster-log.ts';
import type { LogLevel } from '../runtime/config/manifest.ts';
import { isAlive, readRunState, STATE_DIR } from '../runtime/supervisor/run-state.ts';

/** How often `--follow` looks for new lines. */
const FOLLOW_POLL_MS = 200;

export default class Logs extends KoalaCommand {
  static override description = 'Show the log of the cluster started from this project with `koala up --detach` (.koala/koala.log)';
  static override enableJsonFlag = true;
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'keep printing new lines until the cluster stops (or Ctrl-C)' }),
    lines: Flags.integer({ char: 'n', description: 'show only the last N lines (0: none, with --follow only new ones)', min: 0 }),
    process: Flags.string({ char: 'p', description: 'only this process (host-1) or group of processes (host)' }),
    level: Flags.string({ char: 'l', description: 'only lines of this level or more severe', options: ['debug', 'info', 'warn', 'error'] }),
  };

  async run(): Promise<{ entries: LogEntry[] }> {
    const { flags } = await this.parse(Logs);
    if (flags.follow && this.jsonEnabled()) throw new CliError('--follow and --json do not go together: --json prints one document when the command ends', { exitCode: 2 });
    const root = findLogRoot(process.cwd());
    if (root === undefined) {
      throw new CliError(`no cluster log found in ${STATE_DIR}/${LOG_FILE} here or in any directory above`, { hint: '`koala up --detach` writes it; `koala up` in the foreground prints its log instead' });
    }
    const file = join(root, STATE_DIR, LOG_FILE);
    const filter: LogFilter = { ...(flags.process ? { process: flags.process } : {}), ...(flags.level ? { level: flags.level as LogLevel } : {}) };
    const filtered = flags.process !== undefined || flags.level !== undefined;
    /** A line as written, and what it says (undefined for lines not in the supervisor's format: none, normally). */
    interface Kept {
      line: string;
      entry: LogEntry | undefined;
    }
    // Lines not in the supervisor's format are shown unless filtering.
    const keep = (line: string): Kept | undefined => {
      const entry = parseLogLine(line);
      if (entry === undefined) return filtered || line === '' ? undefined : { line, entry };
      return matches(entry, filter) ? { line, entry } : undefined;
    };

    const handle = await open(file, 'r');
    try {
      let offset = 0;
      let partial = '';
      const readNew = async (): Promise<Kept[]> => {
        const size = (await stat(file)).size;
        if (size < offset) offset = 0; // the file was replaced: start over
        if (size === offset) return [];
        const buf = Buffer.alloc(size - offset);
        const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        const lines = (partial + buf.subarray(0, bytesRead).toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        return lines.map(keep).filter((x): x is Kept => x !== undefined);
      };
      let shown = await readNew();
      if (flags.lines !== undefined) shown = flags.lines === 0 ? [] : shown.slice(-flags.lines);
      if (this.jsonEnabled()) return { entries: shown.flatMap((x) => (x.entry ? [x.entry] : [])) };
      const print = (x: Kept) => this.log(x.line);
      shown.forEach(print);
      if (flags.follow) {
        const state = readRunState(root);
        // Until the supervisor that writes the log has exited, and one last read after that.
        while (state !== undefined && isAlive(state.pid)) {
          await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
          (await readNew()).forEach(print);
        }
        (await readNew()).forEach(print);
      }
      return { entries: [] };
    } finally {
      await handle.close();
    }
  }
}
