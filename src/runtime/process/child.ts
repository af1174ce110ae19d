// What every child process of the supervisor shares: its configuration (one JSON env var), the
// IPC channel that reports readiness, and the rule that a child dies with its parent.
import type { LogLevel } from '../config/manifest.ts';
import { createLogger, type Logger } from '../util/log.ts';

export const CHILD_CONFIG_ENV = 'KOALA_CHILD_CONFIG';

export interface ChildBase {
  /** Process name shown in logs and status, e.g. `host-2`. */
  name: string;
  cluster: string;
  secret: string;
  logLevel: LogLevel;
  /** Project root: plugin paths and `.koala/` are relative to it. */
  root: string;
}

/** Messages a child sends its supervisor over IPC. */
export type ChildMessage = { type: 'ready'; url: string; details?: Record<string, string> } | { type: 'fatal'; message: string };

export interface ChildContext<C extends ChildBase> {
  config: C;
  log: Logger;
  ready(url: string, details?: Record<string, string>): void;
  /** Registers the graceful stop; it runs once on SIGTERM or when the supervisor goes away. */
  onStop(stop: () => Promise<void>): void;
}

export function readChildConfig<C extends ChildBase>(): C {
  const raw = process.env[CHILD_CONFIG_ENV];
  if (!raw) throw new Error(`${CHILD_CONFIG_ENV} is not set: this file is started by \`koala up\`, not by hand`);
  return JSON.parse(raw) as C;
}

const STOP_GRACE_MS = 4000;

/** Runs a child's main function with lifecycle wiring; a failure to start is reported as one line. */
export function runChild<C extends ChildBase>(main: (ctx: ChildContext<C>) => Promise<void>): void {
  const config = readChildConfig<C>();
  const log = createLogger(config.logLevel);
  let stop: (() => Promise<void>) | undefined;
  let stopping = false;
  const send = (msg: ChildMessage) => process.send?.(msg);

  const shutdown = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log.debug(`stopping (${why})`);
    // Never let a stuck stop keep the process (and its ports) alive.
    setTimeout(() => process.exit(code), STOP_GRACE_MS).unref();
    const began = Date.now();
    (stop ? stop() : Promise.resolve()).then(
      () => {
        log.debug(`stopped in ${Date.now() - began} ms`);
        process.exit(code);
      },
      (err: Error) => {
        log.error(`error while stopping: ${err.message}`);
        process.exit(1);
      },
    );
  };

  // Ctrl-C reaches the whole process group; the supervisor orchestrates the order of stopping.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));
  // The supervisor died (even by SIGKILL): do not outlive it.
  process.on('disconnect', () => shutdown('supervisor gone', 0));

  const ctx: ChildContext<C> = {
    config,
    log,
    ready: (url, details) => send(details ? { type: 'ready', url, details } : { type: 'ready', url }),
    onStop: (fn) => (stop = fn),
  };
  main(ctx).catch((err: Error) => {
    const message = err.message.split('\n')[0] ?? String(err);
    log.error(message);
    send({ type: 'fatal', message });
    setTimeout(() => process.exit(1), 50);
  });
}
