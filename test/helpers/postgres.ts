// A private, real PostgreSQL server per test: `initdb` into a temp dir, `postgres` on a free TCP
// port on 127.0.0.1 (its unix socket in the temp dir, so it never touches /var/run/postgresql),
// trust auth, one database. Stopped by t.teardown (or `stop()`): fast shutdown, then the dir goes.
//
// Binaries: $KOALA_PG_BIN or the newest /usr/lib/postgresql/<version>/bin (Debian's layout, not on
// PATH); scripts/ensure-postgres.sh (in `pretest`) makes sure they exist.
//
// Root: PostgreSQL refuses to run as root, so as root initdb and the server run as the `postgres`
// system user (created by the Debian package) and the temp dir is chowned to it.
//
// Leftovers: the server runs under `setpriv --pdeathsig KILL` (set after the uid change, which
// would otherwise clear it), so the kernel kills the postmaster if the test process dies; its
// backends notice the postmaster's death and exit. A process 'exit' handler kills what still runs
// and removes the dirs on a normal exit; dirs of a test process that died by SIGKILL are swept at
// the next start (their names carry the pid).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants as fsConstants, readdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { stopChild, sweepOrphanDirs } from './orphans.ts';
import pg from 'pg';
import { freePort } from '../../src/runtime/util/free-port.ts';

/** How long stop() waits after SIGINT (fast shutdown) before SIGKILL. */
const STOP_GRACE_MS = 10_000;
const DIR_PREFIX = 'koala-pg-';
/** The superuser initdb creates; trust auth, so no password. */
const SUPERUSER = 'koala';

export interface PostgresServer {
  /** `postgres://koala@127.0.0.1:<port>/<database>` */
  readonly url: string;
  readonly port: number;
  readonly database: string;
  /** The postmaster's pid. */
  readonly pid: number;
  /** initdb's and the server's recent output (last 400 lines). */
  logs(): string;
  running(): boolean;
  /** Creates another database on this server (a unique name by default) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Fast shutdown (SIGINT), SIGKILL after 10 s, then removes the data dir. Idempotent; never throws. */
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /** Database to create; default `koala`. */
  database?: string;
  /** Until the server accepts connections; default 30 s. */
  timeoutMs?: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

/** The directory holding initdb, pg_ctl and postgres, or one clear error. */
export function postgresBinDir(): string {
  const candidates: string[] = [];
  if (process.env.KOALA_PG_BIN) {
    candidates.push(process.env.KOALA_PG_BIN);
  } else {
    const versions = (() => {
      try {
        return readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v));
      } catch {
        return [];
      }
    })();
    for (const v of versions.sort((a, b) => Number(b) - Number(a))) candidates.push(join('/usr/lib/postgresql', v, 'bin'));
  }
  for (const dir of candidates) {
    try {
      for (const bin of ['initdb', 'pg_ctl', 'postgres']) accessSync(join(dir, bin), fsConstants.X_OK);
      return dir;
    } catch {
      // next
    }
  }
  throw new Error(`PostgreSQL server binaries not found: run scripts/ensure-postgres.sh (looked in ${candidates.join(', ') || '/usr/lib/postgresql/*/bin'})`);
}

/** Starts a private server and creates a database; stopped by `t.teardown` when `t` is given. */
export async function startPostgres(t?: ExecutionContext, opts: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const database = opts.database ?? 'koala';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const runAs = serverUser();
  await sweepOrphanDirs(new RegExp(`^${DIR_PREFIX}(\\d+)-`));
  installExitHandler();

  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const entry: Live = { child: undefined, dir };
  live.add(entry);
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      lines.push(line);
      if (lines.length > 400) lines.shift();
    }
  };
  let server: PostgresServer | undefined;
  const cleanup = async () => {
    if (server) return server.stop();
    live.delete(entry);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  t?.teardown(cleanup);
  try {
    const dataDir = join(dir, 'data');
    const socketDir = join(dir, 'run');
    await mkdir(socketDir);
    if (runAs) {
      chownSync(dir, runAs.uid, runAs.gid);
      chownSync(socketDir, runAs.uid, runAs.gid);
    }
    // -N: no fsync of the new cluster's files (a test server needs them on disk only as much as
    // the page cache has them); saves about half of initdb's time. The server itself runs with
    // fsync on, PostgreSQL's default, so its commits are really durable.
    const init = await run(prefix(runAs), join(bin, 'initdb'), ['-D', dataDir, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '-N'], collect);
    if (init !== 0) throw new Error(`initdb failed (exit ${init}):\n${tail(lines)}`);

    for (let attempt = 1; ; attempt++) {
      const port = await freePort('127.0.0.1');
      const settings: Record<string, string> = {
        listen_addresses: '127.0.0.1',
        port: String(port),
        unix_socket_directories: socketDir,
        logging_collector: 'off',
        max_connections: '50',
        ...opts.settings,
      };
      const argv = [...prefix(runAs), join(bin, 'postgres'), '-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
      // setpriv/runuser exec the server: the child's pid is the postmaster's.
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      entry.child = child;
      child.stdout!.on('data', collect);
      child.stderr!.on('data', collect);
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.once('error', (err) => {
          lines.push(`spawn failed: ${err.message}`);
          resolve();
        });
      });
      const running = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
      let stopping: Promise<void> | undefined;
      const candidate: PostgresServer = {
        url: `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`,
        port,
        database,
        pid: child.pid ?? -1,
        logs: () => lines.join('\n'),
        running,
        createDatabase: async (name = `koala_${++databases}`) => {
          await createDatabase(port, name);
          return `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`;
        },
        stop: () =>
          (stopping ??= (async () => {
            // SIGINT: PostgreSQL's fast shutdown (abort sessions, checkpoint, exit).
            await stopChild(child, running, exited, 'SIGINT', STOP_GRACE_MS);
            child.stdout?.destroy();
            child.stderr?.destroy();
            live.delete(entry);
            await rm(dir, { recursive: true, force: true }).catch(() => undefined);
          })()),
      };
      const ready = await waitReady(port, running, timeoutMs);
      if (ready) {
        server = candidate;
        break;
      }
      // Not ready: lost a race for the port (retry), or a real failure.
      const logs = candidate.logs();
      child.kill('SIGKILL');
      await exited;
      if (attempt < 3 && /could not bind|address already in use/i.test(logs)) continue;
      throw new Error(`postgres did not accept connections within ${timeoutMs} ms:\n${tail(lines)}`);
    }

    await createDatabase(server.port, database);
    return server;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// ---- internals ---------------------------------------------------------------------------------

let databases = 0;
async function createDatabase(port: number, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres` });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

interface Live {
  child: ChildProcess | undefined;
  dir: string;
}

/** Servers not yet stopped, for the process 'exit' handler. */
const live = new Set<Live>();
let exitHandlerInstalled = false;
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const { child, dir } of live) {
      if (child && child.exitCode === null && child.signalCode === null) {
        try {
          child.kill('SIGKILL');
        } catch {
          // gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** As root: the `postgres` user's ids (PostgreSQL refuses to run as root). Otherwise undefined. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0) {
    throw new Error("running as root but there is no 'postgres' user to run the test server as: run scripts/ensure-postgres.sh");
  }
  return { uid, gid };
}

let setprivWorks: boolean | undefined;
/**
 * The command prefix that runs a program as `runAs` (if given) and dies with the test process.
 * setpriv sets the parent-death signal after changing the uid (a uid change clears it).
 */
function prefix(runAs: { uid: number; gid: number } | undefined): string[] {
  setprivWorks ??= spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0;
  if (setprivWorks) {
    return ['setpriv', '--pdeathsig', 'KILL', ...(runAs ? [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups'] : []), '--'];
  }
  // No setpriv: runuser drops root (the exit handler is then the only guard against leftovers).
  return runAs ? ['runuser', '-u', 'postgres', '--'] : [];
}

function run(pre: string[], cmd: string, args: string[], collect: (chunk: Buffer) => void): Promise<number> {
  const argv = [...pre, cmd, ...args];
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('error', (err) => {
      collect(Buffer.from(`spawn ${argv[0]} failed: ${err.message}\n`));
      resolve(-1);
    });
    child.once('close', (code) => resolve(code ?? -1));
  });
}

/** Polls with a real connection (the log line "ready to accept connections" comes a bit early for TCP on some versions). */
async function waitReady(port: number, running: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running()) return false;
    const client = new pg.Client({ connectionString: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      // starting up ("the database system is starting up") or not listening yet
    } finally {
      await client.end().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}


function tail(lines: string[], n = 30): string {
  return lines.slice(-n).join('\n');
}
