// Shared behaviour of Koala's commands: every failure becomes one clear line (plus a hint where
// there is one) on stderr and a non-zero exit code, never a stack trace.
import { styleText } from 'node:util';
import { Command } from '@oclif/core';

/** An error meant for the user: its message is the whole story. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(message: string, opts: { exitCode?: number; hint?: string } = {}) {
    super(message);
    this.exitCode = opts.exitCode ?? 1;
    this.hint = opts.hint;
  }
}

const HINTS: Record<string, string> = {
  UNKNOWN_INTERFACE: 'run `koala status` to see which interfaces the hosts serve',
  UNKNOWN_METHOD: 'the interface lists its methods; check the spelling',
  BAD_ARGUMENTS: 'arguments are parsed by the method\'s Avro types: strings as-is, numbers, true/false, JSON for records, arrays and maps',
  UNREACHABLE: 'is the cluster running? start it with `koala up --detach`',
  CONNECTION_LOST: 'is the cluster running? start it with `koala up --detach`',
  AUTH_FAILED: 'the cluster secret does not match: use the project the cluster was started from, or set KOALA_SECRET',
  TIMEOUT: 'raise the deadline with --timeout, or check the host logs',
  MANIFEST_INVALID: 'fix the manifest (reference: README.md#manifest); `koala validate` checks it without starting anything',
};

/** Errors caused by what the user typed or wrote: exit code 2, like a usage error. */
const BAD_INPUT = new Set(['MANIFEST_INVALID', 'UNKNOWN_INTERFACE', 'UNKNOWN_METHOD', 'BAD_ARGUMENTS']);

export abstract class KoalaCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number }; code?: string }): Promise<unknown> {
    // oclif's own parse errors already read well; keep their exit code (2).
    if (err.oclif?.exit !== undefined && !(err instanceof CliError)) return super.catch(err);
    const code = typeof err.code === 'string' ? err.code : undefined;
    const hint = err instanceof CliError ? err.hint : code ? HINTS[code] : undefined;
    const lines = err.message.split('\n').filter(Boolean);
    for (const line of lines) process.stderr.write(`${styleError('error')} ${line}\n`);
    if (hint) process.stderr.write(`${styleDim('hint')}  ${hint}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : (err.exitCode ?? (code !== undefined && BAD_INPUT.has(code) ? 2 : 1));
    return undefined;
  }
}

function styleError(text: string): string {
  return styleText(['red', 'bold'], text, { stream: process.stderr });
}

function styleDim(text: string): string {
  return styleText('dim', text, { stream: process.stderr });
}
