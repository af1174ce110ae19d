// `.koala/koala.log`, the log a detached supervisor writes (`<ISO time> <process padded>| <line>`):
// finding it from a directory, parsing its lines, and picking the ones a reader asked for.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LogLevel } from '../runtime/config/manifest.ts';
import { STATE_DIR } from '../runtime/supervisor/run-state.ts';

export const LOG_FILE = 'koala.log';

export interface LogEntry {
  /** ISO time the supervisor wrote the line. */
  time: string;
  /** The process: `placement`, `host-1`, `gateway`, `supervisor`, `consul`, … */
  process: string;
  level: LogLevel;
  message: string;
}

const LINE = /^(\S+) (\S+)\s*\| (.*)$/;
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const LEVEL_PREFIX = /^(DEBUG|WARN|ERROR) /;

/** The project directory at or above `cwd` whose `.koala/` holds a cluster log, if any. */
export function findLogRoot(cwd: string): string | undefined {
  for (let dir = cwd; ; dir = dirname(dir)) {
    if (existsSync(join(dir, STATE_DIR, LOG_FILE))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/** One line of the log; lines a process wrote without a level are `info` (Koala's own format). */
export function parseLogLine(line: string): LogEntry | undefined {
  const m = LINE.exec(line);
  if (m === null) return undefined;
  const [, time, process, rest] = m as unknown as [string, string, string, string];
  const level = LEVEL_PREFIX.exec(rest);
  return level === null ? { time, process, level: 'info', message: rest } : { time, process, level: level[1]!.toLowerCase() as LogLevel, message: rest.slice(level[0].length) };
}

export interface LogFilter {
  /** A process name (`host-1`) or a group of them (`host`: host-1, host-2, …). */
  process?: string;
  /** The least severe level shown. */
  level?: LogLevel;
}

export function matches(entry: LogEntry, filter: LogFilter): boolean {
  if (filter.process !== undefined && entry.process !== filter.process && !(entry.process.startsWith(`${filter.process}-`) && /^\d+$/.test(entry.process.slice(filter.process.length + 1)))) {
    return false;
  }
  return filter.level === undefined || LEVELS.indexOf(entry.level) >= LEVELS.indexOf(filter.level);
}
