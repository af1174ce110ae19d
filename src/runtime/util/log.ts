// Plain line logging. Children write bare lines; the supervisor adds the coloured process prefix.
import type { LogLevel } from '../config/manifest.ts';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(line: string): void;
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Logger {
  const min = RANK[level];
  const at = (lvl: LogLevel) => (RANK[lvl] >= min ? (line: string) => write(lvl === 'info' ? line : `${lvl.toUpperCase()} ${line}`) : () => {});
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
