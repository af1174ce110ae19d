// Entry of a detached supervisor (`koala up --detach`): runs the cluster in the background, logs
// to `.koala/koala.log`, and tells the launching CLI over IPC when the cluster is ready.
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedManifest } from '../config/manifest.ts';
import { STATE_DIR, type RunState } from './run-state.ts';
import { Supervisor } from './supervisor.ts';

import { DAEMON_ENV } from './daemon-env.ts';

export type DaemonMessage =
  | { type: 'progress'; name: string; detail: string; elapsedMs: number }
  | { type: 'ready'; state: RunState }
  | { type: 'fatal'; message: string };

const loaded = JSON.parse(process.env[DAEMON_ENV] ?? 'null') as LoadedManifest | null;
if (loaded === null) {
  process.stderr.write(`${DAEMON_ENV} is not set: this file is started by \`koala up --detach\`\n`);
  process.exit(2);
}

mkdirSync(join(loaded.root, STATE_DIR), { recursive: true });
const logFile = createWriteStream(join(loaded.root, STATE_DIR, 'koala.log'), { flags: 'a' });
const send = (msg: DaemonMessage) => {
  if (process.connected) process.send?.(msg);
};
const supervisor = new Supervisor(loaded, {
  log: (name, line) => logFile.write(`${new Date().toISOString()} ${name.padEnd(10)}| ${line}\n`),
  progress: (name, detail, elapsedMs) => send({ type: 'progress', name, detail, elapsedMs }),
});

const shutdown = () => {
  supervisor.stop().finally(() => logFile.end(() => process.exit(0)));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// The launching CLI disconnects once the cluster is up; the daemon lives on.
process.on('disconnect', () => {});

supervisor.start().then(
  (state) => send({ type: 'ready', state }),
  (err: Error) => {
    send({ type: 'fatal', message: err.message });
    logFile.end(() => process.exit(1));
  },
);
